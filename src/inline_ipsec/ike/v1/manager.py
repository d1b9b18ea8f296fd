"""`IkeV1Manager`: many IKEv1 sessions behind one pair of UDP ports, sans-I/O, with the
surface of `IkeManager` (so `udp.IkeUdpEndpoint` and the gateway can drive either).

ISAKMP names an SA by its cookie pair (RFC 2408 §2.5.3): the initiator's cookie, chosen by
the initiator, finds the session, the responder's cookie must then match (or still be zero
in a Phase 1 first message). A Main/Aggressive Mode first message with a fresh initiator
cookie creates a responder session when a configuration accepts the source address.

Bounds: at most `max_half_open` responder sessions in Phase 1 (new first messages beyond are
dropped and counted; each half-open session also ends after the configuration's
`half_open_timeout`), at most `max_sessions` sessions in all; closed sessions are pruned.
INITIAL-CONTACT (RFC 2407 §4.6.3.3) drops our other ISAKMP SAs with the same authenticated
peer identity.

Cost per datagram does not grow with the number of sessions: a session tells the manager
when it changed (`IkeV1Session.listener`), so `datagrams_to_send` and `next_event` visit only
those, and timers sit in a heap (stale entries are skipped when they surface).
"""
from __future__ import annotations

import heapq
import ipaddress
from collections import deque
from typing import Callable, Optional

from ..constants import NON_ESP_MARKER
from ..events import IkeEvent, IkeSaUp
from ..states import IkeV1SaState
from .config import IkeV1Config
from .constants import ExchangeType
from .isakmp import HEADER_LEN
from .session import Addr, IkeV1Session

#: Picks the configuration for a peer that starts an ISAKMP SA with us, or None to ignore it.
ConfigLookup = Callable[[Addr], Optional[IkeV1Config]]


