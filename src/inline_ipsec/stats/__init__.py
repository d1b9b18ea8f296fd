"""Counters and show output (pipeline stage ⑤): snapshot dataclasses and pure renderers of the
Junos 25.x show commands (docs/junos-formats.md §4)."""
from __future__ import annotations

from .catalogue import COUNTERS, SHOW, statistics
from .counters import FlowStatistics, IpsecStatistics, flow_statistics, ipsec_statistics
from .show import (
    IkeSaDetail,
    IkeSaRecord,
    SaSnapshot,
    TunnelSnapshot,
    algorithm_field,
    proxy_identity,
    render_flow_statistics,
    render_ike_sa_detail,
    render_ike_sa_summary,
    render_ipsec_sa_detail,
    render_ipsec_sa_summary,
    render_ipsec_statistics,
    render_offload_check,
)
from .snapshots import sa_snapshot, tunnel_snapshot

__all__ = [
    "COUNTERS",
    "SHOW",
    "statistics",
    "FlowStatistics",
    "IkeSaDetail",
    "IkeSaRecord",
    "IpsecStatistics",
    "SaSnapshot",
    "TunnelSnapshot",
    "algorithm_field",
    "flow_statistics",
    "ipsec_statistics",
    "proxy_identity",
    "render_flow_statistics",
    "render_ike_sa_detail",
    "render_ike_sa_summary",
    "render_ipsec_sa_detail",
    "render_ipsec_sa_summary",
    "render_ipsec_statistics",
    "render_offload_check",
    "sa_snapshot",
    "tunnel_snapshot",
]
