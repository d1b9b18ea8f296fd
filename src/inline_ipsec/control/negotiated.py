"""IKE events -> the gateway's data plane (what IKE drives once it runs beside a gateway).

    ChildSaUp       -> Gateway.install_child_sa (RFC 7296 §1.3: a new child SA pair)
    ChildSaRekeyed  -> Gateway.rekey, make-before-break (RFC 7296 §2.8)
    ChildSaDown     -> Gateway.remove_child_sa (RFC 7296 §1.4.1), the tunnel with its last pair
    IkeSaDown       -> Gateway.remove_child_sa for every child SA listed in `children` (a
                       deleted or dead IKE SA takes its child SAs along, §1.4.1, §2.4); the
                       session sends no ChildSaDown for them

Removals are idempotent: a ChildSaDown or IkeSaDown naming an SA that is not installed (any
more) is ignored, so feeding both a ChildSaDown and an IkeSaDown for the same pair is safe.

Events are read duck-typed (`inline_ipsec.ike.events` field names), so the gateway does not
import the IKE package. The negotiated SA carries keys, SPIs, transforms and selectors; the
VPN's configured DF-bit and DSCP-copy options (which IKE does not negotiate) are applied here,
as `config.negotiated_sa_args` does.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..config.algorithms import cipher_name
from ..config.to_sa import soft_limit
from ..sa import SaSpec

if TYPE_CHECKING:
    from ..dataplane.gateway import Gateway

__all__ = ["apply_ike_event", "installed"]


def _with_vpn_options(gw: "Gateway", vpn: str, spec: SaSpec) -> SaSpec:
    v = gw.config.ipsec_vpns.get(vpn)
    if v is None:
        return spec
    lifetime = spec.lifetime
    for p in gw.config.ipsec_proposals_of(v):    # IKEv2 does not negotiate kilobytes
        if p.lifetime_kilobytes and (not p.encryption_algorithm or
                                     cipher_name(p.encryption_algorithm) == spec.cipher):
            lifetime = dataclasses.replace(lifetime, hard_kilobytes=p.lifetime_kilobytes,
                                           soft_kilobytes=soft_limit(p.lifetime_kilobytes))
            break
    return dataclasses.replace(spec, df_bit=v.df_bit, copy_outer_dscp=v.copy_outer_dscp,
                               lifetime=lifetime)


def apply_ike_event(gw: "Gateway", vpn: str, event: object, local_address: str,
                    remote_address: str) -> bool:
    """Apply one IKE event to `gw` (see module docstring); False if it has no data-plane
    effect (IKE SA up/down without children, ...)."""
    name = type(event).__name__
    if name in ("ChildSaUp", "ChildSaRekeyed"):
        child = getattr(event, "child", None) or getattr(event, "new")
        out, inb = child.to_sa_specs(local_address, remote_address)
        out, inb = _with_vpn_options(gw, vpn, out), _with_vpn_options(gw, vpn, inb)
        if name == "ChildSaUp":
            gw.install_child_sa(vpn, out, inb, local_ts=child.local_ts or None,
                                remote_ts=child.remote_ts or None)
        else:
            rec = gw.tunnel(vpn)
            index = [p.inbound.spi for p in rec.pairs].index(getattr(event, "old_spi_in"))
            gw.rekey(vpn, out, inb, pair_index=index)
        return True
    if name == "ChildSaDown":
        return _remove(gw, vpn, getattr(event, "spi_in"), getattr(event, "reason", "deleted"))
    if name == "IkeSaDown":
        reason = getattr(event, "reason", "deleted")
        removed = False
        for spi_in, _spi_out in getattr(event, "children", ()) or ():
            removed = _remove(gw, vpn, spi_in, reason) or removed
        return removed
    return False


_REASONS = {"deleted": "received DEL notification from peer",
            "deleted by peer": "received DEL notification from peer",
            "expired": "IPSec SA hard life-time expired, sent DEL notification"}


def installed(gw: "Gateway", vpn: str, spi_in: int) -> bool:
    """`spi_in` is the inbound SPI of an installed pair of `vpn`, or of its draining SA."""
    if vpn not in gw.distributor:
        return False
    rec = gw.tunnel(vpn)
    return any(p.inbound.spi == spi_in for p in rec.pairs) or \
        any(d.spec.spi == spi_in for d in rec.draining)


def _remove(gw: "Gateway", vpn: str, spi_in: int, reason: str) -> bool:
    if not installed(gw, vpn, spi_in):
        return False
    gw.remove_child_sa(vpn, spi_in, _REASONS.get(reason, reason))
    return True
