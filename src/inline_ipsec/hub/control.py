"""`HubControl`: IKEv2 for hub-and-spoke gateways (point-to-multipoint st0, AutoVPN, ADVPN),
sans-I/O, on the CPU engine (docs/design.md Table 1: point-to-multipoint and ADVPN tunnels are
not offloaded; each tunnel is placed with its configured VPN's deployment, so the placement
says why).

    hub = HubControl(gw, local=("192.0.2.1", 500))
    hub.start(now)                                   # static VPNs with establish immediately
    for data, addr in hub.datagrams_to_send(now): sock.sendto(data, addr)
    hub.receive(data, addr, now)                     # a UDP payload from port 500 or 4500
    hub.handle_timer(now) when now >= hub.get_timer()
    out = hub.inbound(wire, now)                     # ESP in: delivered here, or forwarded

One IKE SA per tunnel. The tunnels of one gateway:

- a VPN whose `ike gateway` has an `address`: one tunnel named like the VPN; we initiate it
  (`establish-tunnels immediately`, or on traffic) and accept it from that address;
- a VPN whose `ike gateway` is `dynamic <identity>` (an AutoVPN hub): any number of spokes
  that prove an identity the pattern matches (`identity.IdentityPattern`), by certificate or
  PSK; each gets its own tunnel `<vpn>@<spoke address>` on the VPN's multipoint st0, placed and
  shown like the VPN. Spokes come and go without a configuration change; at most
  `dynamic connections-limit` (default `MAX_SPOKES`) at once: a further spoke's IKE_SA_INIT
  is not answered and is counted (`refused`);
- an ADVPN shortcut `<vpn>~<peer address>` between two partners, on a suggestion from the hub
  (`advpn.Suggestion`): the partner the suggestion tells to initiate does so; the other accepts
  that peer (by address, then by the identity of the suggestion, proven by certificate).

Next-hop tunnel binding (`nhtb.NhtbTable`): static `next-hop-tunnel` entries; automatic ones
from the peer's CP(CFG_REQUEST) INTERNAL_IP4_ADDRESS (a dynamic VPN answers CFG_REPLY with the
requested address if it lies in the st0 subnet and is free, or with a free address of that
subnet for 0.0.0.0, RFC 7296 §3.15.1-§3.15.4), else from a single-address traffic selector
inside the st0 subnet; a VPN initiator whose st0 unit has an IPv4 address asks for that one.
After every change the routes are resolved again (`nhtb.resolve_routes`) and given to the
gateway (`Gateway.set_routes`): shortcut routes first, then the configuration's routes through
NHTB, then traffic selectors.

ADVPN. A suggester (`advpn` without `suggester disable`) watches the packets it forwards
(`inbound`): one that came from one of its tunnels and leaves by another, both of suggester
VPNs, makes it send each of the two peers a suggestion about the other (at most once per pair
per `suggest_holddown` seconds). A partner (`advpn` without `partner disable`) takes a
suggestion only on the IKE SA of one of its partner VPNs, only with certificate
authentication, and while it has fewer than `connection-limit` shortcuts; otherwise it is
counted as ignored. A shortcut's routes (the prefixes of the suggestion and the peer's tunnel
address) come before the hub's, so traffic takes the shortcut; when it carries fewer than
`idle-threshold` packets per second for `idle-time` seconds (`advpn.IdleTracker`), the partner
deletes its IKE SA and traffic falls back to the hub.

Bounds: tunnels are bounded by the connections limits and the ADVPN connection limit; the
expected shortcuts by the connection limit and `shortcut_wait`; the suggestion holddown table
by `MAX_SUGGESTED`; NHTB by `nhtb.MAX_ENTRIES`; the IKE manager bounds its own sessions.
"""
from __future__ import annotations

import dataclasses
import ipaddress
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

from ..config.model import IkeGateway, IpsecVpn
from ..dataplane.gateway import Output
from ..control.ike_config import NOT_NEGOTIATED, IkeConfigError, ike_config_for_gateway
from ..control.negotiated import _remove, _with_vpn_options
from ..ike import (ChildSaDown, ChildSaRekeyed, ChildSaUp, IkeConfig, IkeManager, IkeSaDown,
                   IkeSaUp, IkeV2Session)
from ..ike.auth import Identity
from ..ike.constants import NON_ESP_MARKER
from ..ike.events import PrivateNotify
from ..ike.payloads import (CFG_ACK, CFG_REPLY, CFG_SET, INTERNAL_IP4_ADDRESS,
                            INTERNAL_IP6_ADDRESS, CpPayload)
from ..ike.states import IkeSaState
from ..stats import IkeSaRecord
from ..stats.show import render_ike_sa_summary
from .advpn import SHORTCUT_SUGGESTION, AdvpnCounters, IdleTracker, Suggestion, \
    SuggestionError
from .identity import IdentityPattern
from ..packet.ip import forwarded
from .nhtb import NhtbTable, render_next_hop_tunnels, resolve_routes

if TYPE_CHECKING:
    from ..dataplane.gateway import Gateway

__all__ = ["HubControl", "HubTunnel", "MAX_SPOKES", "hub_vpns"]

