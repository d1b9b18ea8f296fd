"""Security policy on the gateway's data path (Junos flow: route lookup, zones, policy).

A configuration with security zones or policies puts every packet through them:

  - outbound (inner packet from the local side): route lookup as before (st0 routes,
    traffic-selector routes); from-zone is the zone of the interface towards the source
    (`ZoneMap`), to-zone the zone of the VPN's st0 interface when the route goes into a
    route-based tunnel, else the zone of the interface towards the destination. Deny/reject
    or no zone: dropped and counted (reject also answers the sender, `policy.reject`). A `permit tunnel ipsec-vpn <v>` policy sends the packet
    into policy-based VPN <v> (its child SA pair whose proxy ID matches); a plain permit into
    a route-based tunnel lets the route decide.
  - inbound (decrypted inner packet): from-zone is the zone of the VPN's st0 interface
    (route-based) or of its IKE gateway's external interface (policy-based), to-zone the zone
    towards the inner destination; only a permitting policy delivers it.
  - IKE arriving on the data path is accepted only on an address whose interface's
    host-inbound-traffic allows system-services ike.

Stateful, as Junos is: the first packet of a flow is looked up; a permitted one opens a
session (both directions: the reply matches the reverse key, an ICMP echo reply its request's
identifier), and later packets of either direction follow the session without a lookup, into
the same policy-based tunnel. So a policy's hit count counts sessions, and replies need no
policy of their own. Denied packets open no session: each is looked up (the decision is cached
per flow, bounded) and counted on the deciding policy. The session table is bounded
(`MAX_SESSIONS`, least recently used out first); the model has no session timers.
"""
from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..policy import Action, Decision, PolicyTable, ZoneMap, five_tuple
from ..policy.packet import FiveTuple, session_keys
from ..policy.reject import reject_reply

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = ["PolicyPath", "PolicyCounters", "MAX_SESSIONS"]

_CACHE = 65536
#: Most sessions (each counted once, both directions share an entry pair).
MAX_SESSIONS = 65536


@dataclass
class PolicyCounters:
    """Packets the policy stage dropped, by why (all also in `Packets dropped` of flow
    statistics)."""

    denied_outbound: int = 0       # deny/reject/default deny, local -> tunnel
    denied_inbound: int = 0        # deny/reject/default deny, tunnel -> local
    no_zone: int = 0               # the ingress or egress interface is in no zone
    malformed: int = 0             # no IP header to match
    ike_host_inbound: int = 0      # IKE to an address whose zone does not allow ike
    #: rejected packets answered (TCP RST, ICMP port unreachable: `policy.reject`); the
    #: answers are not drops
    reject_replies: int = 0

    @property
    def dropped(self) -> int:
        return (self.denied_outbound + self.denied_inbound + self.no_zone + self.malformed
                + self.ike_host_inbound)


