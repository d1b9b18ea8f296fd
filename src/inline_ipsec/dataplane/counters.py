"""Flow counters of a gateway: per tunnel, per engine kind, and for the whole gateway.

These count what the gateway did around the engines (routing, MTU, NAT-T demultiplexing,
selector checks); the engines' own per-SA counters (packets, bytes, ICV failures, replays)
stay in the engines. The counter fields of each class come from the counter catalogue
(inline_ipsec.stats.catalogue, scopes "tunnel", "path" and "gateway"), which also says which
show line each one feeds; `stats.statistics` sums them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..stats.catalogue import counter_fields

__all__ = ["TunnelFlow", "PathCounters", "GatewayCounters"]


@dataclass
@counter_fields("tunnel")
class TunnelFlow:
    """Packets of one tunnel (IPsec VPN), both directions, at this gateway.

    Outbound: `out_packets` inner packets were routed into the tunnel; `out_fragments` extra
    fragments were made of them (RFC 791 pre-fragmentation); `out_mtu_drops` were dropped as
    too big with DF set (an ICMP error went back); `out_engine_drops` the engine refused
    (sequence overflow, expired SA); `out_encrypted` left as ESP/AH packets, so
    `out_encrypted == out_packets + out_fragments - out_mtu_drops - out_engine_drops`.

    Inbound: `in_packets` ESP/AH packets named one of the tunnel's SPIs; `in_delivered` were
    decrypted and passed the selector check; `in_ts_fail` decrypted but failed it (RFC 4301
    §5.2); `in_engine_drops` the engine dropped (by `Status` name in `in_drop_reasons`), so
    `in_packets == in_delivered + in_ts_fail + in_engine_drops`.
    """

    name: str
    offloaded: bool
    in_drop_reasons: Counter = field(default_factory=Counter)

    @property
    def engine(self) -> str:
        return "pfe" if self.offloaded else "cpu"


@dataclass
@counter_fields("path")
class PathCounters:
    """Packets one engine kind ("pfe" or "cpu") handled at this gateway, and the time spent
    inside its burst calls (for the packets-per-second figures of the demo)."""

    @property
    def packets(self) -> int:
        return (self.encrypted + self.decrypted  # type: ignore[attr-defined]
                + self.encrypt_drops + self.decrypt_drops)  # type: ignore[attr-defined]

    @property
    def pps(self) -> float:
        seconds = self.seconds  # type: ignore[attr-defined]
        return self.packets / seconds if seconds > 0 else 0.0


@dataclass
@counter_fields("gateway")
class GatewayCounters:
    """Gateway-wide counters that belong to no tunnel's SA, and the counters of each engine
    kind (`paths`)."""

    paths: dict[str, PathCounters] = field(
        default_factory=lambda: {"pfe": PathCounters(), "cpu": PathCounters()})