Addr = tuple
#: spokes one dynamic gateway accepts without `dynamic connections-limit`
MAX_SPOKES = 1000
#: pairs remembered for the suggestion holddown
MAX_SUGGESTED = 4096
#: (event, tunnel) pairs kept in `HubControl.events`
EVENT_HISTORY = 1024


def hub_vpns(config) -> list[IpsecVpn]:
    """The VPNs `HubControl` runs: IKEv2 VPNs on a multipoint st0 unit, on a `dynamic`
    gateway or on an `advpn` gateway."""
    out = []
    for v in config.ipsec_vpns.values():
        g = config.gateway_of(v)
        if v.ike is None or g is None or g.version in NOT_NEGOTIATED:
            continue
        unit = _unit(config, v)
        if g.dynamic is not None or g.advpn is not None or (unit is not None and
                                                            unit.multipoint):
            out.append(v)
    return out


def _rekey_later(cfg: IkeConfig) -> None:
    """The responder's side rekeys later than the initiator's (between soft and hard
    lifetime), so the two ends do not start colliding rekeys at the same moment (RFC 7296
    §2.8.1 would resolve them, but both would retry in step)."""
    cfg.children = [dataclasses.replace(c, rekey_seconds=(c.soft_seconds + c.lifetime_seconds)
                                        / 2) for c in cfg.children]
    if cfg.ike_rekey_seconds is not None:
        cfg.ike_rekey_seconds *= 1.1        # the soft limit is 5/6 of the lifetime


def _unit(config, vpn: IpsecVpn):
    b = vpn.bind_interface or ""
    return config.st0_units.get(int(b[4:])) if b[4:].isdigit() else None


@dataclass
class _Vpn:
    name: str
    gateway: IkeGateway
    config: IkeConfig
    local: str
    remote: Optional[str]               # configured peer (None: dynamic)
    transport: Optional[Addr]
    establish: str
    interface: Optional[str]
    max_peers: int
    connect_at: Optional[float] = None


@dataclass
class HubTunnel:
    """One live tunnel: its IKE SA, peer, next-hop address and routes."""

    name: str
    vpn: str                            #: the configured VPN it belongs to
    kind: str                           #: "static", "spoke" or "shortcut"
    session: IkeV2Session
    peer: Addr
    remote: str                         #: outer address of the peer (data plane)
    tunnel_address: Optional[str] = None
    routes: list[str] = field(default_factory=list)
    idle: Optional[IdleTracker] = None
    idle_check_at: Optional[float] = None
    torn_down_idle: bool = False
    #: (packets decrypted, packets encrypted) last reported to dead peer detection
    seen: Optional[tuple[int, int]] = None


@dataclass
class _Expected:
    """A shortcut a partner was told about and waits for (or initiated)."""

    name: str
    vpn: str
    suggestion: Suggestion
    config: IkeConfig
    deadline: float


