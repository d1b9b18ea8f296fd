"""`MnhaNode`: one node of a Multinode High Availability pair, sans-I/O (docs/mnha.md).

The node wraps a `Gateway` whose configuration has `chassis high-availability` and decides,
with the SRG state machines (`srg.py`), whether the gateway carries the tunnels of each SRG.
It talks to its peer node only through run-time object (RTO) messages (`rto.py`) sent as UDP
inside the interchassis link's IPsec tunnel (the `vpn-profile` VPN, `ha-link-encryption`,
offloaded to the PFE like any AES-GCM tunnel).

What the ACTIVE node sends its peer, so that the peer can carry every tunnel without
renegotiating anything and without ever reusing a sequence number (RFC 4303 §3.3.3; with
AES-GCM a repeated sequence number repeats the nonce, RFC 4106 §3.1, which is fatal):
- every child SA pair of the SRG's VPNs (keys, SPIs, selectors), when installed or rekeyed;
- outbound sequence-number reservations: the active node never sends a sequence number above
  what the peer has recorded (the SA's first reservation, or the highest one it acknowledged),
  and reserves the next block (`block`) long before it gets there; the node that takes over
  starts each SA just above the reservation it holds;
- each inbound SA's highest accepted sequence number, every heartbeat interval: the new node's
  replay window starts there.

Time and packets come from outside: `tick(now)` returns the ICL packets to send; `outbound`
and `inbound` take and return packets like `Gateway.outbound`/`inbound`.
"""
from __future__ import annotations

import ipaddress
import json
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..config.high_availability import HighAvailability, problems as ha_problems
from ..dataplane.gateway import Gateway, Output
from ..errors import ConfigError
from ..io.traffic import udp_packet
from .network import FloatingAddresses
from .rto import RTO_PORT, RtoError, RtoMessage, RtoType, decode, encode, spec_from_json, \
    spec_to_json
from .srg import PeerView, SrgMachine, SrgState, SrgTransition

if TYPE_CHECKING:
    from ..control.ike_control import IkeControl

__all__ = ["MnhaNode", "HaCounters", "DEFAULT_BLOCK", "MAX_EVENTS"]

#: Sequence numbers reserved per request; a new block is asked for when half is left.
DEFAULT_BLOCK = 1 << 20
#: The node's event log keeps this many lines.
MAX_EVENTS = 256
#: SA pairs one node keeps for its peer (the chassis limit of docs/design.md: 4000 SAs).
MAX_STANDBY_PAIRS = 4000
#: The fastest a node could send on one SA (packets per second), used to skip sequence numbers
#: the active node may have sent while this node could not hear it (ICL down, peer alive).
MAX_PACKET_RATE = 20_000_000
#: IKE SAs one node keeps for its peer, and the JSON characters of one RTO part of one.
MAX_STANDBY_IKE = 2000
_IKE_PART = 900
#: Upper bound on the ESP packets one inner packet can become (pre-fragmentation at DF clear:
#: every fragment carries at least this many bytes of the inner packet).
_MIN_FRAGMENT_PAYLOAD = 256


@dataclass
class HaCounters:
    heartbeats_sent: int = 0
    heartbeats_received: int = 0
    rto_sent: int = 0
    rto_received: int = 0
    rto_errors: int = 0
    sa_synced_out: int = 0
    sa_synced_in: int = 0
    seq_reservations: int = 0
    seq_acks: int = 0
    seq_waits: int = 0            #: packets dropped: no sequence-number reservation left
    not_active_drops: int = 0     #: packets for an SRG this node does not carry
    takeovers: int = 0
    yields: int = 0
    peer_lost: int = 0
    standby_overflow: int = 0
    ike_synced_out: int = 0
    ike_synced_in: int = 0
    ike_adopted: int = 0
    ike_adopt_errors: int = 0


@dataclass
class _Standby:
    """A peer's child SA pair, held for a takeover."""

    srg: int
    index: int
    sa_type: str
    out: Any
    inb: Any
    lts: list[str]
    rts: list[str]


