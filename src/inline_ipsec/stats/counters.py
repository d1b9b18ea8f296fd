"""The statistics the show commands print, summed from counters as the counter catalogue says.

`IpsecStatistics` and `FlowStatistics` have one field per line of `show security ipsec
statistics` and `show security flow statistics` (docs/junos-formats.md §4.5, §4.6), both taken
from the catalogue (`stats.catalogue.SHOW`); which counter adds to which line, for which
direction, protocol or engine kind, is the catalogue's `Counter.feeds`. Counters are read
duck-typed (any object or mapping with the counter names), so this module needs no engine.
Rendering lives in `show.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Iterable

from .catalogue import COUNTERS, SHOW, statistics, statistics_fields

if TYPE_CHECKING:  # pragma: no cover
    from ..dataplane.counters import GatewayCounters

__all__ = ["COUNTERS", "SHOW", "FlowStatistics", "IpsecStatistics", "flow_statistics",
           "ipsec_statistics"]


@dataclass(frozen=True)
@statistics_fields("ipsec")
class IpsecStatistics:
    """The lines of `show security ipsec statistics` (Junos 25.2, docs/junos-formats.md §4.5).

    ESP and AH bytes count the protected (inner) packet bytes; "Replay errors" sums duplicates
    and packets below the window (RFC 4303 §3.4.3); "Bad headers" malformed packets; "Bad
    trailers" bad padding or next header (RFC 4303 §2.4-2.6); "Discarded" the packets dropped
    for any other reason (sequence overflow, expired SA, dummy packets, RFC 6040 drops, an
    unknown handle). The catalogue says which counter feeds which line.
    """

    def __add__(self, other: "IpsecStatistics") -> "IpsecStatistics":
        return IpsecStatistics(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                                  for f in fields(self)})


@dataclass(frozen=True)
@statistics_fields("flow")
class FlowStatistics:
    """The lines of `show security flow statistics` (docs/junos-formats.md §4.6). The flow
    module counts every packet of the IPsec flows in and out; those an offloaded (PFE) tunnel
    carried count also as `services_offload_packets`."""


def ipsec_statistics(sas: Iterable[tuple[str, str, Any]],
                     engine_counters: Iterable[Any] = (), gateway: Any = None,
                     tunnels: Iterable[Any] = ()) -> IpsecStatistics:
    """Sum counters into `IpsecStatistics`.

    `sas` yields (direction "inbound"/"outbound", protocol "esp"/"ah", counters) with the
    `SaCounters` fields; `engine_counters` yields `EngineCounters` (drops that belong to no
    SA); `gateway` a `GatewayCounters` (the gateway's own drops); `tunnels` `TunnelFlow`s
    (the per-tunnel form of the command: pass those or `gateway`, not both).
    """
    sources: list[tuple[str, dict[str, str], Any]] = [
        ("sa", {"direction": d, "protocol": p}, c) for d, p, c in sas]
    sources += [("engine", {}, e) for e in engine_counters]
    if gateway is not None:
        sources.append(("gateway", {}, gateway))
    sources += [("tunnel", {}, t) for t in tunnels]
    return IpsecStatistics(**statistics("ipsec", sources))


def flow_statistics(gateway: "GatewayCounters", sessions: int = 0) -> FlowStatistics:
    """`FlowStatistics` of a gateway: its `GatewayCounters`, with the counters of each engine
    kind in `gateway.paths`, and the number of current sessions (a gauge)."""
    sources: list[tuple[str, dict[str, str], Any]] = [
        ("gateway", {}, gateway), ("gateway", {}, {"current_sessions": sessions})]
    sources += [("path", {"engine": kind}, path)
                for kind, path in gateway.paths.items()]
    return FlowStatistics(**statistics("flow", sources))