class HubControl:
    """IKEv2, NHTB, AutoVPN and ADVPN for one `Gateway` (module docstring).

    `local`: our IKE transport address (default: the first VPN's local address, port 500);
    `peers`: configured peer address -> the transport its IKE listens on (host, port), as in
    `IkeControl` (gateways on loopback ports); `credentials`/`ca_certificates`: certificate
    authentication (`ike_config.ike_config_for_gateway`); `suggest_holddown`: seconds between
    two suggestions for one pair; `shortcut_wait`: how long a partner waits for a suggested
    shortcut to come up; `backoff`: seconds before a static VPN that went down is retried.
    """

    def __init__(self, gw: "Gateway", *, local: Optional[Addr] = None, natt_port: int = 4500,
                 peers: Optional[Mapping[str, Addr]] = None,
                 credentials: Optional[Mapping[str, Any]] = None,
                 ca_certificates: Iterable[object] = (), suggest_holddown: float = 60.0,
                 shortcut_wait: float = 30.0, backoff: float = 2.0,
                 config_overrides: Optional[Mapping[str, Any]] = None) -> None:
        self.gw = gw
        # the hub forwards spoke to spoke itself (TTL, the ADVPN suggester), so the
        # gateway delivers every decrypted packet to it instead of hairpinning
        gw.hairpin = False
        config = gw.config
        self.peer_map = {k: tuple(v) for k, v in (peers or {}).items()}
        self.mapped = bool(self.peer_map)
        self.suggest_holddown = suggest_holddown
        self.shortcut_wait = shortcut_wait
        self.backoff = backoff
        self.nhtb = NhtbTable(config)
        self._connected_nets: Optional[list] = None     # `_connected`, computed once
        self.counters = AdvpnCounters()
        #: VPNs that cannot run here, with the reason (reported by `show` and `unsupported`)
        self.unsupported: dict[str, str] = {}
        self.vpns: dict[str, _Vpn] = {}
        self.tunnels: dict[str, HubTunnel] = {}
        self._of_session: dict[int, str] = {}          # id(session) -> tunnel name
        self._vpn_of_session: dict[int, str] = {}      # id(session) -> configured VPN
        self._cp_assigned: dict[int, list[str]] = {}   # id(session) -> its st0 addresses
        self._expected: dict[str, _Expected] = {}      # peer host -> shortcut awaited
        self._suggested: dict[frozenset, float] = {}
        self._suggestion_id = 0
        self._routes: list[tuple[str, list[str]]] = []
        #: static routes that reach no tunnel (shown, never silently dropped)
        self.unresolved: list[str] = []
        #: peers refused, by reason
        self.refused: Counter[str] = Counter()
        self.events: deque = deque(maxlen=EVENT_HISTORY)
        #: forwarded packets dropped because their TTL / hop limit ran out
        self.ttl_expired = 0
        self.errors: deque = deque(maxlen=256)
        self._now = 0.0
        self._index = 1
        self._session_index: dict[int, int] = {}
        over = dict(config_overrides or {})
        mine = {v.name for v in hub_vpns(config)}
        for v in config.ipsec_vpns.values():
            if v.ike is not None and v.name not in mine:
                self.unsupported[v.name] = (
                    "not a hub VPN (no multipoint st0, dynamic or advpn gateway, or IKEv1): "
                    "IkeControl negotiates it, HubControl does not")
        for v in hub_vpns(config):
            try:
                self.vpns[v.name] = self._vpn(v, credentials, list(ca_certificates), over)
            except (IkeConfigError, ValueError) as exc:
                self.unsupported[v.name] = str(exc)
        if local is None:
            first = next(iter(self.vpns.values()), None)
            local = (first.local if first else "0.0.0.0", 500)
        self.local = tuple(local)
        self.manager = IkeManager(self.local, natt_port, self._lookup)
        self._resolve()
        gw.tunnel_trigger = self._trigger
        self._triggers: list[str] = []

    # ------------------------------------------------------------------ configuration
    def _vpn(self, v: IpsecVpn, credentials, cas: list, over: dict) -> _Vpn:
        config = self.gw.config
        g = config.gateway_of(v)
        assert g is not None
        unit = _unit(config, v)
        if g.dynamic is not None:
            # the IKE configuration builder wants a peer address: give it a placeholder of
            # the local family, then replace the peer identity with the dynamic pattern
            local = config.local_address_of(dataclasses.replace(g, address=("0.0.0.0",)))
            ph = "::" if local and ":" in local else "0.0.0.0"
            cfg_view = dataclasses.replace(config, ike_gateways={
                **config.ike_gateways, g.name: dataclasses.replace(g, address=(ph,))})
            cfg = ike_config_for_gateway(cfg_view, [cfg_view.ipsec_vpns[v.name]],
                                         credentials=credentials, ca_certificates=cas,
                                         **{"name": v.name, **over})
            cfg.remote_id = IdentityPattern.from_junos(g.dynamic)  # type: ignore[assignment]
            cfg.cp_responder = self._cp_reply
            cfg.select_peer = self._select
            _rekey_later(cfg)
            limit = g.dynamic_connections_limit or MAX_SPOKES
            remote, transport = None, None
            local = local or "0.0.0.0"
        else:
            cfg = ike_config_for_gateway(config, [v], credentials=credentials,
                                         ca_certificates=cas, **{"name": v.name, **over})
            remote = g.address[0]
            transport = self.peer_map.get(remote, (remote, 500))
            local = config.local_address_of(g) or "0.0.0.0"
            limit = 1
            attrs = []
            for prefix in config.interface_addresses.get(v.bind_interface or "", ()):
                iface = ipaddress.ip_interface(prefix)
                if iface.version == 4 and not any(a == INTERNAL_IP4_ADDRESS for a, _ in attrs):
                    attrs.append((INTERNAL_IP4_ADDRESS, iface.ip.packed))
                elif iface.version == 6 and not any(a == INTERNAL_IP6_ADDRESS
                                                    for a, _ in attrs):
                    attrs.append((INTERNAL_IP6_ADDRESS,
                                  iface.ip.packed + bytes([iface.network.prefixlen])))
            if attrs:                           # our own tunnel addresses, not a request
                cfg.cp_request, cfg.cp_type = attrs, CFG_SET
        return _Vpn(v.name, g, cfg, local, remote, transport, v.establish_tunnels,
                    unit.name if unit is not None else v.bind_interface, limit)

    def _dynamic(self) -> list[_Vpn]:
        return [v for v in self.vpns.values() if v.remote is None]

    def _lookup(self, addr: Addr) -> Optional[IkeConfig]:
        """IKE_SA_INIT from `addr`: an expected shortcut, a static VPN's peer, or any spoke of
        a dynamic VPN with room (IKE_AUTH then picks the VPN by identity, `_select`)."""
        host = str(addr[0])
        exp = self._expected.get(host)
        if exp is not None:
            return exp.config
        for v in self.vpns.values():
            if v.transport is not None and (tuple(v.transport) == tuple(addr) or
                                            v.remote == host):
                return v.config
        dyn = [v for v in self._dynamic() if self._spokes(v.name) < v.max_peers]
        if not dyn:
            if self._dynamic():
                self.refused["connections-limit reached"] += 1
            return None
        return dyn[0].config

    def _select(self, idi: Identity, idr: Optional[Identity]) -> Optional[IkeConfig]:
        """IKE_AUTH: the dynamic VPN whose pattern matches the peer's identity (RFC 7296
        §2.15); None keeps the configuration chosen at IKE_SA_INIT (which then checks the
        identity itself and refuses a stranger)."""
        for v in self._dynamic():
            if v.config.remote_id == idi and self._spokes(v.name) < v.max_peers:
                return v.config
        return None

    def _spokes(self, vpn: str) -> int:
        return sum(1 for t in self.tunnels.values() if t.vpn == vpn and t.kind == "spoke")

    def _st0_subnet(self, vpn: Optional[_Vpn], version: int):
        """(network, our address) of the VPN's st0 unit in one family, or (None, None)."""
        for prefix in self.gw.config.interface_addresses.get(
                vpn.interface or "" if vpn else "", ()):
            iface = ipaddress.ip_interface(prefix)
            if iface.version == version:
                return iface.network, iface.ip
        return None, None

    def _free(self, addr, version: int, vpn: Optional[_Vpn]) -> bool:
        net, mine = self._st0_subnet(vpn, version)
        taken = {e.address for e in self.nhtb.entries()} | \
            {a for lst in self._cp_assigned.values() for a in lst}
        return net is not None and addr in net and addr != mine and str(addr) not in taken \
            and addr != net.network_address and \
            (version == 6 or addr != net.broadcast_address)

    def _cp_reply(self, session: IkeV2Session, cp: CpPayload) -> Optional[CpPayload]:
        """Answer a spoke's configuration payload in IKE_AUTH (RFC 7296 §3.15):

        - CFG_SET with INTERNAL_IP4_ADDRESS and/or INTERNAL_IP6_ADDRESS (a gateway telling
          us its st0 addresses): CFG_ACK naming those that are free hosts of our multipoint
          st0 subnet (they then name the spoke's next-hop tunnel, §3.15.1); the spoke keeps
          its own traffic selectors (its LAN is behind it);
        - CFG_REQUEST with INTERNAL_IP4_ADDRESS (a client asking for an address, e.g.
          strongSwan `vips`): CFG_REPLY with the address asked for when free, else a free
          host of the subnet (0.0.0.0: any); the peer's TSi is narrowed to that address
          (§2.9), as such a client expects."""
        vpn = self.vpns.get(session.config.name)
        if cp.cfg_type == CFG_SET:
            acked, got = [], []
            for atype, size, version in ((INTERNAL_IP4_ADDRESS, 4, 4),
                                         (INTERNAL_IP6_ADDRESS, 17, 6)):
                raw = cp.first(atype)
                if raw is None or len(raw) != size:
                    continue
                addr = ipaddress.ip_address(raw[:16] if version == 6 else raw)
                if self._free(addr, version, vpn):
                    acked.append((atype, b""))
                    got.append(str(addr))
            if not acked:
                return None                     # nothing acknowledged: no NHTB entry
            self._cp_assigned[id(session)] = got
            return CpPayload(CFG_ACK, acked)
        raw = cp.first(INTERNAL_IP4_ADDRESS)
        if cp.cfg_type != 1 or raw is None:
            return None
        want = ipaddress.IPv4Address(raw) if len(raw) == 4 else ipaddress.IPv4Address(0)
        pick: Optional[ipaddress.IPv4Address] = want if self._free(want, 4, vpn) else None
        net, _ = self._st0_subnet(vpn, 4)
        if pick is None and net is not None:
            pick = next((h for i, h in enumerate(net.hosts())
                         if i < 65536 and self._free(h, 4, vpn)), None)
        if pick is None:
            return None
        self._cp_assigned[id(session)] = [str(pick)]
        session.config = dataclasses.replace(session.config, children=[
            dataclasses.replace(c, remote_ts=(f"{pick}/32",)) for c in session.config.children])
        return CpPayload(CFG_REPLY, [(INTERNAL_IP4_ADDRESS, pick.packed)])

    # ------------------------------------------------------------------ initiation
    def start(self, now: float) -> list[str]:
        """Initiate every static VPN with `establish-tunnels immediately`."""
        self._now = now
        out = []
        for v in self.vpns.values():
            if v.remote is not None and v.establish == "immediately":
                self.connect(v.name, now)
                out.append(v.name)
        return out

    def connect(self, vpn: str, now: float) -> Optional[IkeV2Session]:
        v = self.vpns[vpn]
        v.connect_at = None
        if v.transport is None or self._live_session(vpn) is not None:
            return None
        s = self.manager.connect(v.config, v.transport, now)
        self._vpn_of_session[id(s)] = vpn
        return s

    def _live_session(self, tunnel: str) -> Optional[IkeV2Session]:
        t = self.tunnels.get(tunnel)
        if t is not None and t.session.state != IkeSaState.CLOSED:
            return t.session
        for s in self.manager.sessions:
            if s.state != IkeSaState.CLOSED and self._vpn_of_session.get(id(s)) == tunnel and \
                    id(s) not in self._of_session:
                return s
        return None

    def _trigger(self, name: str) -> None:
        if name in self.vpns and name not in self._triggers and len(self._triggers) < 64:
            self._triggers.append(name)

    # ------------------------------------------------------------------ sans-I/O surface
    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        self._now = now
        self.manager.receive_datagram(data, tuple(addr), now)
        self._process(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        self._now = now
        self._due(now)
        out = self.manager.datagrams_to_send(now)
        self._process(now)
        out += self.manager.datagrams_to_send(now)
        return out

    def get_timer(self) -> Optional[float]:
        times = [t for t in (self.manager.get_timer(),) if t is not None]
        times += [v.connect_at for v in self.vpns.values() if v.connect_at is not None]
        times += [t.idle_check_at for t in self.tunnels.values() if t.idle_check_at]
        times += [e.deadline for e in self._expected.values()]
        if self._triggers:
            times.append(self._now)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        self._due(now)
        self._report_traffic(now)
        self.manager.handle_timer(now)
        self._idle(now)
        for host, e in list(self._expected.items()):
            if e.deadline <= now and e.name not in self.tunnels:
                del self._expected[host]
        self._process(now)

    def _report_traffic(self, now: float) -> None:
        """Dead peer detection (the gateway's `dead-peer-detection`, RFC 7296 §2.4): tell
        each tunnel's IKE SA whether the tunnel carried traffic since the last look, so a
        spoke that vanished without a Delete is found and its tunnel removed."""
        for t in self.tunnels.values():
            if t.name not in self.gw.distributor or not t.session.config.dpd_interval:
                continue
            flow = self.gw.tunnel_flow(t.name)
            seen = (flow.in_delivered, flow.out_encrypted)
            last = t.seen or (0, 0)
            if seen != last:
                t.session.note_traffic(now, inbound=seen[0] > last[0],
                                       outbound=seen[1] > last[1])
                t.seen = seen

    def _due(self, now: float) -> None:
        for v in self.vpns.values():
            if v.connect_at is not None and v.connect_at <= now:
                self.connect(v.name, now)
        while self._triggers:
            self.connect(self._triggers.pop(0), now)

    # ------------------------------------------------------------------ data path
    def inbound(self, wire: list[bytes], now: float) -> Output:
        """Outer packets in: decrypt; inner packets routed into a tunnel are forwarded
        (encrypted again, `Output.wire`), the others delivered here (`Output.delivered`).
        IKE messages on the data path go to IKE. A suggester notes spoke-to-spoke flows."""
        self._now = now
        gw = self.gw
        got = gw.inbound(wire)
        for d in got.ike:
            self.receive(NON_ESP_MARKER + d.data if d.natt else d.data, (d.src, d.sport), now)
        forward, local = [], []
        connected = self._connected()
        for pkt in got.delivered:
            v = pkt[0] >> 4
            if v == 4:
                src, dst = ipaddress.IPv4Address(pkt[12:16]), ipaddress.IPv4Address(pkt[16:20])
            else:
                src, dst = ipaddress.IPv6Address(pkt[8:24]), ipaddress.IPv6Address(pkt[24:40])
            out_names = [n for n in gw.routes.lookup(dst) if n in self.tunnels]
            if not out_names or any(dst.version == c.version and dst in c for c in connected):
                local.append(pkt)
                continue
            fwd = forwarded(pkt)
            if fwd is None:                     # RFC 1812 §5.3.1 / RFC 8200 §3: TTL ends here
                self.ttl_expired += 1
                continue
            forward.append(fwd)
            in_names = [n for n in gw.routes.lookup(src) if n in self.tunnels]
            if in_names and in_names[0] != out_names[0]:
                self._maybe_suggest(in_names[0], out_names[0], now)
        sent = gw.outbound(forward) if forward else Output()
        return Output(wire=sent.wire, local=sent.local, delivered=local, ike=got.ike,
                      dropped=got.dropped + sent.dropped)

    def _connected(self) -> list:
        """Directly connected networks (interfaces other than st0): delivered here, as a
        connected route beats a static one."""
        nets = self._connected_nets
        if nets is None:
            nets = [ipaddress.ip_interface(p).network
                    for iface, prefixes in self.gw.config.interface_addresses.items()
                    if not iface.startswith("st0.") for p in prefixes]
            self._connected_nets = nets
        return nets

    # ------------------------------------------------------------------ events
    def _process(self, now: float) -> None:
        while (item := self.manager.next_event()) is not None:
            session, event = item
            try:
                self._apply(session, event, now)
            except (KeyError, ValueError, IkeConfigError) as exc:
                self.errors.append(f"{type(event).__name__}: {exc}")

    def _apply(self, s: IkeV2Session, event: object, now: float) -> None:
        if isinstance(event, IkeSaUp):
            self._ike_up(s, now)
            return
        name = self._of_session.get(id(s))
        if isinstance(event, IkeSaDown):
            self._ike_down(s, event, now)
            return
        if name is None:
            return
        t = self.tunnels[name]
        if isinstance(event, ChildSaUp):
            self._child_up(t, event)
        elif isinstance(event, ChildSaRekeyed):
            child = self._ports(event.new)
            out, inb = self._specs(t, child)
            rec = self.gw.tunnel(name)
            index = [p.inbound.spi for p in rec.pairs].index(event.old_spi_in)
            self.gw.rekey(name, out, inb, pair_index=index)
        elif isinstance(event, ChildSaDown):
            _remove(self.gw, name, event.spi_in, event.reason)
            if name not in self.gw.distributor:
                self._forget_routes(name)
        elif isinstance(event, PrivateNotify) and event.notify_type == SHORTCUT_SUGGESTION:
            self._suggestion(t, event.data, now)

    def _ike_up(self, s: IkeV2Session, now: float) -> None:
        cfg_name = s.config.name
        exp = next((e for e in self._expected.values() if e.name == cfg_name), None)
        if exp is not None:
            name, vpn, kind = exp.name, exp.vpn, "shortcut"
            remote = str(s.remote_addr[0])
            if not s.ike.initiator:
                self.counters.shortcuts_accepted += 1
        elif cfg_name in self.vpns and self.vpns[cfg_name].remote is None:
            vpn, kind = cfg_name, "spoke"
            remote = str(s.remote_addr[0])
            name = f"{vpn}@{remote}"
            if name in self.tunnels and self.tunnels[name].session is not s and \
                    self.tunnels[name].peer != tuple(s.remote_addr):
                name = f"{vpn}@{remote}:{s.remote_addr[1]}"
            if self._spokes(vpn) >= self.vpns[vpn].max_peers:
                self.refused["connections-limit reached"] += 1
                s.close(now)
                return
        elif cfg_name in self.vpns:
            name = vpn = cfg_name
            kind = "static"
            remote = self.vpns[vpn].remote or str(s.remote_addr[0])
        else:
            s.close(now)
            return
        old = self.tunnels.get(name)
        if old is not None and old.session is not s:
            if kind == "static" and old.session.state == IkeSaState.ESTABLISHED and \
                    not self._newer_wins(old.session, s):
                self._vpn_of_session.pop(id(s), None)
                s.close(now)                    # both ends initiated: keep one (§2.8)
                return
            self._drop_tunnel(old)
            if old.session.state == IkeSaState.ESTABLISHED:
                old.session.close(now)
        self._of_session[id(s)] = name
        self._vpn_of_session[id(s)] = vpn
        self._session_index[id(s)] = self._index
        self._index += 1
        t = self.tunnels[name] = HubTunnel(name, vpn, kind, s, tuple(s.remote_addr), remote)
        if exp is not None:
            t.tunnel_address = exp.suggestion.tunnel_address
            t.routes = list(exp.suggestion.prefixes)
        self.events.append(("ike-up", name))

    def _newer_wins(self, old: IkeV2Session, new: IkeV2Session) -> bool:
        """Duplicate IKE SAs for one static VPN: what the lower-address end initiated stays
        (the two ends decide alike)."""
        lo = ipaddress.ip_address(self.local[0])
        hi = ipaddress.ip_address(new.remote_addr[0])
        we_first = lo.version != hi.version or int(lo) < int(hi) or \
            (lo == hi and self.local[1] < new.remote_addr[1])
        return new.ike.initiator == we_first and old.ike.initiator != we_first

    def _ports(self, child: Any) -> Any:
        if self.mapped:
            return dataclasses.replace(child, local_port=4500, remote_port=4500)
        return child

    def _specs(self, t: HubTunnel, child: Any):
        local = self.vpns[t.vpn].local
        out, inb = child.to_sa_specs(local, t.remote)
        return _with_vpn_options(self.gw, t.vpn, out), _with_vpn_options(self.gw, t.vpn, inb)

    def _child_up(self, t: HubTunnel, event: ChildSaUp) -> None:
        child = self._ports(event.child)
        out, inb = self._specs(t, child)
        self.gw.install_child_sa(t.name, out, inb, config_vpn=t.vpn)
        s = t.session
        tid = self.gw.tunnel(t.name).tunnel_id
        peer_id = str(s.peer_id) if s.peer_id is not None else ""
        unit = self.vpns[t.vpn].interface or ""
        if t.kind == "static":
            self.nhtb.bind_static(t.vpn, t.name, tid, peer_id)
        addrs = [t.tunnel_address] if t.tunnel_address else []
        source = "advpn"
        if not addrs and t.kind != "static":
            addrs, source = self._cp_assigned.pop(id(s), []), "ike-cp"
        if not addrs and t.kind != "static":
            addrs = [str(ts.start_addr) for ts in child.remote_ts
                     if ts.start_addr == ts.end_addr and self.nhtb.unit_of(str(ts.start_addr))]
            source = "ike-ts"
        for addr in addrs:
            if self.nhtb.unit_of(addr) == unit and \
                    self.nhtb.bind(unit, addr, t.vpn, t.name, source, tid, peer_id):
                t.tunnel_address = t.tunnel_address or addr
        for ts in child.remote_ts:                      # auto route insertion (§2.9)
            for net in ipaddress.summarize_address_range(ipaddress.ip_address(ts.start_addr),
                                                         ipaddress.ip_address(ts.end_addr)):
                if net.prefixlen and str(net) not in t.routes:
                    t.routes.append(str(net))
        if t.kind == "shortcut":
            self.counters.shortcuts_up += 1
            g = self.vpns[t.vpn].gateway
            t.idle = IdleTracker(g.advpn_idle_time, g.advpn_idle_threshold, self._now)
            t.idle_check_at = self._now + t.idle.interval()
        self.events.append(("child-up", t.name))
        self._resolve()

    def _ike_down(self, s: IkeV2Session, event: IkeSaDown, now: float) -> None:
        self._cp_assigned.pop(id(s), None)
        vpn = self._vpn_of_session.pop(id(s), None)
        name = self._of_session.pop(id(s), None)
        self._session_index.pop(id(s), None)
        t = self.tunnels.get(name) if name is not None else None
        if t is not None and t.session is s:
            for spi_in, _spi_out in event.children:
                _remove(self.gw, name, spi_in, event.reason)
            self._drop_tunnel(t)
            self.events.append(("ike-down", name))
            if t.kind == "shortcut":
                self.counters.shortcuts_down += 1
        if vpn in self.vpns and self.vpns[vpn].remote is not None and \
                self.vpns[vpn].establish == "immediately" and self._live_session(vpn) is None:
            self.vpns[vpn].connect_at = now + self.backoff

    def _drop_tunnel(self, t: HubTunnel) -> None:
        if t.name in self.gw.distributor:
            self.gw.remove(t.name, "IKE SA deleted")
        self.tunnels.pop(t.name, None)
        if t.kind == "shortcut":
            host = str(t.peer[0])
            if host in self._expected and self._expected[host].name == t.name:
                del self._expected[host]
        self._forget_routes(t.name)

    def _forget_routes(self, name: str) -> None:
        self.nhtb.unbind_tunnel(name)
        self._suggested = {k: v for k, v in self._suggested.items() if name not in k}
        self._resolve()

    def _resolve(self) -> None:
        """Routes again from the configuration, NHTB and the tunnels (shortcuts first)."""
        vpn_tunnels: dict[str, list[str]] = {}
        extra: list[tuple[str, list[str]]] = []
        live = [t for t in self.tunnels.values() if t.name in self.gw.distributor]
        for t in sorted(live, key=lambda t: t.kind != "shortcut"):
            if t.kind != "shortcut":
                vpn_tunnels.setdefault(t.vpn, []).append(t.name)
            extra += [(p, [t.name]) for p in t.routes]
            if t.kind == "shortcut" and t.tunnel_address:
                extra.append((str(ipaddress.ip_network(t.tunnel_address)), [t.name]))
        for v in self.gw.config.ipsec_vpns.values():
            if v.name not in self.vpns:
                vpn_tunnels.setdefault(v.name, [v.name])
        self._routes, self.unresolved = resolve_routes(self.gw.config, self.nhtb, vpn_tunnels,
                                                       extra)
        self.gw.set_routes(self._routes)

    def routes(self) -> list[tuple[str, list[str]]]:
        """The route -> tunnels entries given to the gateway (preferred tunnel first)."""
        return [(p, list(t)) for p, t in self._routes]

    # ------------------------------------------------------------------ ADVPN suggester
    def _maybe_suggest(self, a: str, b: str, now: float) -> None:
        ta, tb = self.tunnels.get(a), self.tunnels.get(b)
        if ta is None or tb is None or ta.kind == "shortcut" or tb.kind == "shortcut":
            return
        if not (self.vpns[ta.vpn].gateway.advpn_suggester and
                self.vpns[tb.vpn].gateway.advpn_suggester):
            return
        key = frozenset((a, b))
        last = self._suggested.get(key)
        if last is not None and now - last < self.suggest_holddown:
            return
        if ta.session.state != IkeSaState.ESTABLISHED or \
                tb.session.state != IkeSaState.ESTABLISHED:
            return
        if len(self._suggested) >= MAX_SUGGESTED:
            self._suggested.clear()
        self._suggested[key] = now
        self._suggestion_id = (self._suggestion_id + 1) & 0xFFFFFFFF
        a_first = (ipaddress.ip_address(ta.peer[0]).packed, ta.peer[1]) < \
            (ipaddress.ip_address(tb.peer[0]).packed, tb.peer[1])
        for me, other, initiate in ((ta, tb, a_first), (tb, ta, not a_first)):
            peer_id = other.session.peer_id
            if peer_id is None:
                return
            prefixes = tuple(p for p, names in self._routes if names and names[0] == other.name
                             and not p.endswith("/0"))[:64]
            sug = Suggestion(self._suggestion_id, initiate, str(other.peer[0]),
                             int(other.peer[1]), peer_id.id_type, peer_id.data,
                             other.tunnel_address, prefixes)
            me.session.send_notify(SHORTCUT_SUGGESTION, sug.encode(), now)
            self.counters.suggestions_sent += 1
        self.events.append(("suggested", f"{a} <-> {b}"))

    # ------------------------------------------------------------------ ADVPN partner
    def _suggestion(self, t: HubTunnel, data: bytes, now: float) -> None:
        self.counters.suggestions_received += 1
        vpn = self.vpns[t.vpn]
        if t.kind == "shortcut" or not vpn.gateway.advpn_partner:
            self.counters.ignore(f"{t.name}: not an ADVPN partner VPN")
            return
        try:
            sug = Suggestion.decode(data)
        except SuggestionError as exc:
            self.counters.ignore(f"{t.name}: malformed suggestion: {exc}")
            return
        if vpn.config.auth != "pubkey":
            self.counters.ignore(f"{t.name}: ADVPN shortcuts need certificate authentication")
            return
        host = sug.peer_address
        name = f"{t.vpn}~{host}"
        if name in self.tunnels or host in self._expected:
            self.counters.ignore(f"{name}: shortcut exists or is being set up")
            return
        active = sum(1 for x in self.tunnels.values() if x.kind == "shortcut" and
                     x.vpn == t.vpn) + sum(1 for e in self._expected.values() if e.vpn == t.vpn
                                           and e.name not in self.tunnels)
        if active >= vpn.gateway.advpn_connection_limit:
            self.counters.connection_limit_drops += 1
            self.counters.ignore(f"{name}: connection-limit reached")
            return
        child = dataclasses.replace(vpn.config.children[0], name=name)
        cfg = dataclasses.replace(vpn.config, name=name,
                                  remote_id=Identity(sug.peer_id_type, sug.peer_id),
                                  cp_request=(), cp_responder=None, select_peer=None,
                                  children=[child])
        if not sug.initiate:
            _rekey_later(cfg)
        self._expected[host] = _Expected(name, t.vpn, sug, cfg, now + self.shortcut_wait)
        if sug.initiate:
            s = self.manager.connect(cfg, (host, sug.peer_port), now)
            self._vpn_of_session[id(s)] = t.vpn
            self.counters.shortcuts_initiated += 1
        self.events.append(("suggestion", name))

    def _idle(self, now: float) -> None:
        for t in list(self.tunnels.values()):
            if t.idle is None or t.idle_check_at is None or t.idle_check_at > now:
                continue
            if t.name not in self.gw.distributor:
                continue
            flow = self.gw.tunnel_flow(t.name)
            if t.idle.sample(now, flow.in_delivered + flow.out_encrypted):
                t.idle_check_at = None
                t.torn_down_idle = True
                self.counters.shortcuts_torn_down_idle += 1
                self.events.append(("idle-teardown", t.name))
                t.session.close(now)
            else:
                t.idle_check_at = now + t.idle.interval()

    # ------------------------------------------------------------------ show
    def shortcuts(self) -> list[str]:
        return [t.name for t in self.tunnels.values() if t.kind == "shortcut"]

    def ike_sa_records(self) -> list[tuple[IkeSaRecord, HubTunnel]]:
        out = []
        for t in self.tunnels.values():
            s = t.session
            if s.state not in (IkeSaState.ESTABLISHED, IkeSaState.DELETING):
                continue
            rec = IkeSaRecord(self._session_index.get(id(s), 0), "UP",
                              int.from_bytes(s.ike.spi_i, "big"),
                              int.from_bytes(s.ike.spi_r, "big"), "IKEv2", t.remote)
            out.append((rec, t))
        return sorted(out, key=lambda r: r[0].index)

    def show(self, command: str) -> str:
        """The gateway's show commands plus `security ipsec next-hop-tunnels`, `security
        advpn statistics`, and `security ike security-associations` with shortcut SAs
        marked (`Type` column: Shortcut) and each row's tunnel."""
        key = " ".join(command.split())
        if key.startswith("show "):
            key = key[5:]
        if key == "security ipsec next-hop-tunnels":
            return render_next_hop_tunnels(self.nhtb.entries()) + "\n"
        if key == "security advpn statistics":
            spokes = sum(1 for t in self.tunnels.values() if t.kind == "spoke")
            lines = [self.counters.render(len(self.shortcuts())),
                     "Hub:", f"  {'AutoVPN spokes up:':<30}{spokes:>12}"]
            lines += [f"  {'Spokes refused (' + why + '):':<30}{n:>12}"
                      for why, n in sorted(self.refused.items())]
            lines.append(f"  {'Forwarded, TTL expired:':<30}{self.ttl_expired:>12}")
            return "\n".join(lines) + "\n"
        if key == "security ike security-associations":
            rows = self.ike_sa_records()
            text = render_ike_sa_summary([r for r, _ in rows]).rstrip("\n").split("\n")
            width = max(len(x) for x in text)
            out = [text[0].ljust(width) + "  Type      Tunnel"]
            for line, (_, t) in zip(text[1:], rows):
                kind = {"shortcut": "Shortcut", "spoke": "AutoVPN"}.get(t.kind, "Static")
                out.append(f"{line.ljust(width)}  {kind:<9} {t.name}")
            return "\n".join(out) + "\n"
        if key in ("security ipsec inactive-tunnels", "security ipsec inactive-tunnels detail"):
            from ..io.inactive import (inactive_tunnels, render_inactive_tunnels,
                                       render_inactive_tunnels_detail)
            rows = []
            for row in inactive_tunnels(self.gw):
                if any(t.vpn == row.vpn for t in self.tunnels.values()):
                    continue                    # an AutoVPN VPN is up with its spokes' tunnels
                v = self.vpns.get(row.vpn)
                if row.vpn in self.unsupported:
                    row = dataclasses.replace(row, down_reason=self.unsupported[row.vpn],
                                              can_come_up=False)
                elif v is not None:
                    why = ("Waiting for spokes (AutoVPN: none is up)" if v.remote is None
                           else "Waiting for negotiation")
                    row = dataclasses.replace(row, down_reason=why, can_come_up=True,
                                              remote_gateway=v.remote or "-")
                rows.append(row)
            render = render_inactive_tunnels_detail if key.endswith("detail") \
                else render_inactive_tunnels
            return render(rows)
        text = self.gw.show(command)
        notes = [f"  Not negotiated: ipsec vpn {n}: {r}" for n, r in self.unsupported.items()]
        notes += [f"  Unresolved route: {u}" for u in self.unresolved]
        return text + ("\n".join(notes) + "\n" if notes and "ipsec" in key else "")
