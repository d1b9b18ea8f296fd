"""The gateway (docs/design.md §1): configuration -> SA distribution -> engines -> statistics.

`Gateway` is sans-I/O (packets in, packets out); `WireLink` joins two gateways in memory,
`UdpLink` over loopback UDP; `control` serves the show commands of a running gateway on a Unix
socket (`inline-ipsec run` / `inline-ipsec show`).
"""
from __future__ import annotations

from .core import DEFAULT_MTU, Gateway, IkeDatagram, Output
from .counters import GatewayCounters, PathCounters, TunnelFlow
from .keying import prekeyed_pair
from .link import UdpLink, WireLink
from .mtu import encapsulated_length, max_inner_length
from .routing import RouteTable, Selector
from .show import SHOW_COMMANDS, ShowError, gateway_flow_statistics, gateway_ipsec_statistics

__all__ = [
    "DEFAULT_MTU", "Gateway", "GatewayCounters", "IkeDatagram", "Output", "PathCounters",
    "RouteTable", "SHOW_COMMANDS", "Selector", "ShowError", "TunnelFlow", "UdpLink", "WireLink",
    "encapsulated_length", "gateway_flow_statistics", "gateway_ipsec_statistics",
    "max_inner_length", "prekeyed_pair",
]
