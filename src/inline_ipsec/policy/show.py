"""Show output of the security policy stage, in the Junos layouts (docs/junos-formats.md §4.10-4.11):

    show security policies [detail]
    show security policies hit-count
    show security zones

The renderers are pure: they take a `PolicyTable` (its policies, hit counters, tunnels) or a
`Firewall` and return text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..config.firewall import Firewall, Policy
from .table import PolicyTable

__all__ = ["Selection", "parse_selection", "render_policies", "render_policies_detail",
           "render_hit_count", "render_zones"]


def _zone_pair(p: Policy) -> tuple[str, str]:
    if p.global_policy:
        return (",".join(p.from_zones) or "any", ",".join(p.to_zones) or "any")
    return p.from_zones[0], p.to_zones[0]


def _state(p: Policy) -> str:
    if p.unsupported:
        return "disabled (not carried out: " + ", ".join(p.unsupported) + ")"
    return "enabled"


@dataclass(frozen=True)
class Selection:
    """`show security policies` filters: `from-zone <z> to-zone <z>`, `global`,
    `policy-name <p>` (None: all)."""

    from_zone: Optional[str] = None
    to_zone: Optional[str] = None
    global_only: bool = False
    policy_name: Optional[str] = None

    def admits(self, p: Policy) -> bool:
        if self.policy_name is not None and p.name != self.policy_name:
            return False
        if self.global_only:
            return p.global_policy
        if self.from_zone is not None:
            return not p.global_policy and _zone_pair(p) == (self.from_zone, self.to_zone)
        return True


ALL = Selection()


def _groups(table: PolicyTable, sel: Selection = ALL
            ) -> list[tuple[Optional[tuple[str, str]], list[tuple[int, Policy]]]]:
    """Zone-pair policies grouped by pair (in first-configured order), then global ones."""
    pairs: dict[tuple[str, str], list[tuple[int, Policy]]] = {}
    glob: list[tuple[int, Policy]] = []
    for i, p in enumerate(table.policies):
        if not sel.admits(p):
            continue
        if p.global_policy:
            glob.append((i, p))
        else:
            pairs.setdefault(_zone_pair(p), []).append((i, p))
    out: list = [(k, v) for k, v in pairs.items()]
    if glob:
        out.append((None, glob))
    return out


def _index(i: int) -> int:
    """The policy's index as shown (Junos numbers configured policies from 4)."""
    return i + 4


def parse_selection(words: list[str]) -> Selection:
    """The filter words after `show security policies` (ValueError on anything else)."""
    kw: dict = {}
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("from-zone", "to-zone", "policy-name") and i + 1 < len(words):
            kw[w.replace("-", "_")] = words[i + 1]
            i += 2
        elif w == "global":
            kw["global_only"] = True
            i += 1
        else:
            raise ValueError(f"unexpected '{w}': expected from-zone <z> to-zone <z>, global, "
                             "policy-name <p>, detail or hit-count")
    if ("from_zone" in kw) != ("to_zone" in kw):
        raise ValueError("from-zone and to-zone go together")
    return Selection(**kw)


def render_policies(table: PolicyTable, sel: Selection = ALL) -> str:
    """`show security policies` (Junos 20+ layout: vrf groups and identity feeds are `any`,
    the model has neither)."""
    lines = [f"Default policy: {table.firewall.default_policy}",
             "Default policy log Profile ID: 0",
             "Pre ID default policy: permit-all"]
    for pair, items in _groups(table, sel):
        lines.append("Global policies:" if pair is None
                     else f"From zone: {pair[0]}, To zone: {pair[1]}")
        for seq, (i, p) in enumerate(items, start=1):
            lines.append(f"  Policy: {p.name}, State: {_state(p)}, Index: {_index(i)}, "
                         f"Scope Policy: 0, Sequence number: {seq}, Log Profile ID: 0")
            if p.global_policy:
                lines.append(f"    From zones: {', '.join(p.from_zones) or 'any'}")
                lines.append(f"    To zones: {', '.join(p.to_zones) or 'any'}")
            lines += ["    Source vrf group: any", "    Destination vrf group: any"]
            lines.append(f"    Source addresses: {', '.join(p.source_addresses) or 'any'}")
            lines.append("    Destination addresses: "
                         f"{', '.join(p.destination_addresses) or 'any'}")
            lines.append(f"    Applications: {', '.join(p.applications) or 'any'}")
            lines += ["    Source identity feeds: any", "    Destination identity feeds: any"]
            lines.append(f"    Action: {p.action_text}")
    return "\n".join(lines) + "\n"


