"""`set chassis high-availability ...`: Multinode High Availability (MNHA) statements.

Two SRX nodes protect each other at layer 3 (docs/mnha.md): each names itself (`local-id`) and
its peer (`peer-id`, with the interchassis-link (ICL) address, interface and the IPsec VPN that
encrypts the ICL, `vpn-profile`), and groups its services into services redundancy groups
(SRGs): SRG0 is active on both nodes; SRG1 and up are active on one node at a time, chosen by
`activeness-priority`, with `preemption` and a floating `virtual-ip` that the active node owns.

    set chassis high-availability local-id 1 local-ip 10.22.0.1
    set chassis high-availability peer-id 2 peer-ip 10.22.0.2
    set chassis high-availability peer-id 2 interface ge-0/0/2.0
    set chassis high-availability peer-id 2 vpn-profile ICL-VPN
    set chassis high-availability peer-id 2 liveness-detection minimum-interval 400
    set chassis high-availability peer-id 2 liveness-detection multiplier 5
    set chassis high-availability services-redundancy-group 0 peer-id 2
    set chassis high-availability services-redundancy-group 1 deployment-type routing
    set chassis high-availability services-redundancy-group 1 peer-id 2
    set chassis high-availability services-redundancy-group 1 activeness-priority 200
    set chassis high-availability services-redundancy-group 1 preemption
    set chassis high-availability services-redundancy-group 1 virtual-ip 1 ip 192.0.2.10/32
    set chassis high-availability services-redundancy-group 1 virtual-ip 1 interface lo0.0
    set chassis high-availability services-redundancy-group 1 monitor interface ge-0/0/1
    set chassis high-availability services-redundancy-group 1 activeness-probe dest-ip 192.0.2.254

An IPsec VPN belongs to the SRG whose virtual IP is its IKE gateway's `local-address` (or its
manual SA's local address): that is the address peers reach, and it floats with the SRG.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__all__ = ["problems", "Liveness", "HaPeer", "VirtualIp", "ServicesRedundancyGroup", "HighAvailability",
           "HaBuilder", "parse_statement", "MAX_SRG", "DEFAULT_PRIORITY"]

#: SRG numbers the model accepts (Junos allows SRG0 and SRG1..SRG-n; the model keeps it small).
MAX_SRG = 16
#: Activeness priority when none is configured (a higher number wins; 1..254).
DEFAULT_PRIORITY = 100
DEPLOYMENT_TYPES = ("routing", "switching", "hybrid")


@dataclass(frozen=True)
class Liveness:
    """`liveness-detection`: heartbeats every `minimum_interval_ms`; the peer is lost after
    `multiplier` of them go unanswered."""

    minimum_interval_ms: int = 1000
    multiplier: int = 3

    @property
    def timeout(self) -> float:
        """Seconds without a heartbeat before the peer is declared lost."""
        return self.minimum_interval_ms * self.multiplier / 1000.0


@dataclass(frozen=True)
class HaPeer:
    peer_id: int
    peer_ip: Optional[str] = None
    interface: Optional[str] = None
    vpn_profile: Optional[str] = None
    liveness: Liveness = Liveness()
    line: int = 0


@dataclass(frozen=True)
class VirtualIp:
    index: int
    ip: Optional[str] = None          #: address/prefix-length
    interface: Optional[str] = None

    @property
    def address(self) -> Optional[str]:
        return None if self.ip is None else str(ipaddress.ip_interface(self.ip).ip)


@dataclass(frozen=True)
class ServicesRedundancyGroup:
    srg_id: int
    peer_id: Optional[int] = None
    deployment_type: Optional[str] = None
    activeness_priority: int = DEFAULT_PRIORITY
    preemption: bool = False
    virtual_ips: tuple[VirtualIp, ...] = ()
    monitor_interfaces: tuple[str, ...] = ()
    activeness_probe: Optional[str] = None
    line: int = 0

    @property
    def addresses(self) -> tuple[str, ...]:
        """The floating addresses of this SRG (without prefix length)."""
        return tuple(v.address for v in self.virtual_ips if v.address is not None)


@dataclass(frozen=True)
class HighAvailability:
    """The whole `chassis high-availability` stanza."""

    local_id: Optional[int] = None
    local_ip: Optional[str] = None
    peers: dict[int, HaPeer] = field(default_factory=dict)
    srgs: dict[int, ServicesRedundancyGroup] = field(default_factory=dict)
    line: int = 0

    @property
    def peer(self) -> Optional[HaPeer]:
        """The peer node (the model is two nodes: one peer)."""
        return next(iter(self.peers.values()), None)

    def srg_of_address(self, address: Optional[str]) -> Optional[int]:
        """The SRG (1 and up) whose virtual IP is `address`, if any."""
        if address is None:
            return None
        for srg in self.srgs.values():
            if srg.srg_id and address in srg.addresses:
                return srg.srg_id
        return None


# -- parsing -------------------------------------------------------------------------------

def _ip(text: str) -> str:
    return str(ipaddress.ip_address(text))


def _prefix(text: str) -> str:
    if "/" not in text:
        raise ValueError(text)
    return str(ipaddress.ip_interface(text))


def _ifl(text: str) -> str:
    if not text or text.startswith("-") or " " in text:
        raise ValueError(text)
    return text


class HaBuilder:
    """Collects `chassis high-availability` statements; `freeze` makes the model."""

    def __init__(self) -> None:
        self.seen = False
        self.line = 0
        self.local_id: Optional[int] = None
        self.local_ip: Optional[str] = None
        self.peers: dict[int, dict[str, Any]] = {}
        self.srgs: dict[int, dict[str, Any]] = {}

    def freeze(self) -> Optional[HighAvailability]:
        if not self.seen:
            return None
        peers = {}
        for pid, f in self.peers.items():
            live = Liveness(f.pop("minimum_interval_ms", 1000), f.pop("multiplier", 3))
            peers[pid] = HaPeer(peer_id=pid, liveness=live, **f)
        srgs = {}
        for sid, f in self.srgs.items():
            vips = tuple(VirtualIp(i, **v) for i, v in sorted(f.pop("virtual_ips", {}).items()))
            srgs[sid] = ServicesRedundancyGroup(
                srg_id=sid, virtual_ips=vips,
                monitor_interfaces=tuple(f.pop("monitor_interfaces", ())), **f)
        return HighAvailability(local_id=self.local_id, local_ip=self.local_ip, peers=peers,
                                srgs=srgs, line=self.line)


def parse_statement(c: Any, b: HaBuilder, line: int) -> None:
    """Parse the rest of `set chassis high-availability ...` from cursor `c` (the Junos
    parser's `_Cursor`: keyword/value/integer/at_end) into `b`."""
    if not b.seen:
        b.seen, b.line = True, line
    item = c.keyword(("local-id", "peer-id", "services-redundancy-group"))
    if item == "local-id":
        b.local_id = c.integer("a node id", 1, 2)
        if not c.at_end():
            c.keyword(("local-ip",))
            b.local_ip = c.value("the node's ICL address", _ip)
        return
    if item == "peer-id":
        pid = c.integer("a node id", 1, 2)
        f = b.peers.setdefault(pid, {"line": line})
        what = c.keyword(("peer-ip", "interface", "vpn-profile", "liveness-detection"))
        if what == "peer-ip":
            f["peer_ip"] = c.value("the peer node's ICL address", _ip)
        elif what == "interface":
            f["interface"] = c.value("the ICL's logical interface (e.g. ge-0/0/2.0)", _ifl)
        elif what == "vpn-profile":
            f["vpn_profile"] = c.value("the IPsec VPN that encrypts the ICL")
        else:
            knob = c.keyword(("minimum-interval", "multiplier"))
            if knob == "minimum-interval":
                f["minimum_interval_ms"] = c.integer("milliseconds", 50, 60000)
            else:
                f["multiplier"] = c.integer("missed heartbeats", 1, 255)
        return
    sid = c.integer("a services redundancy group", 0, MAX_SRG)
    f = b.srgs.setdefault(sid, {"line": line})
    what = c.keyword(("peer-id", "deployment-type", "activeness-priority", "preemption",
                      "virtual-ip", "monitor", "activeness-probe"))
    set_: Callable[[str, Any], None] = f.__setitem__
    if what == "peer-id":
        set_("peer_id", c.integer("a node id", 1, 2))
    elif what == "deployment-type":
        set_("deployment_type", c.keyword(DEPLOYMENT_TYPES))
    elif what == "activeness-priority":
        set_("activeness_priority", c.integer("a priority", 1, 254))
    elif what == "preemption":
        set_("preemption", True)
    elif what == "virtual-ip":
        index = c.integer("a virtual-ip index", 1, 64)
        vip = f.setdefault("virtual_ips", {}).setdefault(index, {})
        knob = c.keyword(("ip", "interface"))
        if knob == "ip":
            vip["ip"] = c.value("an address/prefix-length", _prefix)
        else:
            vip["interface"] = c.value("a logical interface", _ifl)
    elif what == "monitor":
        c.keyword(("interface",))
        name = c.value("an interface to monitor", _ifl)
        mons = f.setdefault("monitor_interfaces", [])
        if name not in mons:
            mons.append(name)
    else:
        c.keyword(("dest-ip",))
        set_("activeness_probe", c.value("the probe's destination address", _ip))


def problems(cfg: Any) -> list[tuple[int, str]]:
    """(line, message) for what keeps `cfg` from running as an MNHA node (`validate`)."""
    ha = cfg.high_availability
    if ha is None:
        return []
    out: list[tuple[int, str]] = []
    line = ha.line
    if ha.local_id is None:
        out.append((line, "missing 'chassis high-availability local-id <n>'"))
    if ha.local_ip is None:
        out.append((line, "missing 'chassis high-availability local-id <n> local-ip <ip>'"))
    if len(ha.peers) != 1:
        out.append((line, f"the model runs two nodes: exactly one peer-id is needed "
                   f"({len(ha.peers)} configured)"))
    for peer in ha.peers.values():
        line = peer.line
        if peer.peer_id == ha.local_id:
            out.append((line, f"peer-id {peer.peer_id} is the local-id"))
        if peer.peer_ip is None:
            out.append((line, f"peer-id {peer.peer_id}: missing 'peer-ip'"))
        if peer.vpn_profile is None:
            out.append((line, f"peer-id {peer.peer_id}: missing 'vpn-profile' (the ICL must be "
                       "encrypted: an IPsec VPN with ha-link-encryption)"))
        else:
            vpn = cfg.ipsec_vpns.get(peer.vpn_profile)
            if vpn is None:
                out.append((line, f"peer-id {peer.peer_id}: vpn-profile {peer.vpn_profile!r} is not "
                           "a 'security ipsec vpn'"))
            elif not vpn.ha_link_encryption:
                out.append((line, f"vpn-profile {peer.vpn_profile}: the VPN lacks "
                           "'ha-link-encryption'"))
    for sid, srg in ha.srgs.items():
        line = srg.line
        if srg.peer_id is not None and srg.peer_id not in ha.peers:
            out.append((line, f"services-redundancy-group {sid}: peer-id {srg.peer_id} is not a "
                       "configured peer-id"))
        if sid == 0 and (srg.virtual_ips or srg.preemption or srg.deployment_type):
            out.append((line, "services-redundancy-group 0 is active on both nodes: it takes no "
                       "virtual-ip, preemption or deployment-type"))
        if sid and not srg.virtual_ips:
            out.append((line, f"services-redundancy-group {sid}: no 'virtual-ip': peers would have "
                       "no address that follows the active node"))
        for v in srg.virtual_ips:
            if v.ip is None:
                out.append((line, f"services-redundancy-group {sid} virtual-ip {v.index}: missing "
                           "'ip'"))
    return out
