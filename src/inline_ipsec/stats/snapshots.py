"""From the distributor's tunnel records to the show commands' snapshots.

This file owns one translation: a `TunnelRecord` (what the distributor installed, where, and
why) plus the time and the engine counters -> a `TunnelSnapshot` that `show.py` renders. It
reads records duck-typed, so it imports no engine. What only the VPN configuration or IKE knows
(bind interface, policy name, PFS group, IKE version, identities, IKE SA index) is passed in as
keyword overrides.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import TYPE_CHECKING, Any, Optional

from .show import SaSnapshot, TunnelSnapshot

if TYPE_CHECKING:
    from ..engine import SaCounters

__all__ = ["sa_snapshot", "tunnel_snapshot"]


def _remaining(limit: Optional[float], used: float) -> Optional[int]:
    if limit is None:
        return None
    return max(0, int(limit - used))


def sa_snapshot(direction: str, spec: Any, now: _dt.datetime,
                installed_at: Optional[_dt.datetime] = None,
                counters: Optional["SaCounters"] = None,
                sa_type: str = "dynamic") -> SaSnapshot:
    """One SA's snapshot: lifetimes left at `now` (RFC 4301 §4.4.2.1: seconds since install;
    kilobytes of protected payload counted by the engine, `counters.bytes`)."""
    age = (now - installed_at).total_seconds() if installed_at is not None else 0.0
    life = spec.lifetime
    used_kb = (counters.bytes if counters is not None else 0) // 1024
    return SaSnapshot(
        direction=direction,
        spi=spec.spi,
        protocol=spec.protocol,
        cipher=spec.cipher,
        integrity=spec.integrity,
        hard_lifetime_remaining=_remaining(life.hard_seconds, age),
        soft_lifetime_remaining=_remaining(life.soft_seconds, age),
        lifesize_remaining_kb=_remaining(life.hard_kilobytes, used_kb),
        replay_window=spec.replay_window,
        esn=spec.esn,
        mode=spec.mode,
        sa_type=sa_type,
    )


def tunnel_snapshot(record: Any, now: _dt.datetime, *, engine_counters: bool = True,
                    sa_type: str = "dynamic", **overrides: Any) -> TunnelSnapshot:
    """The `TunnelSnapshot` of a distributor `TunnelRecord` at `now`.

    `Hardware Offloaded` and its reasons come from the record's placement; gateways, ports and
    NAT-T from the outbound SA (RFC 3948: UDP 4500); DF bit and DSCP copy from the record (the
    values in force, not pending ones). With `engine_counters` the record's engine is asked
    for counters (lifesize). `overrides` set any other `TunnelSnapshot` field.
    """
    sas: list[SaSnapshot] = []
    for pair in record.pairs:
        c_in = record.engine.counters(pair.inbound_handle) if engine_counters else None
        c_out = record.engine.counters(pair.outbound_handle) if engine_counters else None
        sas.append(sa_snapshot("inbound", pair.inbound, now, pair.installed_at, c_in, sa_type))
        sas.append(sa_snapshot("outbound", pair.outbound, now, pair.installed_at, c_out,
                               sa_type))
    fields: dict[str, Any] = {
        "tunnel_id": record.tunnel_id,
        "vpn_name": record.name,
        "local_gateway": "",
        "remote_gateway": "",
        "sas": tuple(sas),
        "hardware_offloaded": record.placement.offloaded,
        "offload_reasons": tuple(record.placement.reasons),
        "df_bit": record.df_bit,
        "copy_outer_dscp": record.copy_outer_dscp,
        "events": tuple(record.event_lines()),
        "location": record.location,
    }
    if record.pairs:
        out = record.pairs[0].outbound
        fields.update(local_gateway=out.tunnel_src, remote_gateway=out.tunnel_dst,
                      udp_encap=out.udp_encap, port=4500 if out.udp_encap else 500,
                      dest_port=out.udp_dport if out.udp_encap else 0)
    names = {f.name for f in dataclasses.fields(TunnelSnapshot)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"unknown TunnelSnapshot fields: {', '.join(sorted(unknown))}")
    fields.update(overrides)
    return TunnelSnapshot(**fields)
