"""Pre-keyed child SAs: a stand-in for IKE that both gateways compute alone.

IKE now drives `Gateway.install_child_sa` with negotiated SAs (`ike_control.py`); as an explicit
option, a VPN configured with `ike gateway` / `ike ipsec-policy` can still be brought up
"pre-keyed" instead: each side derives the
SPIs and keys of every child SA from the IKE policy's pre-shared key with HKDF-SHA256
(RFC 5869), the VPN name, the child index and the direction (outer source > destination).
Both ends derive the same values, so two gateways configured as mirror images agree without
a single IKE message. The transforms, anti-replay window, ESN, DF bit and lifetimes come from
the configuration exactly as `config.negotiated_sa_args` maps them for a negotiated SA.

This is *not* IKE: there is no Diffie-Hellman, no authentication and no forward secrecy, and
it is only used by tests, the throughput suite, `demo.build(ike="prekeyed")` and
`inline-ipsec run --prekeyed`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import Config, negotiated_sa_args
from ..errors import ConfigError
from ..sa import CIPHER_KEY_MATERIAL, INTEGRITY_ALGORITHMS, SaSpec

if TYPE_CHECKING:
    from ..dataplane.gateway import Gateway

__all__ = ["establish", "prekeyed_pair", "vpn_endpoints"]


def vpn_endpoints(config: Config, vpn: str) -> tuple[str, str]:
    """(local, remote) outer addresses of an IKE VPN: the gateway's local address (or its
    external interface's) and its first peer address."""
    v = config.ipsec_vpns[vpn]
    gw = config.gateway_of(v)
    if gw is None or not gw.address:
        raise ConfigError(f"ipsec vpn {vpn}: no IKE gateway address")
    local = config.local_address_of(gw)
    if local is None:
        raise ConfigError(
            f"ipsec vpn {vpn}: no local address; configure 'local-address' on ike gateway "
            f"{gw.name} or an address on {gw.external_interface}")
    return local, gw.address[0]


def _derive(secret: bytes, label: str, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"inline-ipsec prekeyed",
                info=label.encode()).derive(secret)


def _direction(config: Config, vpn: str, secret: bytes, child: int, src: str, dst: str,
               udp_encap: bool) -> SaSpec:
    base = f"{vpn}|{child}|{src}>{dst}"
    spi = int.from_bytes(_derive(secret, "spi|" + base, 4), "big") | 0x10000000
    args = negotiated_sa_args(config, vpn, spi=spi, key=b"", tunnel_src=src, tunnel_dst=dst,
                              udp_encap=udp_encap)
    args["key"] = _derive(secret, "key|" + base, CIPHER_KEY_MATERIAL[args["cipher"]]) \
        if CIPHER_KEY_MATERIAL[args["cipher"]] else b""
    if args["integrity"]:
        args["integrity_key"] = _derive(secret, "auth|" + base,
                                        INTEGRITY_ALGORITHMS[args["integrity"]][0])
    if args["protocol"] == "ah":
        args["cipher"], args["key"] = "null", b""
    return SaSpec(**args)


def prekeyed_pair(config: Config, vpn: str, child: int = 0, *, udp_encap: bool = False,
                  secret: Optional[bytes] = None) -> tuple[SaSpec, SaSpec]:
    """(outbound, inbound) `SaSpec` of child SA `child` of IKE VPN `vpn`, derived from the IKE
    policy's pre-shared key (or `secret`). The peer, configured as the mirror image, derives
    the same pair the other way round."""
    v = config.ipsec_vpns.get(vpn)
    if v is None or v.ike is None:
        raise ConfigError(f"ipsec vpn {vpn} is not an IKE VPN")
    if secret is None:
        gw = config.gateway_of(v)
        policy = config.ike_policies.get(gw.ike_policy) if gw and gw.ike_policy else None
        if policy is None or policy.pre_shared_key is None:
            raise ConfigError(f"ipsec vpn {vpn}: pre-keying needs the IKE policy's "
                              "pre-shared-key")
        secret = policy.pre_shared_key.encode("utf-8", "surrogateescape")
    local, remote = vpn_endpoints(config, vpn)
    out = _direction(config, vpn, secret, child, local, remote, udp_encap)
    inb = _direction(config, vpn, secret, child, remote, local, udp_encap)
    return out, inb


def establish(gw: "Gateway", vpns: Optional[Iterable[str]] = None,
              udp_encap: Iterable[str] = ()) -> list[str]:
    """`Gateway.establish_prekeyed`: one pre-keyed child SA pair per traffic selector of each
    IKE VPN (all by default); `udp_encap` names the VPNs that run over NAT-T (as if IKE had
    detected a NAT, RFC 7296 §2.23). Returns the VPNs brought up."""
    nat = set(udp_encap)
    names = list(vpns) if vpns is not None else [
        v.name for v in gw.config.ipsec_vpns.values() if v.ike is not None]
    for name in names:
        vpn = gw.config.ipsec_vpns[name]
        for child in range(max(1, len(vpn.traffic_selectors))):
            out, inb = prekeyed_pair(gw.config, name, child, udp_encap=name in nat)
            gw.install_child_sa(name, out, inb)
    return names
