"""`IkeManager`: many IKEv2 sessions behind one pair of UDP ports, still sans-I/O.

It finds the session of an incoming datagram by its IKE SPIs (RFC 7296 §2.1: the SPI pair, not
the address, names the IKE SA; an old SA being deleted after a rekey still counts), creates a
responder session for a new IKE_SA_INIT request when a configuration accepts the source
address, forgets sessions answered statelessly (COOKIE, INVALID_KE_PAYLOAD) or closed, and
multiplexes timers, datagrams and events. `udp.py` puts sockets around it.

Half-open IKE SAs (RFC 7296 §2.6): a responder IKE SA that answered IKE_SA_INIT but has not
seen IKE_AUTH holds a DH result and keys for a peer whose address nobody checked. The manager
counts them; at `cookie_threshold` (or always, for a configuration with `require_cookie`) it
answers a new IKE_SA_INIT with a COOKIE notify computed without state, and creates a session
only for a request that returns a valid cookie (which proves the initiator receives at its
address); at `max_half_open` it drops new IKE_SA_INIT requests outright. Half-open SAs still
end after the configuration's `half_open_timeout`.

Every collection here has a bound an unauthenticated sender cannot raise: sessions are made
only for IKE_SA_INIT requests admitted as above (a responder that answered statelessly, e.g.
INVALID_KE_PAYLOAD, is forgotten at once), the SPI index holds the live IKE SAs' SPIs,
stateless answers wait in a queue of `MAX_STATELESS` (further ones are dropped and counted),
and datagrams for unknown SPIs are counted, never kept.
"""
from __future__ import annotations

import heapq
import ipaddress
from collections import deque
from typing import Callable, Optional

from .config import IkeConfig
from .constants import NON_ESP_MARKER, ExchangeType, HeaderFlag, NotifyType
from .errors import RemoteIkeError
from .events import IkeEvent, IkeSaRekeyed, IkeSaUp
from .message import IkeHeader, decode_message, encode_message
from .payloads import NoncePayload, NotifyPayload, notify
from .states import IkeSaState
from .v2.session import Addr, IkeV2Session

#: Picks the configuration for a peer that starts an IKE SA with us, or None to ignore it.
ConfigLookup = Callable[[Addr], Optional[IkeConfig]]


