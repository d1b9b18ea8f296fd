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
"""
from __future__ import annotations

import ipaddress
from collections import deque
from typing import Callable, Optional

from ..constants import NON_ESP_MARKER
from ..events import IkeEvent, IkeSaUp
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
        self.sessions: list[IkeV1Session] = []
        self._by_cky: dict[bytes, IkeV1Session] = {}
        self._peers: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                IkeV1Config]] = []
        self._dirty: dict[int, IkeV1Session] = {}
        #: responder sessions still in Phase 1, by id
        self._half_open: dict[int, IkeV1Session] = {}
        self._events: deque[tuple[IkeV1Session, IkeEvent]] = deque()
        #: datagrams dropped: no session and not a first message / no configuration / limits
        self.drops: dict[str, int] = {}

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
        s.send_initial_contact = not any(
            o.remote_addr[0] == remote_addr[0] and o.state != "closed" for o in self.sessions)
        self._add(s)
        s.connect(now)
        return s

    def _add(self, s: IkeV1Session) -> None:
        s.listener = self._mark
        self.sessions.append(s)
        if s.sa.cky_i != bytes(8):
            self._by_cky[s.sa.cky_i] = s

    def _mark(self, s: IkeV1Session) -> None:
        self._dirty[id(s)] = s

    def _count(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    @property
    def half_open(self) -> int:
        """Responder sessions whose Phase 1 has not completed."""
        return len(self._half_open)

    def _track(self, s: IkeV1Session) -> None:
        if not s.sa.initiator and s.state in ("created", "phase1"):
            self._half_open[id(s)] = s
        else:
            self._half_open.pop(id(s), None)

    def find(self, data: bytes) -> Optional[IkeV1Session]:
        if len(data) < HEADER_LEN:
            return None
        s = self._by_cky.get(data[:8])
        return s if s is not None and s.state != "closed" else None

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
            if self.half_open >= self.max_half_open or len(self.sessions) >= self.max_sessions:
                self._count("limit")
                return
            session = IkeV1Session(cfg, initiator=False, local_addr=self.local_addr,
                                   remote_addr=addr, now=now,
                                   natt_local_port=self.natt_local_port)
            self._add(session)
            self._by_cky[raw[:8]] = session
        session.receive_datagram(data, addr, now)
        self._collect(session)

    def _collect(self, session: IkeV1Session) -> None:
        self._dirty.pop(id(session), None)
        self._track(session)
        while (event := session.next_event()) is not None:
            self._events.append((session, event))
            if isinstance(event, IkeSaUp) and session.peer_initial_contact:
                self._initial_contact(session)

    def _initial_contact(self, fresh: IkeV1Session) -> None:
        for s in self.sessions:
            if s is not fresh and s.state == "established" and s.peer_id == fresh.peer_id:
                s.drop("replaced by INITIAL-CONTACT")
                self._collect(s)

    def _prune(self) -> None:
        keep = [s for s in self.sessions if s.state != "closed" and not (
            s.state == "created" and not s.sa.initiator)]
        if len(keep) != len(self.sessions):
            gone = {id(s) for s in self.sessions} - {id(s) for s in keep}
            self._by_cky = {k: s for k, s in self._by_cky.items() if id(s) not in gone}
            for g in gone:
                self._half_open.pop(g, None)
            self.sessions = keep

    # ------------------------------------------------------------------ aioquic-style surface
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out: list[tuple[bytes, Addr]] = []
        for s in self.sessions:
            out += s.datagrams_to_send(now)
            self._collect(s)
        self._prune()
        return out

    def get_timer(self) -> Optional[float]:
        times = [t for t in (s.get_timer() for s in self.sessions) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for s in list(self.sessions):
            t = s.get_timer()
            if t is not None and t <= now:
                s.handle_timer(now)
                self._collect(s)

    def next_event(self) -> Optional[tuple[IkeV1Session, IkeEvent]]:
        for s in list(self._dirty.values()):
            self._collect(s)
        return self._events.popleft() if self._events else None

    def keepalive_targets(self) -> list[Addr]:
        """Peers to send RFC 3948 §2.3 NAT keepalives to (we are behind a NAT)."""
        return [s.remote_addr for s in self.sessions
                if s.local_nat and s.natt and s.state == "established"]

    def counters(self) -> dict[str, int]:
        return {"sessions": len(self.sessions), "half_open": self.half_open, **self.drops}
