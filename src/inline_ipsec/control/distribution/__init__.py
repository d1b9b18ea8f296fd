"""SA distribution (pipeline stage ③): decide where each tunnel runs and keep its SAs there.

`placement` holds docs/design.md Table 1 as data (`place()`); `distributor` installs, rekeys
(make-before-break) and removes SA pairs on the PFE engines or the CPU engine.
"""
from __future__ import annotations

from ...sa import SaSpec
from .distributor import Distributor, SaEngine, SaPair, TunnelEvent, TunnelRecord
from .placement import (
    PFE_SA_LIMIT,
    PFE_TUNNEL_LIMIT,
    TABLE_1,
    Placement,
    Rule,
    Settings,
    Tunnel,
    place,
    place_config,
    tunnel_from_config,
)

__all__ = [
    "PFE_SA_LIMIT",
    "PFE_TUNNEL_LIMIT",
    "TABLE_1",
    "Distributor",
    "Placement",
    "Rule",
    "SaEngine",
    "SaPair",
    "SaSpec",
    "Settings",
    "Tunnel",
    "TunnelEvent",
    "TunnelRecord",
    "place",
    "place_config",
    "tunnel_from_config",
]