def _addresses(fw: Firewall, names: tuple[str, ...], zone: Optional[str]) -> list[str]:
    out = []
    for name in names:
        ranges = fw.resolve_address(name, zone) or []
        shown = ", ".join(lo if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
        out.append(f"    {name}: {shown}")
    return out


def render_policies_detail(table: PolicyTable, sel: Selection = ALL) -> str:
    """`show security policies detail`."""
    fw = table.firewall
    lines = [f"Default policy: {fw.default_policy}", "Pre ID default policy: permit-all"]
    for pair, items in _groups(table, sel):
        for seq, (i, p) in enumerate(items, start=1):
            fz, tz = _zone_pair(p)
            lines.append(f"Policy: {p.name}, action-type: {p.action or 'none'}, State: "
                         f"{_state(p)}, Index: {_index(i)}, Scope Policy: 0")
            lines.append("  Policy Type: Configured")
            lines.append(f"  Sequence number: {seq}")
            lines.append(f"  From zone: {fz}, To zone: {tz}")
            lines.append("  Source addresses:")
            lines += _addresses(fw, p.source_addresses, p.from_zones[0] if len(p.from_zones) == 1
                                else None)
            lines.append("  Destination addresses:")
            lines += _addresses(fw, p.destination_addresses,
                                p.to_zones[0] if len(p.to_zones) == 1 else None)
            for app in p.applications:
                lines.append(f"  Application: {app}")
                for t in fw.resolve_application(app) or []:
                    lines.append(f"    IP protocol: {t.protocol if t.protocol is not None else 0}"
                                 ", ALG: 0, Inactivity timeout: 0")
                    lines.append(f"      Source port range: [{t.source_ports[0]}-"
                                 f"{t.source_ports[1]}]")
                    lines.append(f"      Destination port range: [{t.destination_ports[0]}-"
                                 f"{t.destination_ports[1]}]")
            if p.tunnel is not None:
                idx = table.tunnels.index(p.tunnel) + 1 if p.tunnel in table.tunnels else 0
                lines.append(f"  Tunnel: {p.tunnel}, Type: IPSec, Index: {idx}")
                if p.pair_policy:
                    lines.append(f"  Pair policy: {p.pair_policy}")
            lines.append(f"  Policy statistics: packets {table.hits[i]}")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def render_hit_count(table: PolicyTable, sel: Selection = ALL) -> str:
    """`show security policies hit-count`: packets each policy decided, in policy order,
    then the default policy's."""
    lines = ["Logical system: root-logical-system",
             f" {'Index':<7} {'From zone':<16} {'To zone':<16} {'Name':<20} "
             f"{'Policy count':<13} Action"]
    n = 0
    for pair, items in _groups(table, sel):
        for i, p in items:
            n += 1
            fz, tz = _zone_pair(p)
            lines.append(f" {n:<7} {fz:<16} {tz:<16} {p.name:<20} {table.hits[i]:<13} "
                         f"{(p.action or 'none').capitalize()}")
    lines.append(f"Number of policy: {n}")
    lines.append(f"Default policy ({table.firewall.default_policy}) count: "
                 f"{table.default_hits}")
    return "\n".join(lines) + "\n"


def render_zones(fw: Firewall) -> str:
    """`show security zones` (with each interface's host-inbound traffic, a model addition)."""
    lines: list[str] = []
    for zid, zone in enumerate(fw.zones.values(), start=6):
        lines += [f"Security zone: {zone.name}",
                  f"  Zone ID: {zid}",
                  "  Send reset for non-SYN session TCP packets: Off",
                  "  Policy configurable: Yes",
                  f"  Interfaces bound: {len(zone.interfaces)}",
                  "  Interfaces:"]
        for ifl in zone.interfaces:
            lines.append(f"    {ifl}")
        lines.append("  Allowed host-inbound traffic:")
        for ifl in zone.interfaces:
            lines.append(f"    {ifl}: {zone.host_inbound_of(ifl).describe()}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n" if lines else "No security zones configured\n"
