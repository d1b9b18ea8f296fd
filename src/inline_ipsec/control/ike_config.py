"""From Junos statements to IKEv2 session configuration (`inline_ipsec.ike.IkeConfig`).

One `IkeConfig` per `ike gateway` (`ike_config_for_gateway`): as on the SRX, one IKE SA per
IKE gateway carries a child SA pair per traffic selector of every `ipsec vpn` that names the
gateway, the VPNs told apart by their traffic selectors (RFC 7296 §2.9). `ike_config_for_vpn`
is the same for one VPN alone. The parts:

- IKE proposals (RFC 7296 §3.3): every `ike proposal` of the gateway's `ike policy`
  (`encryption-algorithm`, `authentication-algorithm` or, for AES-GCM, the PRF that matches
  the key size, `dh-group`), in the policy's order;
- authentication (§2.15): the policy's `pre-shared-key`, or a certificate (`certificate
  local-certificate <name>`: key and chain from `credentials`, RFC 7427 signatures);
- PPK (RFC 8784): the gateway's `ppk-profile` -> `key-manager profiles <p> static key-id/key`;
- identities (§3.5): `local-identity`/`remote-identity`, by default the local and the peer's
  outer address;
- one child SA per `traffic-selector` (§2.9), or 0.0.0.0/0 (and ::/0 with `family inet6`) for
  a route-based st0 VPN; ESP proposals from the `ipsec policy`'s proposals with the PFS group
  (§1.3.1) and ESN (§3.3.2 transform type 5); lifetimes from `lifetime-seconds` (the rekey at
  the same 5/6 soft limit as `config.to_sa.soft_limit`); the anti-replay window of the VPN;
- dead peer detection: the gateway's `dead-peer-detection` mode, interval and threshold.

Which IKE versions are negotiated at all is `NOT_NEGOTIATED`: a VPN on a gateway of another
version cannot come up (`vpn_verdict`), and `ike_vpns` leaves it out.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..config import Config
from ..config.algorithms import DH_GROUPS, cipher_name, integrity_name
from ..config.model import Identity as JunosIdentity
from ..config.model import IpsecVpn
from ..config.to_sa import soft_limit
from ..errors import ConfigError
from ..ike import ChildConfig, Identity, IkeConfig
from ..ike.errors import LocalIkeError
from ..ike.constants import ProtocolId
from ..ike.proposals import ah_proposal, esp_proposal, ike_proposal, parse_proposal
from .keying import vpn_endpoints

__all__ = ["ike_config_for_gateway", "ike_config_for_vpn", "ike_vpns", "junos_identity",
           "IkeConfigError", "NOT_NEGOTIATED", "child_configs"]

#: Junos `dh-group` default when a proposal names none (group14, as Junos' standard set).
DEFAULT_DH = "group14"

#: IKE gateway `version`s this gateway does not negotiate, with the reason its VPNs cannot
#: come up. The one place to change when IKEv1 (RFC 2409) is implemented: drop its line.
NOT_NEGOTIATED: dict[str, str] = {
    "v1-only": "IKEv1 is not implemented (ike gateway {gateway} is 'version v1-only', the "
               "Junos default when 'version' is absent); configure 'version v2-only'",
}


class IkeConfigError(ConfigError):
    """A VPN whose configuration the IKEv2 implementation cannot negotiate."""


def ike_vpns(config: Config) -> list[IpsecVpn]:
    """The VPNs IKE brings up: `ipsec vpn ... ike gateway <g>` whose gateway's `version` is
    negotiated (not in `NOT_NEGOTIATED`)."""
    out = []
    for v in config.ipsec_vpns.values():
        gw = config.gateway_of(v)
        if v.ike is not None and gw is not None and gw.version not in NOT_NEGOTIATED:
            out.append(v)
    return out


def junos_identity(ident: Optional[JunosIdentity], default: str) -> Identity:
    """A Junos `local-identity`/`remote-identity` as an IKE identity (RFC 7296 §3.5).
    `distinguished-name` without a value is the local certificate's subject (the caller
    knows the certificate); `container`/`wildcard` matching of the peer's DN is not
    implemented (IkeConfigError)."""
    if ident is not None and ident.kind == "distinguished-name":
        raise IkeConfigError("distinguished-name " + (ident.value or "") + ": matching a "
                             "peer's DN by container or wildcard is not implemented")
    if ident is None or ident.value is None:
        return Identity.parse(default)
    if ident.kind == "hostname":
        return Identity.parse("@" + ident.value)
    return Identity.parse(ident.value)


def _ike_proposals(config: Config, policy_name: str) -> list[str]:
    policy = config.ike_policies[policy_name]
    out = []
    for name in policy.proposals:
        p = config.ike_proposals.get(name)
        if p is None:
            continue
        enc = p.encryption_algorithm or "aes-128-cbc"
        cipher = _cipher(enc, f"ike proposal {name}")
        hash_name = p.authentication_algorithm or ("sha-384" if cipher.endswith("256")
                                                   else "sha-256")
        out.append(ike_proposal(cipher, hash_name, DH_GROUPS[p.dh_group or DEFAULT_DH]))
    if not out:
        raise IkeConfigError(f"ike policy {policy_name} has no usable proposal")
    return out


def _cipher(junos: str, where: str) -> str:
    """A Junos `encryption-algorithm` as an `inline_ipsec.sa` cipher name (every IPsec
    spelling the parser accepts; IKE's `des-cbc` has no data-plane cipher)."""
    try:
        return cipher_name(junos)
    except KeyError:
        raise IkeConfigError(f"{where}: encryption-algorithm {junos} is not supported by the "
                             "IKE implementation") from None


def _integrity(junos: str, where: str) -> str:
    try:
        return integrity_name(junos)
    except KeyError:
        raise IkeConfigError(f"{where}: authentication-algorithm {junos} is not supported by "
                             "the IKE implementation") from None


def _ike_lifetime(config: Config, policy_name: str) -> int:
    policy = config.ike_policies[policy_name]
    lives = [config.ike_proposals[n].lifetime_seconds for n in policy.proposals
             if n in config.ike_proposals]
    return min(lives) if lives else 28800


def child_configs(config: Config, vpn: IpsecVpn) -> list[ChildConfig]:
    """The child SAs of one VPN: one per traffic selector, else the st0 unit's families;
    named `<vpn>/<selector>` or `<vpn>` (unique on an IKE gateway)."""
    assert vpn.ike is not None
    policy = config.ipsec_policies.get(vpn.ike.ipsec_policy or "")
    if policy is None:
        raise IkeConfigError(f"ipsec vpn {vpn.name} has no ipsec-policy")
    pfs = DH_GROUPS[policy.pfs_group] if policy.pfs_group else None
    proposals, lifetimes = [], []
    protocols: set[str] = set()
    for p in config.ipsec_proposals_of(vpn):
        where = f"ipsec proposal {p.name}"
        integ = _integrity(p.authentication_algorithm, where) if p.authentication_algorithm \
            else None
        try:
            if p.protocol == "ah":
                if integ is None:
                    raise IkeConfigError(f"{where}: AH needs an authentication-algorithm")
                proposals.append(ah_proposal(integ, pfs, p.extended_sequence_number))
            else:
                cipher = _cipher(p.encryption_algorithm, where) if p.encryption_algorithm \
                    else "null"
                text = esp_proposal(cipher, integ, pfs, p.extended_sequence_number)
                parse_proposal(text, ProtocolId.ESP)    # e.g. NULL without integrity
                proposals.append(text)
        except LocalIkeError as exc:
            raise IkeConfigError(f"ipsec vpn {vpn.name}: {where}: {exc}") from None
        protocols.add(p.protocol)
        lifetimes.append(p.lifetime_seconds)
    if not proposals:
        raise IkeConfigError(f"ipsec vpn {vpn.name} has no IPsec proposal")
    if len(protocols) > 1:
        raise IkeConfigError(f"ipsec vpn {vpn.name}: ESP and AH proposals in one policy")
    life = float(min(lifetimes))
    common: dict[str, Any] = dict(proposals=tuple(proposals), lifetime_seconds=life,
                                  rekey_seconds=float(soft_limit(int(life))),
                                  replay_window=vpn.anti_replay_window,
                                  protocol=protocols.pop())
    if vpn.traffic_selectors:
        return [ChildConfig(name=f"{vpn.name}/{ts.name}",
                            local_ts=(ts.local_ip or "0.0.0.0/0",),
                            remote_ts=(ts.remote_ip or "0.0.0.0/0",), **common)
                for ts in vpn.traffic_selectors]
    nets: list[str] = []
    unit = None
    if vpn.bind_interface and vpn.bind_interface.startswith("st0."):
        tail = vpn.bind_interface[4:]
        unit = config.st0_units.get(int(tail)) if tail.isdigit() else None
    families = unit.families if unit is not None and unit.families else frozenset({"inet"})
    if "inet" in families:
        nets.append("0.0.0.0/0")
    if "inet6" in families:
        nets.append("::/0")
    return [ChildConfig(name=vpn.name, local_ts=tuple(nets), remote_ts=tuple(nets), **common)]


def ike_config_for_vpn(config: Config, vpn: IpsecVpn, *,
                       credentials: Optional[Mapping[str, tuple[object, Sequence[object]]]]
                       = None, ca_certificates: Sequence[object] = (),
                       force_encap: bool = False, **overrides: Any) -> IkeConfig:
    """The `IkeConfig` of one IKE VPN alone (module docstring), named after the VPN.
    `credentials` maps a `local-certificate` name to (private key, certificate chain);
    `force_encap` makes this side claim a NAT (RFC 7296 §2.23), so the child SAs run over
    UDP 4500."""
    return ike_config_for_gateway(config, [vpn], credentials=credentials,
                                  ca_certificates=ca_certificates, force_encap=force_encap,
                                  **{"name": vpn.name, **overrides})


def ike_config_for_gateway(config: Config, vpns: Sequence[IpsecVpn], *,
                           credentials: Optional[Mapping[str, tuple[object, Sequence[object]]]]
                           = None, ca_certificates: Sequence[object] = (),
                           force_encap: bool = False, **overrides: Any) -> IkeConfig:
    """The `IkeConfig` of the IKE gateway the `vpns` share (all name the same `ike gateway`),
    named after the gateway: its children are every VPN's, in the order given."""
    if not vpns:
        raise IkeConfigError("an IKE gateway configuration needs at least one VPN")
    vpn = vpns[0]
    gw = config.gateway_of(vpn)
    if gw is None or gw.ike_policy is None:
        raise IkeConfigError(f"ipsec vpn {vpn.name}: no IKE gateway with an ike-policy")
    if any(config.gateway_of(v) is not gw for v in vpns):
        raise IkeConfigError(f"ipsec vpns {', '.join(v.name for v in vpns)} are not all on "
                             f"ike gateway {gw.name}")
    local, remote = vpn_endpoints(config, vpn.name)
    policy = config.ike_policies[gw.ike_policy]
    dn_local = gw.local_identity is not None and \
        gw.local_identity.kind == "distinguished-name" and gw.local_identity.value is None
    try:
        local_id = None if dn_local else junos_identity(gw.local_identity, local)
        remote_id = junos_identity(gw.remote_identity, remote)
    except IkeConfigError as exc:
        raise IkeConfigError(f"ike gateway {gw.name}: {exc}") from None
    kw: dict[str, Any] = dict(
        name=gw.name,
        local_id=local_id,
        remote_id=remote_id,
        children=[c for v in vpns for c in child_configs(config, v)],
        ike_rekey_seconds=float(soft_limit(_ike_lifetime(config, gw.ike_policy))),
        force_encap=force_encap,
    )
    try:
        kw["proposals"] = tuple(_ike_proposals(config, gw.ike_policy))
    except LocalIkeError as exc:
        raise IkeConfigError(f"ipsec vpn {vpn.name}: {exc}") from None
    if policy.local_certificate is not None:
        creds = (credentials or {}).get(policy.local_certificate)
        if creds is None:
            raise IkeConfigError(f"ike policy {policy.name}: no key and certificate loaded "
                                 f"for local-certificate {policy.local_certificate}")
        if dn_local:        # local-identity distinguished-name: the certificate's subject
            kw["local_id"] = Identity.of_certificate(list(creds[1])[0])
        kw.update(auth="pubkey", private_key=creds[0], certificates=list(creds[1]),
                  ca_certificates=list(ca_certificates), psk=None)
    else:
        if dn_local:
            raise IkeConfigError(f"ike gateway {gw.name}: local-identity distinguished-name "
                                 "is a certificate's subject; the ike policy has none")
        if policy.pre_shared_key is None:
            raise IkeConfigError(f"ike policy {policy.name}: no pre-shared-key")
        kw["psk"] = policy.pre_shared_key.encode("utf-8", "surrogateescape")
        kw["ca_certificates"] = list(ca_certificates)
    if gw.ppk_profile is not None:
        prof = config.key_manager_profiles.get(gw.ppk_profile)
        if prof is None or prof.key is None:
            raise IkeConfigError(f"ike gateway {gw.name}: key-manager profile "
                                 f"{gw.ppk_profile} has no static key")
        kw.update(ppk_id=(prof.key_id or prof.name).encode(), ppk=prof.key.encode())
    if gw.dead_peer_detection is not None:
        dpd = gw.dead_peer_detection
        kw.update(dpd_interval=float(dpd.interval), dpd_threshold=dpd.threshold,
                  dpd_mode=dpd.mode)
    kw.update(overrides)
    return IkeConfig(**kw)
