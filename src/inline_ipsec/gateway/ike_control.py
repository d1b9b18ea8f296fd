"""`IkeControl`: the gateway's IKEv2 control plane, sans-I/O (docs/design.md §1: IKE always runs
on the CPU and hands every negotiated SA pair to the distributor).

    ike = IkeControl(gw)                        # or gw.enable_ike(...)
    ike.start(now)                              # establish-tunnels immediately: initiate
    for data, addr in ike.datagrams_to_send(now): sock.sendto(data, addr)
    ike.receive(data, addr, now)                # a UDP payload from port 500 or 4500
    ike.handle_timer(now) when now >= ike.get_timer()

It owns an `IkeManager` (sessions found by SPI, RFC 7296 §2.1) with one `IkeConfig` per
IKE-negotiated VPN (`ike_config.py`), and turns session events into data-plane calls through
`Gateway.handle_ike_event`:

- ChildSaUp -> install (placement PFE or CPU per Table 1, with reasons) (§1.2, §1.3.1);
- ChildSaRekeyed -> make-before-break rekey, ChildSaDown -> delete (§1.3.3, §2.8, §1.4.1);
- IkeSaDown -> the child SAs that went down with the IKE SA are removed (by
  `Gateway.handle_ike_event` itself, so callers without IkeControl get the same).

Lifetimes: the sessions rekey at the soft lifetime and delete at the hard one (§2.8). The
responder's copy of a VPN rekeys later than the initiator's (at the middle of soft..hard), so
the two ends do not start simultaneous rekeys (Junos randomises its soft lifetime to the same
end). When both ends still rekey a child SA at once (explicit rekeys, kilobyte limits), the
sessions resolve the collision per §2.8.1 (`ike/v2/tasks/child_rekey.py`): each end reports
one ChildSaRekeyed(old -> survivor) and a ChildSaDown(old); the redundant pair is never
reported, so it never reaches the data plane. Kilobyte (and packet, sequence) lifetimes are
counted by the CPU engine: `poll_engines` reads `CpuEngine.next_event()` and rekeys on
"rekey-due", deletes on "expired".

`establish-tunnels immediately`: `start(now)` initiates. When both ends are configured so, the
end with the lower outer address initiates at once and the other waits `backoff` seconds and
initiates only if no IKE SA for the VPN exists by then (no simultaneous IKE SAs per VPN). When
the IKE SA goes down (deleted, dead peer, failed), the VPN is negotiated again the same way.
`start` paces the initiations: at most `max_pending` half-open IKE SAs of ours at a time.
`establish-tunnels on-traffic`: the first outbound packet routed to the VPN triggers the
initiation; that packet and all others until the child SA is installed are dropped and
counted (`Gateway.counters.no_route`, and per VPN in `on_traffic_dropped`), as the SRX drops
traffic of a tunnel that is not up.

NAT-T (§2.23): the sessions detect a NAT (or a peer that claims one, `force_encap`) from the
NAT_DETECTION payloads; IKE then moves to the NAT-T port with the non-ESP marker and the
child SAs are UDP-encapsulated (RFC 3948). When the IKE transport is mapped (both gateways on
loopback ports instead of their configured addresses), the ESP-in-UDP ports of the data plane
are the standard 4500/4500 and the outer addresses are the configured ones.
"""
from __future__ import annotations

import dataclasses
import ipaddress
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

from ..errors import IpsecError
from ..ike import (ChildSaDown, ChildSaRekeyed, ChildSaUp, Identity, IkeConfig, IkeManager,
                   IkeSaDown, IkeSaRekeyed, IkeSaUp, IkeV2Session)
from ..ike.constants import NON_ESP_MARKER
from ..ike.v2.session import Addr
from .ike_config import IkeConfigError, ike_config_for_vpn, ike_vpns
from .keying import vpn_endpoints

if TYPE_CHECKING:
    from .core import Gateway
    from .demux import IkeDatagram

