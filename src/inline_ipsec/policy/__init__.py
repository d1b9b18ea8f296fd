"""Security policies (zones, address books, applications) as a lookup the data path uses.

    table = PolicyTable(config.firewall)        # compiled first-match rules (flat arrays)
    zones = ZoneMap(config)                     # interface/zone of an address, host-inbound
    ft = five_tuple(packet)
    decision = table.lookup(zones.zone_towards(ft.src), zones.zone_towards(ft.dst), ft)
    decision.permitted, decision.tunnel         # policy-based VPN: the tunnel to take

The package depends on the configuration model only; the gateway calls it (see
`gateway/policy_path.py`). Show renderers: `show.py`.
"""
from .packet import FiveTuple, five_tuple
from .table import MAX_RULES, Action, Decision, PolicyTable
from .zones import ZoneMap

__all__ = ["Action", "Decision", "FiveTuple", "MAX_RULES", "PolicyTable", "ZoneMap",
           "five_tuple"]