class PolicyPath:
    """The policy stage of one gateway (module docstring); None-free: build it only when the
    configuration has zones or policies (`for_gateway`)."""

    def __init__(self, gw: "Gateway") -> None:
        cfg = gw.config
        self.gw = gw
        self.table = PolicyTable(cfg.firewall)
        self.zones = ZoneMap(cfg)
        self.counters = PolicyCounters()
        self._reject_reply: Optional[bytes] = None
        self._cache: dict[tuple, Decision] = {}
        #: session key -> (deciding policy index, policy-based tunnel or None)
        self.sessions: "OrderedDict[tuple, tuple[int, Optional[str]]]" = OrderedDict()
        self._vpn_zone: dict[str, Optional[str]] = {}
        for v in cfg.ipsec_vpns.values():
            if v.bind_interface is not None:
                self._vpn_zone[v.name] = self.zones.zone_of(v.bind_interface)
            else:
                gwc = cfg.gateway_of(v)
                ext = gwc.external_interface if gwc is not None else \
                    (v.manual.external_interface if v.manual is not None else None)
                self._vpn_zone[v.name] = self.zones.zone_of(ext)

    @classmethod
    def for_gateway(cls, gw: "Gateway") -> Optional["PolicyPath"]:
        return cls(gw) if gw.config.firewall.configured else None

    def _session(self, keys: tuple[bytes, bytes]) -> Optional[tuple[int, Optional[str]]]:
        hit = self.sessions.get(keys[0])
        if hit is not None:
            self.sessions.move_to_end(keys[0])
        return hit

    def _open(self, keys: tuple[bytes, bytes], d: Decision) -> None:
        while len(self.sessions) > 2 * MAX_SESSIONS - 2:
            self.sessions.popitem(last=False)
        self.sessions[keys[0]] = (d.index, d.tunnel)
        self.sessions[keys[1]] = (d.index, d.tunnel)

    def _decide(self, keys: tuple[bytes, bytes], from_zone: Optional[str],
                to_zone: Optional[str], ft: FiveTuple) -> Decision:
        """A new flow's decision: looked up (denied ones cached), counted, and a permitted
        one opens a session."""
        key = (keys[0], ft.icmp_type, from_zone, to_zone)
        d = self._cache.get(key)
        if d is None:
            d = self.table.match(from_zone, to_zone, ft)
            if not d.permitted:
                if len(self._cache) >= _CACHE:
                    self._cache.clear()
                self._cache[key] = d
        self.table.count(d)
        if d.permitted:
            self._open(keys, d)
        return d

    def take_reject_reply(self) -> Optional[bytes]:
        """What `then reject` answers the packet the last call dropped (TCP RST, ICMP port
        unreachable, `policy.reject`), once; None after a deny or when nothing is sent."""
        reply, self._reject_reply = self._reject_reply, None
        return reply

    def _drop(self, d: Decision, outbound: bool, pkt: bytes = b"") -> None:
        self._reject_reply = None
        if d.action == Action.REJECT and pkt:
            self._reject_reply = reject_reply(pkt)
            if self._reject_reply is not None:
                self.counters.reject_replies += 1
        if d.reason.startswith(("from interface", "to interface")):
            self.counters.no_zone += 1
        elif outbound:
            self.counters.denied_outbound += 1
        else:
            self.counters.denied_inbound += 1

    def outbound(self, pkt: bytes, key: bytes, ingress: Optional[str] = None):
        """The gateway's route hit (tunnel, pair, engine, limit) for an inner packet, None
        for no route/no SA yet, or False when policy drops it (counted here)."""
        gw = self.gw
        keys = session_keys(pkt)
        if keys is None:
            self.counters.malformed += 1
            return False
        routed = gw._route_cache.get(key, False)
        if routed is False:
            routed = gw._route(key)
        session = self._session(keys)
        if session is not None:                      # an open session: no lookup
            if session[1] is not None:
                return self._tunnel_hit(session[1], key)
            return routed if self._route_based(routed) else None
        ft = five_tuple(pkt)
        assert ft is not None
        route_based = self._route_based(routed)
        from_zone = self.zones.zone_of(ingress) if ingress is not None else \
            self.zones.zone_towards(ft.src)
        if route_based:
            to_zone = self._vpn_zone.get(routed[0].name)
        else:
            to_zone = self.zones.zone_towards(ft.dst)
        d = self._decide(keys, from_zone, to_zone, ft)
        if not d.permitted:
            self._drop(d, True, pkt)
            return False
        if d.tunnel is not None:
            return self._tunnel_hit(d.tunnel, key)
        return routed if route_based else None

    def _route_based(self, routed) -> bool:
        """The route went into a route-based tunnel (a policy-based one is reached by policy
        only, its auto routes notwithstanding)."""
        if routed is None:
            return False
        vpn = self.gw.config.ipsec_vpns.get(routed[0].name)
        return vpn is None or not vpn.policy_based

    def _tunnel_hit(self, name: str, key: bytes):
        """The child SA pair of policy-based VPN `name` whose proxy ID holds the packet, as the
        gateway's route hits are (cached with them, so a tunnel change clears it too)."""
        from .mtu import max_inner_length
        from .routing import ANY
        gw = self.gw
        cache_key = (name, key)
        hit = gw._route_cache.get(cache_key, False)     # type: ignore[call-overload]
        if hit is not False:
            return hit
        info = gw._tunnels.get(name)
        if info is None or name not in gw.distributor:
            if gw.tunnel_trigger is not None:       # on-traffic establishment
                gw.tunnel_trigger(name)
            return None
        rec = gw.distributor.tunnel(name)
        result = None
        half = len(key) // 2
        src, dst = ipaddress.ip_address(key[:half]), ipaddress.ip_address(key[half:])
        for i, pair in enumerate(rec.pairs):
            sel = info.selectors[i] if i < len(info.selectors) else ANY
            if sel.matches_outbound(src, dst):
                result = (info, pair, gw._engine_index(rec.engine),
                          max_inner_length(pair.outbound, gw.mtu))
                break
        if len(gw._route_cache) >= 65536:
            gw._route_cache.clear()
        gw._route_cache[cache_key] = result             # type: ignore[index]
        return result

    def inbound(self, inner: bytes, vpn: str) -> bool:
        """True when a decrypted packet of `vpn` may be delivered (counted if not)."""
        keys = session_keys(inner)
        if keys is None:
            self.counters.malformed += 1
            return False
        if self._session(keys) is not None:           # a reply, or a later packet
            return True
        ft = five_tuple(inner)
        assert ft is not None
        from_zone = self._vpn_zone.get(vpn)
        to_zone = self.zones.zone_towards(ft.dst)
        d = self._decide(keys, from_zone, to_zone, ft)
        if d.permitted:
            return True
        self._drop(d, False, inner)
        return False

    def ike_allowed(self, local_address: str) -> bool:
        """IKE to `local_address` passes host-inbound-traffic (counted if not)."""
        if self.zones.host_inbound_allows(local_address, "ike"):
            return True
        self.counters.ike_host_inbound += 1
        return False