__all__ = ["IkeControl", "SessionInfo"]


@dataclass
class SessionInfo:
    """What the show commands need about one IKE SA beyond the session itself."""

    index: int
    vpn: str
    created: float
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    children_created: int = 0
    children_deleted: int = 0
    up_at: Optional[float] = None
    rekeyed_at: Optional[float] = None


@dataclass
class _Vpn:
    name: str
    config: IkeConfig           # as initiator
    responder: IkeConfig        # as responder (later rekey)
    local: str                  # configured outer addresses (the data plane's)
    remote: str
    establish: str
    peer_transport: Addr
    connect_at: Optional[float] = None


def _later_rekey(cfg: IkeConfig) -> IkeConfig:
    kids = [dataclasses.replace(c, rekey_seconds=(c.soft_seconds + c.lifetime_seconds) / 2)
            for c in cfg.children]
    return dataclasses.replace(cfg, children=kids)


class IkeControl:
    """IKEv2 for one `Gateway` (module docstring).

    `local`: our IKE transport address (default: the first IKE VPN's configured local
    address, port 500) and `natt_port` (4500). `peers` maps a configured peer address to the
    transport address its IKE listens on, (host, port) or (host, port, NAT-T port) (default:
    the address itself, 500 and 4500); a mapped
    transport is how two gateways run on loopback. `nat_t` names VPNs whose side claims a NAT
    (RFC 7296 §2.23). `credentials`/`ca_certificates` are for certificate authentication
    (`ike_config.ike_config_for_vpn`). `backoff`: see the module docstring.
    """

    def __init__(self, gw: "Gateway", *, local: Optional[Addr] = None, natt_port: int = 4500,
                 peers: Optional[Mapping[str, Addr]] = None, nat_t: Iterable[str] = (),
                 credentials: Optional[Mapping[str, Any]] = None,
                 ca_certificates: Iterable[object] = (), backoff: float = 2.0,
                 max_pending: int = 128,
                 config_overrides: Optional[Mapping[str, Any]] = None) -> None:
        self.gw = gw
        self.backoff = backoff
        self.max_pending = max_pending
        self._queued: list[str] = []           # immediately-VPNs waiting for a slot
        self._half_open: set[int] = set()      # our initiator sessions not yet up
        peers = dict(peers or {})
        nat = set(nat_t)
        self.vpns: dict[str, _Vpn] = {}
        #: IKE VPNs this implementation cannot negotiate, with the reason (e.g. AH)
        self.unsupported: dict[str, str] = {}
        for v in ike_vpns(gw.config):
            lo, re = vpn_endpoints(gw.config, v.name)
            target = tuple(peers.get(re, (re, 500)))
            peer = target[:2]
            over = dict(config_overrides or {})
            if len(target) > 2:             # the peer's NAT-T port (§2.23 port floating)
                over["natt_port"] = target[2]
            try:
                cfg = ike_config_for_vpn(gw.config, v, credentials=credentials,
                                         ca_certificates=list(ca_certificates),
                                         force_encap=v.name in nat, **over)
            except IkeConfigError as exc:
                self.unsupported[v.name] = str(exc)
                continue
            self.vpns[v.name] = _Vpn(v.name, cfg, _later_rekey(cfg), lo, re,
                                     v.establish_tunnels, peer)
        self.mapped = bool(peers)
        #: indexes for the responder's lookups (thousands of VPNs to one peer)
        self._by_transport: dict[tuple, list[_Vpn]] = {}
        self._by_host: dict[object, list[_Vpn]] = {}
        self._by_ids: dict[tuple, list[_Vpn]] = {}
        for rec in self.vpns.values():
            key = tuple(rec.peer_transport)
            self._by_transport.setdefault(key, []).append(rec)
            self._by_host.setdefault(ipaddress.ip_address(key[0]), []).append(rec)
            self._by_ids.setdefault((key, rec.config.remote_id), []).append(rec)
        self._live: dict[str, dict[int, IkeV2Session]] = {}
        self._dropping: set[int] = set()          # duplicate IKE SAs being deleted
        self._owner: dict[str, int] = {}          # VPN -> the IKE SA whose pairs it carries
        if local is None:
            first = next(iter(self.vpns.values()), None)
            local = (first.local if first else "0.0.0.0", 500)
        # Cookies and the half-open limit guard against floods (RFC 7296 §2.6); a gateway
        # whose own peers may all negotiate at once (establish-tunnels immediately) must not
        # mistake them for one, so both scale with the number of configured VPNs.
        self.manager = IkeManager(tuple(local), natt_port, self._lookup,
                                  cookie_threshold=max(IkeManager.COOKIE_THRESHOLD,
                                                       2 * len(self.vpns)),
                                  max_half_open=max(IkeManager.MAX_HALF_OPEN, 4 * len(self.vpns)))
        for rec in self.vpns.values():
            rec.config.select_peer = rec.responder.select_peer = \
                self._selector(rec.peer_transport)
        self.info: dict[int, SessionInfo] = {}
        self._next_index = 1
        self._triggers: list[str] = []
        self.on_traffic_dropped: Counter[str] = Counter()
        self.events: list[tuple[str, object]] = []  #: (vpn, event) in order, for tests/logs
        self.errors: list[str] = []
        self._now = 0.0
        self._flushes = 0
        self._closed = False
        gw.tunnel_trigger = self.trigger
        gw.ike = self

    @staticmethod
    def remote_addresses(gw: "Gateway") -> list[str]:
        """The configured peer addresses of `gw`'s IKEv2 VPNs."""
        out = []
        for v in ike_vpns(gw.config):
            try:
                out.append(vpn_endpoints(gw.config, v.name)[1])
            except (IpsecError, ValueError):
                continue
        return out

    # ---------------------------------------------------------------- configuration lookup
    def _candidates(self, addr: Addr) -> list[_Vpn]:
        exact = self._by_transport.get(tuple(addr))
        if exact:
            return exact
        return self._by_host.get(ipaddress.ip_address(addr[0]), [])

    def _lookup(self, addr: Addr) -> Optional[IkeConfig]:
        """IKE_SA_INIT from a new peer: a configuration whose peer is `addr` (one with a PPK
        first, so USE_PPK is offered, RFC 8784 §3); IKE_AUTH picks the VPN (`_selector`)."""
        cands = self._candidates(addr)
        if not cands:
            return None
        return next((v for v in cands if v.config.ppk is not None), cands[0]).responder

    def _selector(self, transport: Addr):
        def select(idi: Identity, idr: Optional[Identity]) -> Optional[IkeConfig]:
            cands = self._by_ids.get((tuple(transport), idi), []) + \
                self._by_ids.get((tuple(transport), None), [])
            for v in cands:
                if idr is not None and v.config.local_id != idr:
                    continue
                return v.responder
            return None
        return select

    # ---------------------------------------------------------------- initiation
    def start(self, now: float) -> list[str]:
        """Initiate every `establish-tunnels immediately` VPN (module docstring); returns the
        VPNs initiated now."""
        self._now = now
        started = []
        for v in self.vpns.values():
            if v.establish != "immediately":
                continue
            if self._initiates_first(v):
                self._queued.append(v.name)
                started.append(v.name)
            else:                         # the peer initiates these first
                v.connect_at = now + self.backoff * (1 + len(self.vpns) // self.max_pending)
        self._queued.reverse()                 # popped from the end, in configuration order
        self._start_due(now)
        return started

    @staticmethod
    def _initiates_first(v: _Vpn) -> bool:
        lo, re = ipaddress.ip_address(v.local), ipaddress.ip_address(v.remote)
        return lo.version != re.version or int(lo) < int(re)

    def connect(self, vpn: str, now: float) -> IkeV2Session:
        """Start an IKE SA for `vpn` as initiator (RFC 7296 §1.2)."""
        v = self.vpns[vpn]
        v.connect_at = None
        session = self.manager.connect(v.config, v.peer_transport, now)
        self._track(session, vpn, now)
        self._half_open.add(id(session))
        return session

    def trigger(self, vpn: str) -> None:
        """A packet was routed to `vpn`, which has no SA (on-traffic): initiate at the next
        call with a clock, and count the dropped packet."""
        v = self.vpns.get(vpn)
        if v is None:
            return
        self.on_traffic_dropped[vpn] += 1
        if not self._active(v) and vpn not in self._triggers:
            self._triggers.append(vpn)

    def _active(self, v: _Vpn) -> bool:
        live = self._live.get(v.name)
        if not live:
            return False
        for key, s in list(live.items()):
            if s.state == "closed" or s.config.name != v.name:
                del live[key]
        return bool(live)

    def _track(self, session: IkeV2Session, vpn: str, now: float) -> SessionInfo:
        info = self.info.get(id(session))
        if info is None:
            info = SessionInfo(self._next_index, vpn, now)
            self._next_index += 1
            self.info[id(session)] = info
        if info.vpn != vpn or id(session) not in self._live.get(vpn, {}):
            self._live.get(info.vpn, {}).pop(id(session), None)
            info.vpn = vpn
            self._live.setdefault(vpn, {})[id(session)] = session
        return info

    # ---------------------------------------------------------------- sans-I/O surface
    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        """One UDP payload from the IKE port or the NAT-T port (keeping its non-ESP marker);
        a 0xFF NAT-keepalive is ignored (RFC 3948 §2.3)."""
        self._now = now
        raw = data[4:] if data.startswith(NON_ESP_MARKER) else data
        session = self.manager.find(raw)
        self.manager.receive_datagram(data, tuple(addr), now)
        if session is None:
            session = self.manager.find(raw)
        if session is not None:
            info = self.info.get(id(session))
            if info is None:
                info = self._track(session, session.config.name, now)
            info.rx_packets += 1
            info.rx_bytes += len(raw)
        self._process(now)

    def receive_from_data_path(self, dgram: "IkeDatagram", now: float) -> None:
        """An IKE message the gateway's data path classified (`Gateway.inbound`, `Output.ike`:
        UDP 500, or UDP 4500 behind the non-ESP marker, RFC 3948 §2.2): hand it to IKE,
        restoring the marker so the session knows it came on the NAT-T port."""
        data = NON_ESP_MARKER + dgram.data if dgram.natt else dgram.data
        self.receive(data, (dgram.src, dgram.sport), now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        """Datagrams to send: those with the non-ESP marker from the NAT-T port."""
        self._now = now
        self._start_due(now)
        out: list[tuple[bytes, Addr]] = []
        for s in self.manager.sessions:
            if not s._out:
                continue
            sent = s.datagrams_to_send(now)
            if sent:
                info = self.info.get(id(s))
                if info is None:
                    info = self._track(s, s.config.name, now)
                info.tx_packets += len(sent)
                info.tx_bytes += sum(len(d) - (4 if d.startswith(NON_ESP_MARKER) else 0)
                                     for d, _ in sent)
                out += sent
        self._flushes += 1
        if self._flushes % 256 == 0 or self._closed:
            self._closed = False
            self.manager.datagrams_to_send(now)     # forgets closed sessions
        self._process(now)
        return out

    def get_timer(self) -> Optional[float]:
        """When `handle_timer` must run next (sessions' retransmits, rekeys, expiries, and
        delayed initiations), or None."""
        times = [v.connect_at for v in self.vpns.values() if v.connect_at is not None]
        t = self.manager.get_timer()
        if t is not None:
            times.append(t)
        if self._triggers or (self._queued and len(self._half_open) < self.max_pending):
            times.append(self._now)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        self._start_due(now)
        self.manager.handle_timer(now)
        self.poll_engines(now)
        self._process(now)

    def _start_due(self, now: float) -> None:
        for v in self.vpns.values():
            if v.connect_at is not None and v.connect_at <= now:
                v.connect_at = None
                if not self._active(v) and v.name not in self.gw.distributor:
                    self.connect(v.name, now)
        while self._triggers:
            v = self.vpns[self._triggers.pop(0)]
            if not self._active(v) and v.name not in self.gw.distributor:
                self.connect(v.name, now)
        while self._queued and len(self._half_open) < self.max_pending:
            v = self.vpns[self._queued.pop()]
            if not self._active(v) and v.name not in self.gw.distributor:
                self.connect(v.name, now)

    # ---------------------------------------------------------------- CPU-engine lifetimes
    def poll_engines(self, now: float) -> int:
        """Act on the CPU engine's lifetime events (kilobytes, packets, sequence space;
        seconds are the sessions' own timers): "rekey-due" of an outbound SA -> CREATE_CHILD_SA
        rekey (the sender rekeys; the receiver, which counts the same bytes inbound, does not,
        so the two ends do not collide, §2.8.1), "expired" -> delete (RFC 7296 §2.8, §1.4.1).
        Returns the events acted on."""
        acted = 0
        while (ev := self.gw.cpu.next_event()) is not None:
            if ev.limit == "seconds":
                continue
            hit = self._child_of(ev.spi, ev.direction)
            if hit is None:
                continue
            session, spi_in = hit
            child = session.children.get(spi_in)
            if ev.kind == "rekey-due" and ev.direction == "outbound" and child is not None \
                    and child.state == "installed":
                child.rekey_at = None
                session.rekey_child(spi_in, now)
                acted += 1
            elif ev.kind == "expired" and child is not None and child.state != "deleting":
                session.delete_child(spi_in, now)
                acted += 1
        return acted

    def _child_of(self, spi: int, direction: str) -> Optional[tuple[IkeV2Session, int]]:
        for s in self.manager.sessions:
            for c in s.children.values():
                if (c.spi_in if direction == "inbound" else c.spi_out) == spi:
                    return s, c.spi_in
        return None

    # ---------------------------------------------------------------- events -> data plane
    def _process(self, now: float) -> None:
        while (item := self.manager.next_event()) is not None:
            session, event = item
            vpn = session.config.name
            info = self._track(session, vpn, now)
            self.events.append((vpn, event))
            try:
                self._apply(session, info, vpn, event, now)
            except (IpsecError, KeyError, ValueError) as exc:
                self.errors.append(f"{vpn}: {type(event).__name__}: {exc}")

    def _apply(self, session: IkeV2Session, info: SessionInfo, vpn: str, event: object,
               now: float) -> None:
        v = self.vpns.get(vpn)
        if v is None:
            return
        gw = self.gw
        if isinstance(event, (IkeSaUp, IkeSaDown)):
            self._half_open.discard(id(session))
        if isinstance(event, IkeSaUp):
            info.up_at = now
            if self._duplicate(session, v, now):
                return
            if session.ike.initiator:     # further traffic selectors: CREATE_CHILD_SA
                for cfg in session.config.children[1:]:
                    session.create_child(cfg, now)
            return
        if isinstance(event, IkeSaRekeyed):
            info.rekeyed_at = now
            return
        if isinstance(event, (ChildSaUp, ChildSaRekeyed)):
            child = event.child if isinstance(event, ChildSaUp) else event.new
            if self.mapped:
                child = dataclasses.replace(child, local_port=4500, remote_port=4500)
            cfg_vpn = gw.config.ipsec_vpns.get(vpn)
            if cfg_vpn is not None and not cfg_vpn.traffic_selectors:
                # route-based (st0): the 0/0 proxy-id; routing picks the tunnel
                child = dataclasses.replace(child, local_ts=[], remote_ts=[])
            if id(session) in self._dropping:
                return                    # a duplicate IKE SA's child: never installed
            if isinstance(event, ChildSaUp):
                event = self._replacing(session, vpn, child)
            else:
                event = ChildSaRekeyed(event.old_spi_in, event.old_spi_out, child)
            gw.handle_ike_event(vpn, event, v.local, v.remote)
            self._owner.setdefault(vpn, id(session))
            info.children_created += 1
            return
        if isinstance(event, ChildSaDown):
            info.children_deleted += 1
            gw.handle_ike_event(vpn, event, v.local, v.remote)   # ignores SAs not installed
            if vpn not in gw.distributor:
                self._owner.pop(vpn, None)
            return
        if isinstance(event, IkeSaDown):
            self._closed = True
            info.children_deleted += len(event.children)
            # one path for both callers: apply_ike_event removes the listed children that
            # are installed (those of a duplicate IKE SA never were) and skips the rest
            gw.handle_ike_event(vpn, event, v.local, v.remote)
            if vpn not in gw.distributor and self._owner.get(vpn) == id(session):
                del self._owner[vpn]
            if id(session) in self._dropping:
                self._dropping.discard(id(session))
                return
            if v.establish == "immediately" and not self._active(v) and v.connect_at is None:
                # keep the tunnel up: negotiate again (the lower address first, as at start)
                v.connect_at = now + self.backoff * (1 if self._initiates_first(v) else 2)

    def _duplicate(self, session: IkeV2Session, v: _Vpn, now: float) -> bool:
        """Both ends initiated the same VPN (a crossing at start or after a failure): keep the
        IKE SA the lower-address end initiated, delete the other (RFC 7296 §2.8 leaves
        duplicate SAs to policy; the two ends decide alike). True if `session` is dropped."""
        others = [o for o in self._live.get(v.name, {}).values()
                  if o is not session and o.state == "established"
                  and id(o) not in self._dropping]
        if not others:
            return False
        other = others[0]
        we_first = self._initiates_first(v)

        def keeps(s: IkeV2Session) -> bool:
            return s.ike.initiator == we_first
        if keeps(session) and not keeps(other):
            loser = other
        elif keeps(other) and not keeps(session):
            loser = session
        else:
            loser = session               # same role twice: keep the older
        self._dropping.add(id(loser))
        loser.close(now)
        return loser is session

    def _replacing(self, session: IkeV2Session, vpn: str, child: Any) -> object:
        """A ChildSaUp, or, when the VPN's pair came from a duplicate IKE SA being deleted, a
        make-before-break replacement of that pair (RFC 7296 §2.8)."""
        owner = self._owner.get(vpn)
        if vpn in self.gw.distributor and owner is not None and owner != id(session) \
                and owner in self._dropping:
            self._owner[vpn] = id(session)
            old = self.gw.tunnel(vpn).pairs[0]
            return ChildSaRekeyed(old.inbound.spi, old.outbound.spi, child)
        return ChildSaUp(child)

    # ---------------------------------------------------------------- queries
    def sessions(self, vpn: Optional[str] = None) -> list[IkeV2Session]:
        """Live IKE SAs (of one VPN), in creation order."""
        out = [s for s in self.manager.sessions if s.state != "closed"]
        if vpn is not None:
            out = [s for s in out if s.config.name == vpn]
        return sorted(out, key=lambda s: self.info[id(s)].index if id(s) in self.info else 0)

    def session_of(self, vpn: str) -> Optional[IkeV2Session]:
        """The established IKE SA of `vpn`, if any."""
        return next((s for s in self.sessions(vpn) if s.state == "established"), None)

    def session_info(self, session: IkeV2Session) -> SessionInfo:
        return self.info[id(session)]

    def up(self, vpns: Optional[Iterable[str]] = None) -> bool:
        """Every VPN (of `vpns`) has its tunnel installed."""
        names = list(vpns) if vpns is not None else list(self.vpns)
        d = self.gw.distributor
        return all(n in d and len(d.tunnel(n).pairs) >= len(self.vpns[n].config.children)
                   for n in names)
