"""`PolicyTable`: security policies compiled to first-match rules over flat arrays.

Junos evaluates, for a packet going from zone A to zone B, the A->B policies in their
configured order, then the global policies whose from-zone/to-zone lists admit A and B, then
the default policy (deny-all unless `security policies default-policy permit-all`). The first
policy whose source address, destination address and application all match decides: permit
(possibly `tunnel ipsec-vpn`, a policy-based VPN), deny (silently dropped) or reject (dropped,
and the sender answered with a TCP reset or ICMP port unreachable, `reject.py`). Inactive policies
(a match condition the model does not carry out) are left out.

The compiled form is data a C kernel can walk without Python objects (`PolicyTable.arrays`):

    ctx_off[nz*nz + 1], ctx_rules[...]     rules of each (from, to) zone pair, in order
    rule_action[n] (u8), rule_policy[n] (i32), rule_tunnel[n] (i32, -1: none)
    {src,dst}4_off[n + 1], {src,dst}4_lo/hi[...] (u32)            IPv4 ranges per rule
    {src,dst}6_off[n + 1], {src,dst}6_lo/hi_{hi,lo}[...] (u64)    IPv6 ranges, 2 x 64 bits
    app_off[n + 1], app_proto (i16, -1 any), app_sport_lo/hi, app_dport_lo/hi (u16),
    app_icmp_type, app_icmp_code (i16, -1 any)

Ranges are inclusive [lo, hi]; a rule matches when the source lies in one of its source
ranges of the packet's family, the destination in one of its destination ranges, and the
packet fits one of its application terms. `lookup` walks the same data from Python lists.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Optional

import numpy as np

from ..config.firewall import ApplicationTerm, Firewall, Policy
from .packet import FiveTuple

__all__ = ["Action", "Decision", "PolicyTable", "MAX_RULES"]

#: Bound on compiled rules (zone-pair rules plus global rules expanded per zone pair).
MAX_RULES = 1 << 20
_M64 = (1 << 64) - 1


class Action(IntEnum):
    DENY = 0
    REJECT = 1
    PERMIT = 2


@dataclass(frozen=True)
class Decision:
    """The outcome of a lookup: the action, the deciding policy (its index in
    `PolicyTable.policies`, or -1 for the default policy or a packet from/to no zone), and the
    policy-based VPN of a `permit tunnel ipsec-vpn` policy."""

    action: Action
    index: int = -1
    policy: Optional[str] = None
    tunnel: Optional[str] = None
    reason: str = ""

    @property
    def permitted(self) -> bool:
        return self.action == Action.PERMIT


_Rule = tuple[int, int, Optional[str], list, list, list, list, list]


def _ranges(fw: Firewall, names: tuple[str, ...], zone: Optional[str]
            ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for name in names:
        for lo, hi in fw.resolve_address(name, zone) or []:
            a, b = ipaddress.ip_address(lo), ipaddress.ip_address(hi)
            (v4 if a.version == 4 else v6).append((int(a), int(b)))
    return v4, v6


def _terms(fw: Firewall, names: tuple[str, ...]) -> list[ApplicationTerm]:
    out: list[ApplicationTerm] = []
    for name in names:
        out += fw.resolve_application(name) or []
    return out


class PolicyTable:
    """Compiled security policies of one `Firewall` (module docstring). `hits[i]` counts the
    packets policy i decided; `default_hits` those the default policy did.

    A zone pair with at least `VECTOR_MIN` rules is matched on its address ranges by numpy
    over the flat range arrays (every rule at once), then the first candidate whose
    application matches decides; a shorter one is walked rule by rule. Both give the first
    match in policy order."""

    #: Rules in a zone pair from which `match` compares the addresses vectorised.
    VECTOR_MIN = 32

    def __init__(self, firewall: Firewall) -> None:
        self.firewall = firewall
        self.zones = list(firewall.zones)
        self.zone_ids = {z: i for i, z in enumerate(self.zones)}
        self.policies: list[Policy] = list(firewall.policies)
        self.default_action = (Action.PERMIT if firewall.default_policy == "permit-all"
                               else Action.DENY)
        self.tunnels = sorted({p.tunnel for p in self.policies if p.tunnel})
        self.hits = [0] * len(self.policies)
        self.default_hits = 0
        self._rules: list[_Rule] = []
        self._contexts: dict[tuple[int, int], list[int]] = {}
        self._vectors: dict[tuple[int, int, int], tuple] = {}
        self._compile()

    # -- compile ---------------------------------------------------------------------------

    def _rule(self, index: int, from_zone: Optional[str], to_zone: Optional[str]) -> int:
        p = self.policies[index]
        fw = self.firewall
        src4, src6 = _ranges(fw, p.source_addresses, from_zone)
        dst4, dst6 = _ranges(fw, p.destination_addresses, to_zone)
        action = {"permit": Action.PERMIT, "reject": Action.REJECT}.get(p.action or "",
                                                                      Action.DENY)
        self._rules.append((int(action), index, p.tunnel, src4, src6, dst4, dst6,
                            _terms(fw, p.applications)))
        if len(self._rules) > MAX_RULES:
            raise ValueError(f"security policies compile to more than {MAX_RULES} rules")
        return len(self._rules) - 1

    def _compile(self) -> None:
        nz = len(self.zones)
        for fi in range(nz):
            for ti in range(nz):
                self._contexts[(fi, ti)] = []
        for i, p in enumerate(self.policies):
            if not p.active or p.global_policy:
                continue
            key = (self.zone_ids.get(p.from_zones[0], -1), self.zone_ids.get(p.to_zones[0], -1))
            if key in self._contexts:
                self._contexts[key].append(self._rule(i, p.from_zones[0], p.to_zones[0]))
        for i, p in enumerate(self.policies):
            if not p.active or not p.global_policy:
                continue
            for (fi, ti), rules in self._contexts.items():
                fz, tz = self.zones[fi], self.zones[ti]
                if p.from_zones and fz not in p.from_zones and "any" not in p.from_zones:
                    continue
                if p.to_zones and tz not in p.to_zones and "any" not in p.to_zones:
                    continue
                rules.append(self._rule(i, fz, tz))

    def arrays(self) -> dict[str, np.ndarray]:
        """The flat form (module docstring), for a C pipeline."""
        n = len(self._rules)
        nz = len(self.zones)
        out: dict[str, Any] = {
            "rule_action": np.array([r[0] for r in self._rules], dtype=np.uint8),
            "rule_policy": np.array([r[1] for r in self._rules], dtype=np.int32),
            "rule_tunnel": np.array([self.tunnels.index(r[2]) if r[2] else -1
                                     for r in self._rules], dtype=np.int32),
            "default_action": np.array([int(self.default_action)], dtype=np.uint8),
        }
        ctx_off = [0]
        ctx_rules: list[int] = []
        for fi in range(nz):
            for ti in range(nz):
                ctx_rules += self._contexts[(fi, ti)]
                ctx_off.append(len(ctx_rules))
        out["ctx_off"] = np.array(ctx_off, dtype=np.uint32)
        out["ctx_rules"] = np.array(ctx_rules, dtype=np.uint32)
        for side, k4, k6 in (("src", 3, 4), ("dst", 5, 6)):
            off4, lo4, hi4 = [0], [], []
            off6, lo6, hi6 = [0], [], []
            for r in self._rules:
                for lo, hi in r[k4]:
                    lo4.append(lo)
                    hi4.append(hi)
                off4.append(len(lo4))
                for lo, hi in r[k6]:
                    lo6.append(lo)
                    hi6.append(hi)
                off6.append(len(lo6))
            out[f"{side}4_off"] = np.array(off4, dtype=np.uint32)
            out[f"{side}4_lo"] = np.array(lo4, dtype=np.uint32)
            out[f"{side}4_hi"] = np.array(hi4, dtype=np.uint32)
            out[f"{side}6_off"] = np.array(off6, dtype=np.uint32)
            for name, values in (("lo", lo6), ("hi", hi6)):
                out[f"{side}6_{name}_hi"] = np.array([v >> 64 for v in values], dtype=np.uint64)
                out[f"{side}6_{name}_lo"] = np.array([v & _M64 for v in values], dtype=np.uint64)
        app_off = [0]
        cols: dict[str, list[int]] = {k: [] for k in ("proto", "sport_lo", "sport_hi",
                                                      "dport_lo", "dport_hi", "icmp_type",
                                                      "icmp_code")}
        for r in self._rules:
            for t in r[7]:
                cols["proto"].append(-1 if t.protocol is None else t.protocol)
                cols["sport_lo"].append(t.source_ports[0])
                cols["sport_hi"].append(t.source_ports[1])
                cols["dport_lo"].append(t.destination_ports[0])
                cols["dport_hi"].append(t.destination_ports[1])
                cols["icmp_type"].append(-1 if t.icmp_type is None else t.icmp_type)
                cols["icmp_code"].append(-1 if t.icmp_code is None else t.icmp_code)
            app_off.append(len(cols["proto"]))
        out["app_off"] = np.array(app_off, dtype=np.uint32)
        for k, v in cols.items():
            dtype = np.int16 if k in ("proto", "icmp_type", "icmp_code") else np.uint16
            out[f"app_{k}"] = np.array(v, dtype=dtype)
        assert len(out["rule_action"]) == n
        return out

    # -- lookup ----------------------------------------------------------------------------

    @staticmethod
    def _app_ok(terms: list[ApplicationTerm], ft: FiveTuple) -> bool:
        for t in terms:
            if t.protocol is not None and t.protocol != ft.protocol:
                continue
            ports_any = t.source_ports == (0, 65535) and t.destination_ports == (0, 65535)
            if not ports_any:
                if ft.sport is None or ft.dport is None:
                    continue
                if not (t.source_ports[0] <= ft.sport <= t.source_ports[1]
                        and t.destination_ports[0] <= ft.dport <= t.destination_ports[1]):
                    continue
            if t.icmp_type is not None and t.icmp_type != ft.icmp_type:
                continue
            if t.icmp_code is not None and t.icmp_code != ft.icmp_code:
                continue
            return True
        return False

    def match(self, from_zone: Optional[str], to_zone: Optional[str], ft: FiveTuple) -> Decision:
        """The decision for `ft` from `from_zone` to `to_zone`, without counting it."""
        fi = self.zone_ids.get(from_zone or "", -1)
        ti = self.zone_ids.get(to_zone or "", -1)
        if fi < 0 or ti < 0:
            side = "from" if fi < 0 else "to"
            zone = from_zone if fi < 0 else to_zone
            return Decision(Action.DENY, reason=f"{side} interface in no security zone"
                            + (f" ({zone})" if zone else ""))
        s, d = int(ft.src), int(ft.dst)
        v6 = ft.version == 6
        rules = self._contexts[(fi, ti)]
        if len(rules) >= self.VECTOR_MIN:
            return self._match_vector(fi, ti, ft, s, d)
        for r in rules:
            action, index, tunnel, src4, src6, dst4, dst6, terms = self._rules[r]
            srcs, dsts = (src6, dst6) if v6 else (src4, dst4)
            if not any(lo <= s <= hi for lo, hi in srcs):
                continue
            if not any(lo <= d <= hi for lo, hi in dsts):
                continue
            if not self._app_ok(terms, ft):
                continue
            return Decision(Action(action), index, self.policies[index].name, tunnel)
        return Decision(self.default_action, reason="default policy")

    def _vector(self, fi: int, ti: int, version: int) -> tuple:
        """(positions, lo, hi) of every source and every destination range of the zone pair's
        rules of one family: 32-bit for IPv4, (high, low) 64-bit halves for IPv6."""
        key = (fi, ti, version)
        vec = self._vectors.get(key)
        if vec is None:
            rules = self._contexts[(fi, ti)]
            k_src, k_dst = (3, 5) if version == 4 else (4, 6)
            sides = []
            for k in (k_src, k_dst):
                pos = [p for p, r in enumerate(rules) for _ in self._rules[r][k]]
                ranges = [rg for r in rules for rg in self._rules[r][k]]
                if version == 4:
                    lo = np.array([a for a, _ in ranges], dtype=np.uint32)
                    hi = np.array([b for _, b in ranges], dtype=np.uint32)
                    sides.append((np.array(pos, dtype=np.int64), lo, hi))
                else:
                    halves = [np.array([v >> 64 for v in vals], dtype=np.uint64)
                              for vals in ([a for a, _ in ranges], [b for _, b in ranges])]
                    lows = [np.array([v & _M64 for v in vals], dtype=np.uint64)
                            for vals in ([a for a, _ in ranges], [b for _, b in ranges])]
                    sides.append((np.array(pos, dtype=np.int64), (halves[0], lows[0]),
                                  (halves[1], lows[1])))
            vec = self._vectors[key] = tuple(sides)
        return vec

    @staticmethod
    def _inside(side: tuple, x: int, version: int) -> np.ndarray:
        pos, lo, hi = side
        if version == 4:
            x32 = np.uint32(x)
            return pos[(lo <= x32) & (x32 <= hi)]
        xh, xl = np.uint64(x >> 64), np.uint64(x & _M64)
        ge_lo = (xh > lo[0]) | ((xh == lo[0]) & (xl >= lo[1]))
        le_hi = (xh < hi[0]) | ((xh == hi[0]) & (xl <= hi[1]))
        return pos[ge_lo & le_hi]

    def _match_vector(self, fi: int, ti: int, ft: FiveTuple, s: int, d: int) -> Decision:
        version = ft.version
        src_side, dst_side = self._vector(fi, ti, version)
        rules = self._contexts[(fi, ti)]
        mask = np.zeros(len(rules), dtype=bool)
        mask[self._inside(src_side, s, version)] = True
        both = np.zeros(len(rules), dtype=bool)
        both[self._inside(dst_side, d, version)] = True
        candidates = np.flatnonzero(mask & both)     # ascending: policy order
        for p in candidates:
            action, index, tunnel, *_rest, terms = self._rules[rules[int(p)]]
            if self._app_ok(terms, ft):
                return Decision(Action(action), index, self.policies[index].name, tunnel)
        return Decision(self.default_action, reason="default policy")

    def lookup(self, from_zone: Optional[str], to_zone: Optional[str],
               ft: FiveTuple) -> Decision:
        """`match`, and count the packet on the deciding policy (`hits`)."""
        decision = self.match(from_zone, to_zone, ft)
        self.count(decision)
        return decision

    def count(self, decision: Decision, packets: int = 1) -> None:
        if decision.index >= 0:
            self.hits[decision.index] += packets
        elif decision.reason == "default policy":
            self.default_hits += packets

    def __len__(self) -> int:
        return len(self._rules)