class IkeV1Manager:
    """Dispatches ISAKMP datagrams to `IkeV1Session`s by cookie and creates responders."""

    MAX_HALF_OPEN = 1000
    MAX_SESSIONS = 20000

    def __init__(self, local_addr: Addr, natt_local_port: int,
                 lookup: Optional[ConfigLookup] = None, *,
                 max_half_open: int = MAX_HALF_OPEN, max_sessions: int = MAX_SESSIONS) -> None:
        self.local_addr = tuple(local_addr)
        self.natt_local_port = natt_local_port
        self.lookup = lookup
        self.max_half_open = max_half_open
        self.max_sessions = max_sessions
        self._sessions: dict[int, IkeV1Session] = {}
        self._by_cky: dict[bytes, IkeV1Session] = {}
        self._peers: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                IkeV1Config]] = []
        #: sessions that changed since `datagrams_to_send` last visited them
        self._dirty: dict[int, IkeV1Session] = {}
        #: sessions that changed since `next_event` last collected their events
        self._unread: dict[int, IkeV1Session] = {}
        #: sessions that completed Phase 1, by authenticated peer identity (re-authentication
        #: and INITIAL-CONTACT look only at the peer's own ISAKMP SAs)
        self._by_peer_id: dict[str, dict[int, IkeV1Session]] = {}
        #: responder sessions still in Phase 1, by id
        self._half_open: dict[int, IkeV1Session] = {}
        #: live sessions per peer address (INITIAL-CONTACT is sent to a new peer only)
        self._per_peer: dict[str, int] = {}
        #: the peer address each session was counted under in `_per_peer`, by id
        self._peer_of: dict[int, str] = {}
        #: ids of sessions whose replacement by a new Phase 1 has started (once only)
        self._reauthenticating: set[int] = set()
        #: (time, tie, session) of each session's timer; entries whose time is no longer the
        #: session's are stale and skipped
        self._heap: list[tuple[float, int, IkeV1Session]] = []
        self._when: dict[int, Optional[float]] = {}
        self._tie = 0
        self._events: deque[tuple[IkeV1Session, IkeEvent]] = deque()
        #: datagrams dropped: no session and not a first message / no configuration / limits
        self.drops: dict[str, int] = {}

    @property
    def sessions(self) -> list[IkeV1Session]:
        return list(self._sessions.values())

    # ------------------------------------------------------------------ configuration
    def add_peer(self, network: str, config: IkeV1Config) -> None:
        """Accept ISAKMP SAs from addresses in `network` with `config` (first match wins)."""
        self._peers.append((ipaddress.ip_network(network, strict=False), config))

    def config_for(self, addr: Addr) -> Optional[IkeV1Config]:
        ip = ipaddress.ip_address(addr[0])
        for net, cfg in self._peers:
            if ip.version == net.version and ip in net:
                return cfg
        return self.lookup(addr) if self.lookup is not None else None

    # ------------------------------------------------------------------ sessions
    def connect(self, config: IkeV1Config, remote_addr: Addr, now: float) -> IkeV1Session:
        """Start an ISAKMP SA as initiator (Phase 1, then a Quick Mode)."""
        s = IkeV1Session(config, initiator=True, local_addr=self.local_addr,
                         remote_addr=remote_addr, now=now,
                         natt_local_port=self.natt_local_port)
        s.send_initial_contact = not self._per_peer.get(str(remote_addr[0]))
        self._add(s)
        s.connect(now)
        return s

    def _add(self, s: IkeV1Session) -> None:
        s.listener = self._mark
        s.successor = lambda: self._successor(s)
        self._sessions[id(s)] = s
        peer = str(s.remote_addr[0])
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        self._peer_of[id(s)] = peer
        if s.sa.cky_i != bytes(8):
            self._by_cky[s.sa.cky_i] = s
        self._dirty[id(s)] = s

    def _mark(self, s: IkeV1Session) -> None:
        self._dirty[id(s)] = s
        self._unread[id(s)] = s

    def _same_peer(self, s: IkeV1Session) -> list[IkeV1Session]:
        """The other ISAKMP SAs that authenticated the same peer identity as `s`."""
        return [o for o in self._by_peer_id.get(str(s.peer_id), {}).values() if o is not s]

    def _count(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    @property
    def half_open(self) -> int:
        """Responder sessions whose Phase 1 has not completed."""
        return len(self._half_open)

    def find(self, data: bytes) -> Optional[IkeV1Session]:
        if len(data) < HEADER_LEN:
            return None
        s = self._by_cky.get(data[:8])
        return s if s is not None and s.state != IkeV1SaState.CLOSED else None

    @staticmethod
    def _is_first(data: bytes) -> bool:
        """A Phase 1 first message: zero responder cookie and message ID, Main/Aggressive."""
        return len(data) >= HEADER_LEN and data[8:16] == bytes(8) and \
            data[18] in (ExchangeType.MAIN, ExchangeType.AGGRESSIVE) and \
            data[20:24] == bytes(4) and data[17] >> 4 == 1

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one UDP payload from either port (NAT-T ones keep their marker)."""
        if data == b"\xff":
            return
        raw = data[4:] if data.startswith(NON_ESP_MARKER) else data
        session = self.find(raw)
        if session is None:
            if not self._is_first(raw):
                self._count("no-session")
                return
            cfg = self.config_for(tuple(addr))
            if cfg is None:
                self._count("no-configuration")
                return
            if self.half_open >= self.max_half_open or \
                    len(self._sessions) >= self.max_sessions:
                self._count("limit")
                return
            session = IkeV1Session(cfg, initiator=False, local_addr=self.local_addr,
                                   remote_addr=addr, now=now,
                                   natt_local_port=self.natt_local_port)
            self._add(session)
            self._by_cky[raw[:8]] = session
            self._half_open[id(session)] = session
        session.receive_datagram(data, addr, now)

    def _collect(self, session: IkeV1Session) -> None:
        while (event := session.next_event()) is not None:
            self._events.append((session, event))
            if isinstance(event, IkeSaUp):
                self._by_peer_id.setdefault(str(session.peer_id), {})[id(session)] = session
                if session.peer_initial_contact:
                    self._initial_contact(session)
                elif session.replaces is not None:
                    self._reauthenticated(session)
                elif not session.sa.initiator:
                    self._peer_reauthenticated(session)

    def _reauthenticated(self, fresh: IkeV1Session) -> None:
        """Our re-authentication completed: the new ISAKMP SA adopts the old one's IPsec SAs
        (as strongSwan's adopt_children job) and the old one is deleted once the peer has
        had time to move them too (`IkeV1Config.reauth_delete_delay`)."""
        old = fresh.replaces
        if old is None or old.state == IkeV1SaState.CLOSED:
            return
        fresh.adopt_children(old)
        old.retire(fresh.now, "re-authenticated", old.config.reauth_delete_delay)
        self._dirty[id(old)] = old

    def _peer_reauthenticated(self, fresh: IkeV1Session) -> None:
        """The peer started a new ISAKMP SA without INITIAL-CONTACT while we have an older
        one with the same identity and configuration: a re-authentication (strongSwan keeps
        the old SA for a while, Junos deletes it). The new SA adopts the IPsec SAs at once,
        as the peer moved them: their rekeys and Deletes arrive on the new SA."""
        for old in self._same_peer(fresh):
            if old.state == IkeV1SaState.ESTABLISHED and \
                    old.peer_id == fresh.peer_id and old.config is fresh.config and \
                    old.phase1_seq < fresh.phase1_seq and old.children:
                fresh.adopt_children(old)
                self._dirty[id(old)] = old

    def _successor(self, old: IkeV1Session) -> Optional[IkeV1Session]:
        """The newest ISAKMP SA with the same peer identity and configuration that came up
        after `old`: where `old`'s IPsec SAs go when the peer deletes `old` after
        re-authenticating (or `old` expires), instead of going down."""
        best = None
        for s in self._same_peer(old):
            if s.state == IkeV1SaState.ESTABLISHED and s.peer_id == old.peer_id \
                    and s.config is old.config and s.phase1_seq > old.phase1_seq and (
                        best is None or s.phase1_seq > best.phase1_seq):
                best = s
        if best is not None:
            self._dirty[id(best)] = best
        return best

    def reauthenticate(self, session: IkeV1Session, now: float) -> Optional[IkeV1Session]:
        """Replace an established ISAKMP SA by a new Phase 1 now (what happens by itself at
        90 % of its lifetime on the initiator); returns the new session."""
        if session.state != IkeV1SaState.ESTABLISHED or id(session) in self._reauthenticating:
            return None
        session.now = now
        return self._start_reauth(session)

    def _start_reauth(self, old: IkeV1Session) -> IkeV1Session:
        """Replace an initiator ISAKMP SA nearing its lifetime by a new Phase 1."""
        self._reauthenticating.add(id(old))
        new = IkeV1Session(old.config, initiator=True, local_addr=self.local_addr,
                           remote_addr=old.remote_addr, now=old.now,
                           natt_local_port=self.natt_local_port)
        new.send_initial_contact = False
        new.replaces = old
        self._add(new)
        new.connect(old.now, first_child=False)
        return new

    def _initial_contact(self, fresh: IkeV1Session) -> None:
        """The peer lost its state before `fresh`: our ISAKMP SAs with the same identity
        that completed Phase 1 before it are stale."""
        for s in self._same_peer(fresh):
            if s.state == IkeV1SaState.ESTABLISHED and s.peer_id == fresh.peer_id \
                    and s.phase1_seq < fresh.phase1_seq:
                s.drop("replaced by INITIAL-CONTACT")

    def _settle(self, s: IkeV1Session) -> None:
        """After a session changed: half-open bookkeeping, re-authentication, its timer,
        pruning when closed."""
        if s.sa.initiator or s.state not in (IkeV1SaState.CREATED, IkeV1SaState.PHASE1):
            self._half_open.pop(id(s), None)
        if s.reauth_due and s.state == IkeV1SaState.ESTABLISHED and \
                id(s) not in self._reauthenticating:
            self._start_reauth(s)
        if s.state == IkeV1SaState.CLOSED or \
                (s.state == IkeV1SaState.CREATED and not s.sa.initiator):
            self._remove(s)
            return
        when = s.get_timer()
        if when != self._when.get(id(s)):
            self._when[id(s)] = when
            if when is not None:
                self._tie += 1
                heapq.heappush(self._heap, (when, self._tie, s))

    def _remove(self, s: IkeV1Session) -> None:
        if self._sessions.pop(id(s), None) is None:
            return
        self._half_open.pop(id(s), None)
        self._when.pop(id(s), None)
        self._unread.pop(id(s), None)
        same = self._by_peer_id.get(str(s.peer_id))
        if same is not None:
            same.pop(id(s), None)
            if not same:
                del self._by_peer_id[str(s.peer_id)]
        if self._by_cky.get(s.sa.cky_i) is s:
            del self._by_cky[s.sa.cky_i]
        self._reauthenticating.discard(id(s))
        peer = self._peer_of.pop(id(s))
        left = self._per_peer.get(peer, 1) - 1
        if left:
            self._per_peer[peer] = left
        else:
            self._per_peer.pop(peer, None)

    # ------------------------------------------------------------------ aioquic-style surface
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out: list[tuple[bytes, Addr]] = []
        while self._dirty:
            dirty, self._dirty = self._dirty, {}
            for s in dirty.values():
                out += s.datagrams_to_send(now)
                self._collect(s)
                self._settle(s)
        return out

    def get_timer(self) -> Optional[float]:
        heap = self._heap
        while heap:
            when, _, s = heap[0]
            if self._when.get(id(s)) == when and id(s) in self._sessions:
                return when
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        due = []
        while heap and heap[0][0] <= now:
            when, _, s = heapq.heappop(heap)
            if self._when.get(id(s)) == when and id(s) in self._sessions:
                self._when[id(s)] = None
                due.append(s)
        for s in due:
            s.handle_timer(now)
            self._dirty[id(s)] = s

    def next_event(self) -> Optional[tuple[IkeV1Session, IkeEvent]]:
        if not self._events:
            unread, self._unread = self._unread, {}
            for s in unread.values():
                self._collect(s)
        return self._events.popleft() if self._events else None

    def keepalive_targets(self) -> list[Addr]:
        """Peers to send RFC 3948 §2.3 NAT keepalives to (we are behind a NAT)."""
        return [s.remote_addr for s in self._sessions.values()
                if s.local_nat and s.natt and s.state == IkeV1SaState.ESTABLISHED]

    def counters(self) -> dict[str, int]:
        return {"sessions": len(self._sessions), "half_open": self.half_open, **self.drops}
