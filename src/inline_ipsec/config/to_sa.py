"""From a configured VPN to `SaSpec` arguments (the record both engines accept, docs/design.md §5).

Two sources of SA parameters:
- a manual SA (`set security ipsec vpn <v> manual ...`): everything comes from the
  configuration; Junos uses the one configured SPI and keys in both directions, and a manual SA
  has no anti-replay service (there is no negotiation to reset sequence numbers);
- a negotiated SA: the transforms come from the chosen `ipsec proposal`, the options from the
  VPN (anti-replay window, DF bit, DSCP copy) and the SPI, keys and addresses from IKE
  (RFC 7296 §2.17 KEYMAT).

Lifetimes: the proposal's `lifetime-seconds`/`lifetime-kilobytes` are the hard limits; Junos
rekeys before them at a randomised soft limit. We use a deterministic soft limit of 5/6 of the
hard one (3000 s for the default 3600 s), which keeps tests reproducible.
"""
from __future__ import annotations

from typing import Any, Optional

from ..errors import ConfigError
from ..sa import Lifetime
from .algorithms import cipher_name, integrity_name
from .model import Config, IpsecProposal, IpsecVpn

__all__ = ["lifetime_of", "manual_sa_args", "negotiated_sa_args", "soft_limit"]


def soft_limit(hard: int) -> int:
    """The soft limit we use for a hard limit: 5/6 of it (see module docstring)."""
    return hard - hard // 6


def lifetime_of(proposal: IpsecProposal) -> Lifetime:
    """`Lifetime` for an IPsec proposal (RFC 4301 §4.4.2.1 soft and hard limits)."""
    kb = proposal.lifetime_kilobytes
    return Lifetime(
        soft_seconds=soft_limit(proposal.lifetime_seconds),
        hard_seconds=proposal.lifetime_seconds,
        soft_kilobytes=None if kb is None else soft_limit(kb),
        hard_kilobytes=kb,
    )


def _vpn(config: Config, vpn: str | IpsecVpn) -> IpsecVpn:
    if isinstance(vpn, IpsecVpn):
        return vpn
    try:
        return config.ipsec_vpns[vpn]
    except KeyError:
        raise ConfigError(f"ipsec vpn '{vpn}' is not defined") from None


def manual_sa_args(config: Config, vpn: str | IpsecVpn, direction: str = "outbound",
                   local_address: Optional[str] = None) -> dict[str, Any]:
    """`SaSpec` keyword arguments for one direction of a VPN's manual SA.

    `local_address` defaults to the address of the manual SA's `external-interface` (from
    `set interfaces <ifd> unit N family inet address ...`). Outbound packets go
    local -> `manual gateway`; inbound ones come the other way.
    """
    v = _vpn(config, vpn)
    m = v.manual
    if m is None:
        raise ConfigError(f"ipsec vpn {v.name} has no manual SA")
    if direction not in ("outbound", "inbound"):
        raise ConfigError(f"direction {direction!r}: expected 'outbound' or 'inbound'")
    if m.spi is None or m.gateway is None or m.protocol is None:
        raise ConfigError(f"ipsec vpn {v.name} manual SA is incomplete (spi, protocol, gateway)")
    local = local_address or config.interface_address(m.external_interface, m.gateway)
    if local is None:
        raise ConfigError(
            f"ipsec vpn {v.name}: no local address for manual SA; configure "
            f"'set interfaces {m.external_interface or '<ifd>'} unit N family inet address ...' "
            "or pass local_address")
    src, dst = (local, m.gateway) if direction == "outbound" else (m.gateway, local)
    args: dict[str, Any] = {
        "spi": m.spi,
        "protocol": m.protocol,
        "cipher": cipher_name(m.encryption_algorithm) if m.encryption_algorithm else "null",
        "key": m.encryption_key or b"",
        "integrity": (integrity_name(m.authentication_algorithm)
                      if m.authentication_algorithm else None),
        "integrity_key": m.authentication_key or b"",
        "tunnel_src": src,
        "tunnel_dst": dst,
        "replay_window": 0,
        "esn": False,
        "df_bit": v.df_bit,
        "copy_outer_dscp": v.copy_outer_dscp,
        "lifetime": Lifetime(),
    }
    return args


def negotiated_sa_args(config: Config, vpn: str | IpsecVpn, *, spi: int, key: bytes,
                       tunnel_src: str, tunnel_dst: str, integrity_key: bytes = b"",
                       udp_encap: bool = False, proposal: Optional[str] = None,
                       ) -> dict[str, Any]:
    """`SaSpec` keyword arguments for one direction of a negotiated (IKE) SA of `vpn`.

    `proposal` names the IPsec proposal IKE selected; by default the first one of the VPN's
    ipsec-policy. `key`/`integrity_key` are the KEYMAT slices for this direction (RFC 7296
    §2.17; for GCM the key followed by the 4-byte salt, RFC 4106 §8.1).
    """
    v = _vpn(config, vpn)
    proposals = config.ipsec_proposals_of(v)
    if proposal is not None:
        chosen = [p for p in proposals if p.name == proposal]
        if not chosen:
            raise ConfigError(f"ipsec vpn {v.name}: proposal '{proposal}' is not in its policy")
        prop = chosen[0]
    elif proposals:
        prop = proposals[0]
    else:
        raise ConfigError(f"ipsec vpn {v.name} has no IPsec proposal to negotiate")
    return {
        "spi": spi,
        "protocol": prop.protocol,
        "cipher": (cipher_name(prop.encryption_algorithm) if prop.encryption_algorithm
                   else "null"),
        "key": key,
        "integrity": (integrity_name(prop.authentication_algorithm)
                      if prop.authentication_algorithm else None),
        "integrity_key": integrity_key,
        "tunnel_src": tunnel_src,
        "tunnel_dst": tunnel_dst,
        "udp_encap": udp_encap,
        "replay_window": v.anti_replay_window,
        "esn": prop.extended_sequence_number,
        "df_bit": v.df_bit,
        "copy_outer_dscp": v.copy_outer_dscp,
        "lifetime": lifetime_of(prop),
    }