class IkeManager:
    """Dispatches datagrams to `IkeV2Session`s by SPI and creates responder sessions."""

    #: default number of half-open responder IKE SAs from which cookies are demanded (§2.6)
    COOKIE_THRESHOLD = 100
    #: default number of half-open responder IKE SAs from which IKE_SA_INIT is dropped
    MAX_HALF_OPEN = 1000
    #: stateless answers (COOKIE, INVALID_KE_PAYLOAD) waiting for `datagrams_to_send`
    MAX_STATELESS = 1024

    def __init__(self, local_addr: Addr, natt_local_port: int,
                 lookup: Optional[ConfigLookup] = None, *,
                 cookie_threshold: Optional[int] = COOKIE_THRESHOLD,
                 max_half_open: Optional[int] = MAX_HALF_OPEN) -> None:
        """`cookie_threshold`: with this many half-open responder IKE SAs, new IKE_SA_INIT
        requests must return a COOKIE (None: only for configurations with `require_cookie`);
        `max_half_open`: with this many, new IKE_SA_INIT requests are dropped (None: no
        limit)."""
        self.local_addr = tuple(local_addr)
        self.natt_local_port = natt_local_port
        self.lookup = lookup
        self.cookie_threshold = cookie_threshold
        self.max_half_open = max_half_open
        #: COOKIE notifies sent instead of creating state (§2.6)
        self.cookies_sent = 0
        #: IKE_SA_INIT requests dropped at `max_half_open`
        self.dropped_half_open = 0
        #: IKE_SA_INIT requests returning a wrong or stale cookie (answered with a new one)
        self.bad_cookies = 0
        #: datagrams for no IKE SA of ours (unknown SPIs, too short, not a new IKE_SA_INIT)
        self.unknown_spi = 0
        #: stateless answers dropped because `MAX_STATELESS` were already waiting
        self.dropped_stateless = 0
        #: responder sessions between IKE_SA_INIT and IKE_AUTH, by id
        self._half_open: dict[int, IkeV2Session] = {}
        #: stateless answers (COOKIE) waiting for `datagrams_to_send`
        self._stateless: list[tuple[bytes, Addr]] = []
        self.sessions: list[IkeV2Session] = []
        #: sessions by initiator SPI (RFC 7296 §2.1), a cache checked against the SPI pair
        self._by_spi: dict[bytes, IkeV2Session] = {}
        #: sessions with queued events, in the order they queued them
        self._dirty: dict[int, IkeV2Session] = {}
        #: (time, tie, session) of each session's timer, and the time each session's entry
        #: stands for (older entries are stale and skipped): `get_timer` in O(log n) with
        #: thousands of sessions. A session tells the manager (`listener`) whenever its
        #: timer may have moved earlier (it only moves later by itself, which costs at most
        #: a spurious wake-up).
        self._heap: list[tuple[float, int, IkeV2Session]] = []
        self._when: dict[int, Optional[float]] = {}
        self._tie = 0
        self._peers: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, IkeConfig]] = []
        self._events: deque[tuple[IkeV2Session, IkeEvent]] = deque()

    # ------------------------------------------------------------------ configuration
    def add_peer(self, network: str, config: IkeConfig) -> None:
        """Accept IKE SAs from addresses in `network` with `config` (first match wins)."""
        self._peers.append((ipaddress.ip_network(network, strict=False), config))

    def config_for(self, addr: Addr) -> Optional[IkeConfig]:
        ip = ipaddress.ip_address(addr[0])
        for net, cfg in self._peers:
            if ip.version == net.version and ip in net:
                return cfg
        return self.lookup(addr) if self.lookup is not None else None

    # ------------------------------------------------------------------ sessions
    def connect(self, config: IkeConfig, remote_addr: Addr, now: float) -> IkeV2Session:
        """Start an IKE SA as initiator (IKE_SA_INIT + IKE_AUTH + first child)."""
        s = IkeV2Session(config, initiator=True, local_addr=self.local_addr,
                         remote_addr=remote_addr, now=now,
                         natt_local_port=self.natt_local_port)
        # §2.4: INITIAL_CONTACT only on the first IKE SA with this peer.
        s.send_initial_contact = not any(
            o.remote_addr[0] == remote_addr[0] and o.state != IkeSaState.CLOSED
            for o in self.sessions)
        self._add(s)
        s.connect(now)
        return s

    def _add(self, s: IkeV2Session) -> None:
        s.listener = self._mark
        self._dirty[id(s)] = s
        self.sessions.append(s)
        if s.ike.spi_i != bytes(8):
            self._by_spi[s.ike.spi_i] = s

    def adopt(self, s: IkeV2Session) -> None:
        """An established session made elsewhere (`ike.v2.ha_state.restore_session`)."""
        self._add(s)

    def find_spi(self, spi_i: bytes) -> Optional[IkeV2Session]:
        return self._by_spi.get(spi_i)

    def _mark(self, s: IkeV2Session) -> None:
        self._dirty[id(s)] = s

    @staticmethod
    def _owns(s: IkeV2Session, spi_i: bytes, spi_r: bytes, init: bool) -> bool:
        for ike in (s.ike, *s.old_ike):
            if ike.spi_i != spi_i:
                continue
            if ike.spi_r == spi_r or (init and bytes(8) in (spi_r, ike.spi_r)):
                return True
        return False

    def find(self, data: bytes) -> Optional[IkeV2Session]:
        """The session owning this IKE message (without non-ESP marker), by SPI pair: one
        look-up in the index of live IKE SAs (those made by a rekey, §2.18, included)."""
        if len(data) < 28:
            return None
        spi_i, spi_r = data[:8], data[8:16]
        init = data[18] == ExchangeType.IKE_SA_INIT
        s = self._by_spi.get(spi_i)
        if s is not None and s.state != IkeSaState.CLOSED and self._owns(s, spi_i, spi_r, init):
            return s
        return None

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one UDP payload from either port (NAT-T ones keep their marker)."""
        if data == b"\xff":
            return  # NAT-T keepalive (RFC 3948 §2.3)
        marker = data.startswith(NON_ESP_MARKER)
        raw = data[4:] if marker else data
        session = self.find(raw)
        fresh = False
        if session is None and self._is_new_init(raw):
            cfg = self.config_for(tuple(addr))
            if cfg is not None and self._admit(cfg, raw, addr, marker, now):
                session = IkeV2Session(cfg, initiator=False, local_addr=self.local_addr,
                                       remote_addr=addr, now=now,
                                       natt_local_port=self.natt_local_port)
                self._add(session)
                self._by_spi[raw[:8]] = session
                fresh = True
        if session is None:
            if not self._is_new_init(raw):
                self.unknown_spi += 1
            return
        session.receive_datagram(data, addr, now)
        if fresh and session.state in (IkeSaState.CREATED, IkeSaState.CLOSED):
            # Answered without state (INVALID_KE_PAYLOAD, a COOKIE request), refused (e.g.
            # NO_PROPOSAL_CHOSEN, its IkeSaDown says so) or not answered at all: keep the
            # answer, forget the session now rather than at the next prune.
            for item in session.datagrams_to_send(now):
                self._queue_stateless(item)
            if session.state == IkeSaState.CLOSED:
                self._collect(session)
            self._forget(session)
            return
        self._collect(session)

    def _queue_stateless(self, item: tuple[bytes, Addr]) -> None:
        if len(self._stateless) >= self.MAX_STATELESS:
            self.dropped_stateless += 1
            return
        self._stateless.append(item)

    def _schedule(self, s: IkeV2Session) -> None:
        """Put the session's current timer into the heap (if it changed)."""
        t = s.get_timer()
        if t != self._when.get(id(s)):
            self._when[id(s)] = t
            if t is not None:
                self._tie += 1
                heapq.heappush(self._heap, (t, self._tie, s))

    def _forget(self, session: IkeV2Session) -> None:
        self.sessions.remove(session)
        self._when.pop(id(session), None)
        self._dirty.pop(id(session), None)
        self._half_open.pop(id(session), None)
        for ike in (session.ike, *session.old_ike):
            if self._by_spi.get(ike.spi_i) is session:
                del self._by_spi[ike.spi_i]

    # ------------------------------------------------------------------ half-open SAs (§2.6)
    @property
    def half_open(self) -> int:
        """Responder IKE SAs that answered IKE_SA_INIT and wait for IKE_AUTH."""
        return len(self._half_open)

    @property
    def cookies_required(self) -> bool:
        """New IKE_SA_INIT requests must return a cookie (the half-open threshold is hit)."""
        return self.cookie_threshold is not None and self.half_open >= self.cookie_threshold

    def counters(self) -> dict[str, int]:
        return {"sessions": len(self.sessions), "half_open": self.half_open,
                "cookies_sent": self.cookies_sent, "bad_cookies": self.bad_cookies,
                "dropped_half_open": self.dropped_half_open, "unknown_spi": self.unknown_spi,
                "dropped_stateless": self.dropped_stateless}

    def _track(self, s: IkeV2Session) -> None:
        if s.state == IkeSaState.INIT and not s.ike.initiator:
            self._half_open[id(s)] = s
        else:
            self._half_open.pop(id(s), None)

    def _admit(self, cfg: IkeConfig, raw: bytes, addr: Addr, marker: bool,
               now: float) -> bool:
        """May this new IKE_SA_INIT request create a session? Otherwise it is dropped, or
        answered statelessly with HDR, N(COOKIE) (§2.6), and leaves no state behind."""
        if self.max_half_open is not None and self.half_open >= self.max_half_open:
            self.dropped_half_open += 1
            return False
        if not (cfg.require_cookie or self.cookies_required):
            return True
        try:
            msg = decode_message(raw)
        except RemoteIkeError:
            return False                 # malformed: not worth an answer
        nonce = next((p for p in msg.payloads if isinstance(p, NoncePayload)), None)
        if nonce is None:
            return False
        h = msg.header
        secrets = cfg.cookie_secrets
        got = next((p for p in msg.payloads if isinstance(p, NotifyPayload)
                    and p.notify_type == NotifyType.COOKIE), None)
        if got is not None and secrets.check(got.data, addr[0], nonce.nonce, h.spi_i, now):
            return True
        if got is not None:
            self.bad_cookies += 1
        expected = secrets.make(addr[0], nonce.nonce, h.spi_i, now)
        hdr = IkeHeader(h.spi_i, bytes(8), 0, ExchangeType.IKE_SA_INIT, HeaderFlag.RESPONSE,
                        h.message_id)
        reply = encode_message(hdr, [notify(NotifyType.COOKIE, expected)])
        self._queue_stateless(((NON_ESP_MARKER if marker else b"") + reply, tuple(addr)))
        self.cookies_sent += 1
        return False

    @staticmethod
    def _is_new_init(raw: bytes) -> bool:
        return len(raw) >= 28 and raw[18] == ExchangeType.IKE_SA_INIT and \
            raw[8:16] == bytes(8) and not raw[19] & HeaderFlag.RESPONSE

    def _collect(self, session: IkeV2Session) -> None:
        self._dirty.pop(id(session), None)
        self._track(session)
        self._schedule(session)
        while (event := session.next_event()) is not None:
            self._events.append((session, event))
            if isinstance(event, IkeSaRekeyed):     # the new IKE SA's SPIs (§2.18)
                self._by_spi[event.spi_i] = session
                for ike in session.old_ike:         # a redundant one of a collision too
                    self._by_spi.setdefault(ike.spi_i, session)
            if isinstance(event, IkeSaUp) and session.peer_initial_contact:
                self._initial_contact(session)

    def _initial_contact(self, fresh: IkeV2Session) -> None:
        """RFC 7296 §2.4: INITIAL_CONTACT says the peer lost its state; our other IKE SAs
        with the same authenticated identity are dropped without notification."""
        for s in self.sessions:
            if s is not fresh and s.state == IkeSaState.ESTABLISHED and s.peer_id == fresh.peer_id:
                s.drop("replaced by INITIAL_CONTACT")
                self._collect(s)

    def prune(self) -> None:
        """Forget closed sessions and responders that only answered statelessly (§2.6), and
        SPIs of IKE SAs that are gone (rekeyed away and deleted, §2.18)."""
        keep = [s for s in self.sessions if s.state != IkeSaState.CLOSED and not (
            s.state == IkeSaState.CREATED and not s.ike.initiator)]
        kept = {id(s) for s in keep}
        for g in [g for g in self._half_open if g not in kept]:
            del self._half_open[g]
        for g in [g for g in self._dirty if g not in kept]:
            del self._dirty[g]
        if len(kept) != len(self.sessions):
            for g in [g for g in self._when if g not in kept]:
                del self._when[g]
        self.sessions = keep
        self._by_spi = {ike.spi_i: s for s in keep for ike in (s.ike, *s.old_ike)
                        if ike.spi_i != bytes(8)}

    def stateless_to_send(self) -> list[tuple[bytes, Addr]]:
        """The stateless answers (COOKIE, INVALID_KE_PAYLOAD) waiting to be sent."""
        out, self._stateless = self._stateless, []
        return out

    # ------------------------------------------------------------------ aioquic-style surface
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out = self.stateless_to_send()
        for s in self.sessions:
            out += s.datagrams_to_send(now)
            self._collect(s)
        self.prune()
        return out

    def get_timer(self) -> Optional[float]:
        for s in list(self._dirty.values()):
            self._schedule(s)
        heap = self._heap
        while heap:
            t, _, s = heap[0]
            if self._when.get(id(s)) == t and s.state != IkeSaState.CLOSED:
                return t
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> None:
        for s in list(self._dirty.values()):
            self._schedule(s)
        heap, due = self._heap, []
        while heap and heap[0][0] <= now:
            t, _, s = heapq.heappop(heap)
            if self._when.get(id(s)) == t:
                self._when[id(s)] = None
                due.append(s)
        for s in due:
            t = s.get_timer()
            if t is not None and t <= now:
                s.handle_timer(now)
            self._collect(s)

    def next_event(self) -> Optional[tuple[IkeV2Session, IkeEvent]]:
        for s in list(self._dirty.values()):   # only sessions that queued events
            self._collect(s)
        return self._events.popleft() if self._events else None

    def keepalive_targets(self) -> list[Addr]:
        """Peers to send RFC 3948 §2.3 NAT keepalives to (we are behind a NAT)."""
        return [s.remote_addr for s in self.sessions
                if s.local_nat and s.natt and s.state == IkeSaState.ESTABLISHED]

