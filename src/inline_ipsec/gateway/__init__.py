"""The gateway under its former package name (docs/design.md §1).

The gateway now lives in three stage packages: `inline_ipsec.dataplane` (forwarding: routing,
demux, MTU, counters, the `Gateway` fast path), `inline_ipsec.control` (IKE control, keying,
negotiated SAs, VPN verdicts, SA distribution) and `inline_ipsec.io` (links, sockets, runner,
CLI commands, show, demo configuration, traffic builders). This package re-exports the public
names it always had, and every old submodule path (`inline_ipsec.gateway.traffic`, ...) still
imports: it is the same module object as its new home (see `inline_ipsec._aliases`).
"""
from __future__ import annotations

from ..control.keying import prekeyed_pair
from ..dataplane.counters import GatewayCounters, PathCounters, TunnelFlow
from ..dataplane.gateway import DEFAULT_MTU, Gateway, IkeDatagram, Output
from ..dataplane.mtu import encapsulated_length, max_inner_length
from ..dataplane.routing import RouteTable, Selector
from ..io.link import UdpLink, WireLink
from ..io.show import SHOW_COMMANDS, ShowError, gateway_flow_statistics, gateway_ipsec_statistics

# The submodules this package used to import eagerly stay reachable as attributes.
from . import core, counters, keying, link, mtu, routing, show  # noqa: E402,F401

__all__ = [
    "DEFAULT_MTU", "Gateway", "GatewayCounters", "IkeDatagram", "Output", "PathCounters",
    "RouteTable", "SHOW_COMMANDS", "Selector", "ShowError", "TunnelFlow", "UdpLink", "WireLink",
    "encapsulated_length", "gateway_flow_statistics", "gateway_ipsec_statistics",
    "max_inner_length", "prekeyed_pair",
]