@dataclass
class _Limit:
    """Outbound sequence-number limit of one SA on the active node."""

    vpn: str
    allowed: int                  #: highest sequence number the peer surely holds
    asked: int = 0                #: highest reservation sent, not yet acknowledged
    asked_at: float = float("-inf")
    held: bool = False            #: the peer acknowledged the SA itself (SA_ADD)
    sent_at: float = float("-inf")


class MnhaNode:
    """One MNHA node: a gateway plus the activeness and state synchronisation of its SRGs."""

    def __init__(self, gateway: Gateway, network: FloatingAddresses, *, now: float = 0.0,
                 block: int = DEFAULT_BLOCK, ike: Optional["IkeControl"] = None) -> None:
        ha = gateway.config.high_availability
        problems = [text for _, text in ha_problems(gateway.config)]
        if ha is None or problems:
            raise ConfigError("MNHA node: " + ("; ".join(problems) or
                                               "no 'chassis high-availability' configuration"))
        assert ha.local_id is not None and ha.local_ip is not None
        peer = ha.peer
        assert peer is not None and peer.peer_ip is not None and peer.vpn_profile is not None
        if block < 64:
            raise ValueError("the reservation block must be at least 64 sequence numbers")
        self.gw = gateway
        #: the gateway's IKE control, if it runs IKE: it runs only while this node is active
        #: for some SRG (`ike_datagrams`), and its IKE SAs follow the SRG's tunnels
        self.ike = ike
        self.ha: HighAvailability = ha
        self.network = network
        self.node_id = ha.local_id
        self.local_ip = ha.local_ip
        self.peer_id = peer.peer_id
        self.peer_ip = peer.peer_ip
        self.icl_vpn = peer.vpn_profile
        self.interval = peer.liveness.minimum_interval_ms / 1000.0
        self.timeout = peer.liveness.timeout
        self.block = block
        self.srgs: dict[int, SrgMachine] = {
            sid: SrgMachine(sid, self.node_id, srg.activeness_priority, srg.preemption)
            for sid, srg in ha.srgs.items() if sid}
        #: VPN -> its SRG (by its local address being a virtual IP of the SRG)
        self.vpn_srg: dict[str, int] = srg_vpns(gateway)
        self.counters = HaCounters()
        self.events: deque[tuple[float, str]] = deque(maxlen=MAX_EVENTS)
        self.last_transition: dict[int, tuple[float, SrgTransition]] = {}
        self.down_interfaces: set[str] = set()
        self.started = now
        self.last_heard: Optional[float] = None
        self.peer_alive = False
        self.peer_sync_done = False          #: we hold all the peer's state
        self._next_heartbeat = now
        self._number = 0
        self._synced: dict[str, tuple] = {}  # active: what the peer holds, per VPN
        self._limits: dict[int, _Limit] = {}  # active: outbound SPI -> limit
        self._standby: dict[str, dict[int, _Standby]] = {}   # backup: the peer's SA pairs
        self._reserved: dict[int, int] = {}  # backup: outbound SPI -> reservation held
        self._replay: dict[int, int] = {}    # backup: inbound SPI -> highest accepted
        self._out: list[bytes] = []
        self._peer_was_active = False
        self._sync_done_sent = False
        #: since when our copy of the peer's state may be behind (peer lost while it still
        #: answered for the floating address: it kept sending without us)
        self._stale_since: Optional[float] = None
        self._ike_sent: dict[str, tuple] = {}      # active: IKE SA id -> state_key sent
        self._ike_states: dict[str, dict] = {}     # backup: the peer's IKE SAs
        self._ike_parts: dict[str, dict[int, str]] = {}
        self._ike_started = False
        if ike is not None:
            ike.paused |= self._srg_gateways(None)
        # Tunnels of the SRGs start on no node: they come up on the node that is elected.
        for vpn in self.vpn_srg:
            if vpn in gateway.distributor:
                gateway.remove(vpn, "MNHA: waiting for the SRG's activeness")

    # -- state ---------------------------------------------------------------------------------

    def state(self, srg: int = 1) -> SrgState:
        return self.srgs[srg].state

    def active(self, srg: int = 1) -> bool:
        return self.srgs[srg].state is SrgState.ACTIVE

    def _log(self, now: float, text: str) -> None:
        self.events.append((now, text))

    # -- the clock ---------------------------------------------------------------------------

    def tick(self, now: float) -> list[bytes]:
        """Heartbeats, liveness, synchronisation; returns the ICL packets (ESP) to send."""
        if self.peer_alive and self.last_heard is not None and \
                now - self.last_heard > self.timeout:
            self._peer_lost(now)
        elif not self.peer_alive and self.last_heard is None and \
                now - self.started > self.timeout:
            self.last_heard = float("-inf")      # never heard: decide alone, once
            self._peer_lost(now)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.interval
            if not self.peer_alive and self.last_heard is not None:
                self._probe(now)           # keep probing while the peer is not heard
            self._send(RtoType.HEARTBEAT, {"srgs": self._heartbeat()})
            self.counters.heartbeats_sent += 1
            if self.peer_alive:
                self._sync_replay()
        if self.peer_alive:
            self._sync_sas(now)
            self._sync_ike(now)
            self._reserve(now)
            if not self._sync_done_sent and all(
                    lim.held for lim in self._limits.values()):
                self._send(RtoType.SYNC_DONE, {})
                self._sync_done_sent = True
        return self._flush()

    def _heartbeat(self) -> list[list[Any]]:
        return [[m.srg_id, m.state.value, m.priority, int(m.healthy), int(m.wants_preempt),
                 int(m.yielding), int(self.peer_sync_done)] for m in self.srgs.values()]

    def _peer_lost(self, now: float) -> None:
        if self.peer_alive:
            self.counters.peer_lost += 1
            self._log(now, f"peer node {self.peer_id} lost: no heartbeat for "
                      f"{self.timeout:g} s")
        self.peer_alive = False
        self.peer_sync_done = False
        for m in self.srgs.values():
            m.ready = False
        self._probe(now)

    def _probe(self, now: float) -> None:
        """The activeness probe of every SRG this node does not carry (split-brain
        prevention: take over only when no other node answers for the floating address)."""
        for m in self.srgs.values():
            probe = self.network.answered_by_other(self.node_id, self.ha.srgs[m.srg_id].addresses)
            if probe and self._stale_since is None and m.state is not SrgState.ACTIVE:
                self._stale_since = now
                self._log(now, f"SRG{m.srg_id}: peer not heard but the activeness probe is "
                          "answered by another node: staying backup (no split brain)")
            self._apply(now, m.peer_lost(probe))

    # -- transitions ---------------------------------------------------------------------------

    def _apply(self, now: float, t: Optional[SrgTransition]) -> None:
        if t is None:
            return
        self._log(now, f"SRG{t.srg_id}: {t.old.value} -> {t.new.value} ({t.reason})")
        self.last_transition[t.srg_id] = (now, t)
        addrs = self.ha.srgs[t.srg_id].addresses
        if t.new is SrgState.ACTIVE:
            self._take_over(now, t.srg_id)
            self.network.claim(self.node_id, addrs)
        elif t.old is SrgState.ACTIVE:
            self.network.release(self.node_id, addrs)
            self._give_up(now, t.srg_id)
        # tell the peer at once: a handover should not wait for the next heartbeat
        self._send(RtoType.HEARTBEAT, {"srgs": self._heartbeat()})

    def _take_over(self, now: float, srg: int) -> None:
        """Install the SRG's tunnels: the peer's SAs, each outbound SA started above its
        reservation and each inbound window at its last synchronised top; with no state from
        the peer, the configuration's own manual SAs (a first election)."""
        self.counters.takeovers += 1
        installed = 0
        for vpn, pairs in list(self._standby.items()):
            if self.vpn_srg.get(vpn) != srg or not pairs:
                continue
            if vpn in self.gw.distributor:
                self.gw.remove(vpn, "MNHA: replaced by the peer's synchronised SAs")
            for index in sorted(pairs):
                p = pairs[index]
                self.gw.install_child_sa(vpn, p.out, p.inb, local_ts=p.lts or None,
                                         remote_ts=p.rts or None, sa_type=p.sa_type)
            rec = self.gw.distributor.tunnel(vpn)
            skip = 0
            if self._stale_since is not None:
                skip = int((now - self._stale_since) * MAX_PACKET_RATE) + self.block
            for pair in rec.pairs:
                start = self._reserved.get(pair.outbound.spi)
                if start is not None:
                    limit = (1 << 64) - 1 if pair.outbound.esn else 0xFFFFFFFF
                    rec.engine.set_sequence(pair.outbound_handle, min(start + skip, limit))
                top = self._replay.get(pair.inbound.spi)
                if top is not None:
                    rec.engine.set_sequence(pair.inbound_handle, top)
            installed += 1
        self._adopt_ike(now, srg)
        if skip_note := (self._stale_since is not None and installed):
            self._log(now, f"SRG{srg}: the peer ran without us for {now - self._stale_since:.3f}"
                      " s: outbound sequence numbers skip ahead by that time at "
                      f"{MAX_PACKET_RATE} packets/s")
        del skip_note
        self._stale_since = None
        if not installed and not self._peer_was_active:
            # a first election: nobody carried these tunnels before, the configuration's
            # manual SAs start at sequence number 0
            self.gw.install_manual_sas()
        elif not installed:
            self._log(now, f"SRG{srg}: no synchronised SAs from node {self.peer_id}: its "
                      "manual SAs stay down (starting them at 0 would repeat sequence "
                      "numbers); IKE VPNs negotiate afresh")
        # what we now send, the peer must learn again (it may hold older state)
        self._synced = {v: s for v, s in self._synced.items() if self.vpn_srg.get(v) != srg}
        self._log(now, f"SRG{srg}: carrying {installed} synchronised tunnel(s)")

    def _give_up(self, now: float, srg: int) -> None:
        self.counters.yields += 1
        for vpn, s in self.vpn_srg.items():
            if s == srg and vpn in self.gw.distributor:
                self.gw.remove(vpn, "MNHA: the SRG is active on the peer node")
        for spi, lim in list(self._limits.items()):
            if self.vpn_srg.get(lim.vpn) == srg:
                del self._limits[spi]
        if self.ike is not None:
            from ..ike.v2.ha_state import abandon
            self.ike.paused |= self._srg_gateways(srg)
            for session in self.ike.sessions():
                if self._ike_srg(session) == srg:
                    abandon(session)
            self._ike_sent.clear()
        self._log(now, f"SRG{srg}: tunnels handed to node {self.peer_id}")

    def request_failover(self, now: float, srg: int = 1) -> None:
        """`request chassis high-availability failover services-redundancy-group N`."""
        self._apply(now, self.srgs[srg].request_failover())

    def set_monitor(self, now: float, interface: str, up: bool) -> None:
        """A monitored interface changed state (`monitor interface`)."""
        (self.down_interfaces.discard if up else self.down_interfaces.add)(interface)
        for sid, m in self.srgs.items():
            if interface in self.ha.srgs[sid].monitor_interfaces:
                self._apply(now, m.set_health(up, f"monitored interface {interface} down"))

    # -- synchronisation (active side) ---------------------------------------------------------

    def _sync_sas(self, now: float) -> None:
        present = set()
        for rec in self.gw.distributor.tunnels():
            srg = self.vpn_srg.get(rec.name)
            if srg is None or not self.active(srg):
                continue
            present.add(rec.name)
            sig = tuple((p.outbound.spi, p.inbound.spi) for p in rec.pairs)
            lost = any(not lim.held and now - lim.sent_at > self.interval
                       for p in rec.pairs
                       for lim in [self._limits.get(p.outbound.spi)] if lim is not None)
            if self._synced.get(rec.name) == sig and not lost:
                continue
            sels = self.gw.selectors(rec.name)
            for index, p in enumerate(rec.pairs):
                lim = self._limits.get(p.outbound.spi)
                used = rec.engine.sequence(p.outbound_handle)
                if lim is None:
                    lim = _Limit(rec.name, used + self.block)
                    self._limits[p.outbound.spi] = lim
                elif lim.sent_at == float("-inf"):
                    # first sent to a (re)joined peer: we may have run past the old value
                    # alone; the peer will hold this one (or nothing, or a stale copy that it
                    # skips ahead of, see _take_over)
                    lim.allowed = max(lim.allowed, used + self.block)
                lim.sent_at = now
                sel = sels[index] if index < len(sels) else None
                self._send(RtoType.SA_ADD, {
                    "vpn": rec.name, "srg": srg, "index": index, "sa_type": "dynamic",
                    "out": spec_to_json(p.outbound), "in": spec_to_json(p.inbound),
                    "lts": [str(n) for n in sel.local] if sel else [],
                    "rts": [str(n) for n in sel.remote] if sel else [],
                    "seq": lim.allowed})
                self.counters.sa_synced_out += 1
            self._synced[rec.name] = sig
        for vpn in [v for v in self._synced if v not in present and
                    self.vpn_srg.get(v) is not None and self.active(self.vpn_srg[v])]:
            del self._synced[vpn]
            self._send(RtoType.SA_DELETE, {"vpn": vpn})
        live = {p.outbound.spi for r in self.gw.distributor.tunnels() if r.name in present
                for p in r.pairs}
        for spi in [s for s in self._limits if s not in live]:
            del self._limits[spi]

    def _reserve(self, now: float) -> None:
        ask = []
        for rec in self.gw.distributor.tunnels():
            for p in rec.pairs:
                lim = self._limits.get(p.outbound.spi)
                if lim is None:
                    continue
                used = rec.engine.sequence(p.outbound_handle)
                stale = lim.asked > lim.allowed and now - lim.asked_at > self.interval
                if lim.allowed - used < self.block // 2 and (lim.asked <= lim.allowed or stale):
                    lim.asked, lim.asked_at = max(used, lim.allowed) + self.block, now
                    ask.append([p.outbound.spi, lim.asked])
        for chunk in _chunks(ask, 60):
            self._send(RtoType.SEQ_RESERVE, {"spis": chunk})
            self.counters.seq_reservations += len(chunk)

    def _sync_replay(self) -> None:
        tops = []
        for rec in self.gw.distributor.tunnels():
            srg = self.vpn_srg.get(rec.name)
            if srg is None or not self.active(srg):
                continue
            for p in rec.pairs:
                tops.append([p.inbound.spi, rec.engine.sequence(p.inbound_handle)])
        for chunk in _chunks(tops, 60):
            self._send(RtoType.REPLAY, {"spis": chunk})

    def headroom(self) -> int:
        """How many more packets the most constrained outbound SA may send now (without a
        peer there is nobody to take over, so no limit)."""
        if not self.peer_alive:
            return 1 << 62
        room = None
        for rec in self.gw.distributor.tunnels():
            for p in rec.pairs:
                lim = self._limits.get(p.outbound.spi)
                if lim is not None:
                    left = lim.allowed - rec.engine.sequence(p.outbound_handle)
                    room = left if room is None else min(room, left)
        return 1 << 62 if room is None else max(0, room)

    # -- synchronisation (backup side) ---------------------------------------------------------

    def _handle(self, msg: RtoMessage, now: float) -> None:
        b = msg.body
        if msg.type is RtoType.HEARTBEAT:
            self.counters.heartbeats_received += 1
            first = not self.peer_alive
            self.last_heard, self.peer_alive = now, True
            if first:
                self._log(now, f"peer node {self.peer_id} up")
                self._stale_since = None      # its state arrives afresh (SA_ADD)
                self._synced.clear()          # a (re)joining peer holds none of our state
                self._ike_sent.clear()
                self._sync_done_sent = False
                for lim in self._limits.values():
                    lim.asked, lim.held, lim.sent_at = 0, False, float("-inf")
            for item in b["srgs"]:
                if not (isinstance(item, list) and len(item) == 7):
                    raise RtoError(f"bad SRG entry {item!r}")
                sid, state, prio, healthy, preempt, yielding, ready = item
                m = self.srgs.get(sid)
                if m is None:
                    continue
                try:
                    view = PeerView(SrgState(state), int(prio), bool(healthy), bool(preempt),
                                    bool(yielding), bool(ready))
                except (ValueError, TypeError):
                    raise RtoError(f"bad SRG entry {item!r}") from None
                if view.state is SrgState.ACTIVE:
                    self._peer_was_active = True
                self._apply(now, m.peer_heard(self.peer_id, view))
        elif msg.type is RtoType.SA_ADD:
            srg = b["srg"]
            if self.vpn_srg.get(b["vpn"]) != srg or (srg in self.srgs and self.active(srg)):
                raise RtoError(f"SA of {b['vpn']!r} for SRG{srg}: not a standby VPN here")
            pairs = self._standby.setdefault(b["vpn"], {})
            if b["index"] not in pairs and \
                    sum(len(p) for p in self._standby.values()) >= MAX_STANDBY_PAIRS:
                self.counters.standby_overflow += 1
                raise RtoError("standby SA table full")
            out, inb = spec_from_json(b["out"]), spec_from_json(b["in"])
            old = pairs.get(b["index"])
            if old is not None and old.out.spi != out.spi:
                self._reserved.pop(old.out.spi, None)
                self._replay.pop(old.inb.spi, None)
            pairs[b["index"]] = _Standby(srg, b["index"], b["sa_type"], out, inb,
                                         [str(x) for x in b["lts"]], [str(x) for x in b["rts"]])
            self._reserved[out.spi] = max(self._reserved.get(out.spi, 0), b["seq"])
            self.counters.sa_synced_in += 1
            self._send(RtoType.SEQ_ACK, {"spis": [[out.spi, self._reserved[out.spi]]]})
        elif msg.type is RtoType.SYNC_DONE:
            if not self.peer_sync_done:
                self._log(now, f"cold sync from node {self.peer_id} complete")
            self.peer_sync_done = True
            for m in self.srgs.values():
                m.ready = True
                self._apply(now, m.evaluate())
        elif msg.type is RtoType.IKE_SA:
            ident, part, parts = b["id"], b["part"], b["parts"]
            if not 0 <= part < parts <= 64:
                raise RtoError(f"IKE SA part {part} of {parts}")
            if ident not in self._ike_parts and len(self._ike_parts) >= MAX_STANDBY_IKE:
                raise RtoError("too many IKE SAs being received")
            got = self._ike_parts.setdefault(ident, {})
            got[part] = b["data"]
            if len(got) == parts and set(got) == set(range(parts)):
                del self._ike_parts[ident]
                try:
                    state = json.loads("".join(got[i] for i in range(parts)))
                except json.JSONDecodeError as exc:
                    raise RtoError(f"IKE SA state is not JSON: {exc}") from None
                if not isinstance(state, dict):
                    raise RtoError("IKE SA state is not an object")
                if ident not in self._ike_states and \
                        len(self._ike_states) >= MAX_STANDBY_IKE:
                    self.counters.standby_overflow += 1
                    raise RtoError("standby IKE SA table full")
                self._ike_states[ident] = state
                self.counters.ike_synced_in += 1
        elif msg.type is RtoType.IKE_DELETE:
            self._ike_states.pop(b["id"], None)
            self._ike_parts.pop(b["id"], None)
        elif msg.type is RtoType.SA_DELETE:
            for p in self._standby.pop(b["vpn"], {}).values():
                self._reserved.pop(p.out.spi, None)
                self._replay.pop(p.inb.spi, None)
        elif msg.type is RtoType.SEQ_RESERVE:
            acked = []
            for spi, upto in b["spis"]:
                if spi in self._reserved:
                    self._reserved[spi] = max(self._reserved[spi], upto)
                    acked.append([spi, self._reserved[spi]])
            if acked:
                self._send(RtoType.SEQ_ACK, {"spis": acked})
        elif msg.type is RtoType.SEQ_ACK:
            for spi, upto in b["spis"]:
                lim = self._limits.get(spi)
                if lim is not None:
                    lim.held = True
                if lim is not None and upto > lim.allowed:
                    lim.allowed = upto
                    self.counters.seq_acks += 1
        elif msg.type is RtoType.REPLAY:
            for spi, top in b["spis"]:
                if any(p.inb.spi == spi for ps in self._standby.values() for p in ps.values()):
                    self._replay[spi] = max(self._replay.get(spi, 0), top)

    # -- IKE --------------------------------------------------------------------------------------

    def _ike_srg(self, session: Any) -> Optional[int]:
        """The SRG of an IKE SA: that of the VPNs of its `ike gateway`."""
        assert self.ike is not None
        peer = self.ike.peer_of(session)
        if peer is None:
            return None
        return next((self.vpn_srg[v] for v in peer.vpns if v in self.vpn_srg), None)

    def _sync_ike(self, now: float) -> None:
        """Send the peer every established IKE SA of an active SRG whose state changed (new
        message IDs after an exchange, a rekey, child SAs), and a delete for those gone."""
        if self.ike is None:
            return
        from ..ike.v2.ha_state import state_key
        live = set()
        for session, state in self.ike.export_sessions(now):
            srg = self._ike_srg(session)
            if srg is None or not self.active(srg):
                continue
            ident = session.ike.spi_i.hex()
            live.add(ident)
            key = state_key(session)
            if self._ike_sent.get(ident) == key:
                continue
            text = json.dumps(state, separators=(",", ":"))
            parts = [text[i:i + _IKE_PART] for i in range(0, len(text), _IKE_PART)]
            for i, data in enumerate(parts):
                self._send(RtoType.IKE_SA, {"id": ident, "part": i, "parts": len(parts),
                                            "data": data})
            self._ike_sent[ident] = key
            self.counters.ike_synced_out += 1
        busy = {s.ike.spi_i.hex() for s in self.ike.sessions()}
        for ident in [i for i in self._ike_sent if i not in live and i not in busy]:
            del self._ike_sent[ident]
            self._send(RtoType.IKE_DELETE, {"id": ident})

    def _srg_gateways(self, srg: Optional[int]) -> set[str]:
        """The `ike gateway`s of the VPNs of `srg` (of every SRG when None)."""
        vpns = self.gw.config.ipsec_vpns
        ikes = [vpns[v].ike for v, s in self.vpn_srg.items() if srg is None or s == srg]
        return {ike.gateway for ike in ikes if ike is not None and ike.gateway}

    def _adopt_ike(self, now: float, srg: int) -> None:
        if self.ike is None:
            return
        from ..ike.v2.ha_state import HaStateError
        peers = self._srg_gateways(srg)
        self.ike.paused -= peers
        for ident, state in list(self._ike_states.items()):
            if state.get("config") not in peers:
                continue
            del self._ike_states[ident]
            try:
                self.ike.adopt(state, now)
                self.counters.ike_adopted += 1
            except HaStateError as exc:
                self.counters.ike_adopt_errors += 1
                self._log(now, f"SRG{srg}: IKE SA {ident} not carried on: {exc}")
        for name in peers:                     # bring up what was not carried over
            for vpn in self.ike.peers[name].vpns if name in self.ike.peers else ():
                if self.gw.config.ipsec_vpns[vpn].establish_tunnels == "immediately":
                    self.ike.ensure(vpn, now)

    def ike_datagrams(self, now: float) -> list[tuple[bytes, tuple]]:
        """The IKE control's timers and datagrams. While this node is backup for an SRG the
        SRG's IKE gateways are paused (`IkeControl.paused`): it neither initiates nor answers
        for the tunnels its peer carries; the ICL's own IKE (and SRG0's) always runs."""
        if self.ike is None:
            return []
        if not self._ike_started:
            self._ike_started = True
            self.ike.start(now)
        t = self.ike.get_timer()
        if t is not None and t <= now:
            self.ike.handle_timer(now)
        return self.ike.datagrams_to_send(now)

    # -- packets ---------------------------------------------------------------------------------

    def _send(self, kind: RtoType, body: dict[str, Any]) -> None:
        self._number += 1
        data = encode(RtoMessage(kind, self.node_id, self._number, body))
        self._out.append(udp_packet(self.local_ip, self.peer_ip, data, RTO_PORT, RTO_PORT))
        self.counters.rto_sent += 1

    def _flush(self) -> list[bytes]:
        if not self._out:
            return []
        inner, self._out = self._out, []
        return self.gw.outbound(inner).wire

    def outbound(self, packets: Sequence[bytes]) -> Output:
        """Inner packets to the tunnels. Only a node that is ACTIVE for some SRG carries
        traffic, and never past its sequence-number reservations."""
        if not any(m.state is SrgState.ACTIVE for m in self.srgs.values()):
            self.counters.not_active_drops += len(packets)
            return Output(dropped=len(packets))
        room = self.headroom()
        take, cost = 0, 0
        for pkt in packets:
            need = 1 + len(pkt) // _MIN_FRAGMENT_PAYLOAD
            if cost + need > room:
                break
            cost += need
            take += 1
        out = self.gw.outbound(packets[:take]) if take else Output()
        if take < len(packets):
            self.counters.seq_waits += len(packets) - take
            out.dropped += len(packets) - take
        return out

    def inbound(self, packets: Sequence[bytes], now: float) -> Output:
        """Outer packets from the wire: the ICL's RTO messages are consumed here, the rest is
        the gateway's output."""
        out = self.gw.inbound(packets)
        if out.delivered:
            keep = []
            for pkt in out.delivered:
                data = self._rto_payload(pkt)
                if data is None:
                    keep.append(pkt)
                    continue
                self.counters.rto_received += 1
                try:
                    self._handle(decode(data), now)
                except RtoError as exc:
                    self.counters.rto_errors += 1
                    self._log(now, f"RTO message dropped: {exc}")
            out.delivered = keep
        return out

    def _rto_payload(self, pkt: bytes) -> Optional[bytes]:
        """The UDP payload of an RTO datagram from the peer node to us, else None."""
        try:
            if pkt[0] >> 4 == 4 and len(pkt) >= 28 and pkt[9] == 17:
                ihl = (pkt[0] & 15) * 4
                src, dst = str(ipaddress.IPv4Address(pkt[12:16])), \
                    str(ipaddress.IPv4Address(pkt[16:20]))
                udp = pkt[ihl:]
            elif pkt[0] >> 4 == 6 and len(pkt) >= 48 and pkt[6] == 17:
                src, dst = str(ipaddress.IPv6Address(pkt[8:24])), \
                    str(ipaddress.IPv6Address(pkt[24:40]))
                udp = pkt[40:]
            else:
                return None
        except (IndexError, ValueError):
            return None
        if src != self.peer_ip or dst != self.local_ip or len(udp) < 8:
            return None
        sport, dport, length = struct.unpack_from("!HHH", udp)
        if dport != RTO_PORT or not 8 <= length <= len(udp):
            return None
        return bytes(udp[8:length])


def _chunks(items: list, n: int) -> list[list]:
    return [items[i:i + n] for i in range(0, len(items), n)]


def srg_vpns(gw: Gateway) -> dict[str, int]:
    """VPN -> SRG, for each VPN whose local address is a virtual IP of an SRG."""
    cfg = gw.config
    ha = cfg.high_availability
    if ha is None:
        return {}
    out = {}
    for vpn in cfg.ipsec_vpns.values():
        if vpn.ha_link_encryption:
            continue
        local = None
        gw_cfg = cfg.gateway_of(vpn)
        if gw_cfg is not None:
            local = cfg.local_address_of(gw_cfg)
        elif vpn.manual is not None:
            local = gw.local_address(vpn)
        srg = ha.srg_of_address(local)
        if srg is not None:
            out[vpn.name] = srg
    return out
