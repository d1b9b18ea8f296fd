"""IKE events -> the gateway's data plane (what IKE drives once it runs beside a gateway).

    ChildSaUp       -> Gateway.install_child_sa (RFC 7296 §1.3: a new child SA pair)
    ChildSaRekeyed  -> Gateway.rekey, make-before-break (RFC 7296 §2.8)
    ChildSaDown     -> Gateway.remove_child_sa (RFC 7296 §1.4.1), the tunnel with its last pair
    IkeSaDown       -> Gateway.remove_child_sa for every child SA listed in `children` (a
                       deleted or dead IKE SA takes its child SAs along, §1.4.1, §2.4); the
                       session sends no ChildSaDown for them

Removals are idempotent: a ChildSaDown or IkeSaDown naming an SA that is not installed (any
more) is ignored, so feeding both a ChildSaDown and an IkeSaDown for the same pair is safe.

A rekey whose old pair is not installed (any more: removed by its hard lifetime, or by a delete
that crossed the rekey) installs the new pair as a child SA of its own instead of failing.

The events are `inline_ipsec.ike.events` classes, matched by type (IKEv1's Quick Mode emits the
same ones). This control module reads them so that the data plane (`dataplane.gateway`) does
not import the IKE package. The negotiated SA carries keys, SPIs, transforms and selectors; the
VPN's configured DF-bit and DSCP-copy options (which IKE does not negotiate) are applied here,
as `config.negotiated_sa_args` does.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional

from ..config.algorithms import cipher_name
from ..config.to_sa import soft_limit
from ..ike.events import ChildSaDown, ChildSaRekeyed, ChildSaUp, IkeSaDown
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
    if isinstance(event, (ChildSaUp, ChildSaRekeyed)):
        child = event.child if isinstance(event, ChildSaUp) else event.new
        out, inb = child.to_sa_specs(local_address, remote_address)
        out, inb = _with_vpn_options(gw, vpn, out), _with_vpn_options(gw, vpn, inb)
        index = _pair_index(gw, vpn, event.old_spi_in) \
            if isinstance(event, ChildSaRekeyed) else None
        if index is None:
            gw.install_child_sa(vpn, out, inb, local_ts=child.local_ts or None,
                                remote_ts=child.remote_ts or None)
        else:
            gw.rekey(vpn, out, inb, pair_index=index)
        return True
    if isinstance(event, ChildSaDown):
        return _remove(gw, vpn, event.spi_in, event.reason)
    if isinstance(event, IkeSaDown):
        removed = False
        for spi_in, _spi_out in event.children:
            removed = _remove(gw, vpn, spi_in, event.reason) or removed
        return removed
    return False


def _pair_index(gw: "Gateway", vpn: str, spi_in: int) -> Optional[int]:
    """The index of `vpn`'s installed pair whose inbound SPI is `spi_in`, or None."""
    if vpn not in gw.distributor:
        return None
    return next((i for i, p in enumerate(gw.tunnel(vpn).pairs) if p.inbound.spi == spi_in),
                None)


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
