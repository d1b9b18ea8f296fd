"""`IkeV1Session`: one ISAKMP SA (RFC 2408/2409) with its IPsec SAs, sans-I/O.

The same surface as `IkeV2Session`: driven only by `receive_datagram(data, addr, now)`,
`handle_timer(now)` and API calls (`connect`, `create_child`, `rekey_child`, `delete_child`,
`close`, `send_dpd`); it produces `datagrams_to_send(now)` and `next_event()`, with the same
events (`IkeSaUp` with `version=1` and the exchange mode, `ChildSaUp`, `ChildSaRekeyed`,
`ChildSaDown`, `IkeSaDown`). `ike.spi_i`/`ike.spi_r` are the cookies.

Datagrams to and from the NAT-T port carry the non-ESP marker (RFC 3948 §2.2), so a datagram
starting with four zero bytes leaves through the NAT-T socket, any other through port 500.

Nothing a peer sends raises out of the session: a malformed, unauthenticated or unexpected
message is dropped and counted (`drops`, by reason; the last few errors in `errors`); an
authenticated but unacceptable one is answered with a notification (RFC 2408 §3.14) and fails
only its exchange, except in Phase 1, where it ends the ISAKMP SA. Every per-session collection
is bounded: Quick Modes in progress (`MAX_QUICK_MODES`), finished exchanges kept for
retransmissions (`MAX_DONE`), IPsec SAs (`IkeV1Config.max_children`), fragments
(`fragments.MAX_FRAGMENTS`), recent errors (`MAX_ERRORS`).
"""
from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from typing import Callable, Optional

from ..auth import Identity
from ..constants import IKE_PORT, NON_ESP_MARKER
from ..errors import IkeError, LocalIkeError, RemoteIkeError
from ..events import ChildSaDown, IkeEvent, IkeSaDown, IkeSaRekeyed, IkeSaUp
from ..states import ChildSaState, IkeV1SaState, transition
from ..v2.natt import new_ike_spi
from .child import ChildSa
from .config import IkeV1Config
from .constants import ExchangeType, PayloadType
from .exchange import Exchange
from .fragments import Reassembly, split
from .isakmp import (FragmentPayload, IsakmpHeader, IsakmpMessage, Payload, decode, encode)
from .keymat import Phase1Keys, phase2_iv
from .phase1 import Phase1Exchange
from .protection import IvChain, MessageCipher
from .proposals import Phase1Suite

Addr = tuple  # (host, port)

#: Quick Modes we answer at once; further first messages are dropped (and counted).
MAX_QUICK_MODES = 16
#: finished exchanges kept to answer a retransmission of the peer's last message.
MAX_DONE = 8
#: how long a finished exchange is kept for that.
DONE_TTL = 60.0
#: recent errors kept for inspection (counters in `drops` keep the totals).
MAX_ERRORS = 32
#: the order in which ISAKMP SAs completed Phase 1 (INITIAL-CONTACT replaces only older ones)
_PHASE1_ORDER = itertools.count(1)


class IsakmpSa:
    """Cookies, keys and the Phase 1 IV chain of one ISAKMP SA (`ike` in the session, named
    like IKEv2's IKE SA state so shows and the gateway can read both)."""

    def __init__(self, cky_i: bytes, cky_r: bytes, initiator: bool) -> None:
        self.cky_i = cky_i
        self.cky_r = cky_r
        #: we are the initiator of Phase 1.
        self.initiator = initiator
        self.suite: Optional[Phase1Suite] = None
        self.keys: Optional[Phase1Keys] = None
        self.cipher: Optional[MessageCipher] = None
        #: the Phase 1 IV chain; after Phase 1 its IV is the last Phase 1 CBC block, the
        #: seed of every Quick Mode / Informational IV (RFC 2409 Appendix B).
        self.chain = IvChain(b"")
        self.nonce_i = b""
        self.nonce_r = b""
        self.sai_b = b""
        self.g_xi = b""
        self.g_xr = b""
        self.g_xy = b""

    # IKEv2-compatible names (`IkeSaState.spi_i` / `spi_r`)
    @property
    def spi_i(self) -> bytes:
        return self.cky_i

    @property
    def spi_r(self) -> bytes:
        return self.cky_r

    @property
    def hash_name(self) -> str:
        assert self.suite is not None
        return self.suite.hash_name


class IkeV1Session:
    """One IKEv1 ISAKMP SA (initiator or responder) and its IPsec SA pairs."""

    version = 1
    #: IKEv1 has no post-quantum preshared key (RFC 8784 is IKEv2 only)
    ppk_used = False

    def __init__(self, config: IkeV1Config, *, initiator: bool, local_addr: Addr,
                 remote_addr: Addr, now: float = 0.0,
                 natt_local_port: Optional[int] = None) -> None:
        self.config = config
        self.local_addr = tuple(local_addr)
        self.remote_addr = tuple(remote_addr)
        self.natt_local_port = natt_local_port or config.natt_port
        self.now = now
        self.started = now
        self.random = config.random
        self.sa = IsakmpSa(new_ike_spi(self.random) if initiator else bytes(8), bytes(8),
                           initiator)
        #: an `IkeV1SaState` (ike/states.py); changed only by `transition`
        self.state = IkeV1SaState.CREATED
        self.phase1: Optional[Phase1Exchange] = None
        #: Quick Modes in progress, by message ID.
        self.exchanges: dict[int, Exchange] = {}
        #: finished exchanges, for retransmissions of the peer's last message.
        self.done: OrderedDict[int, Exchange] = OrderedDict()
        self.children: dict[int, ChildSa] = {}
        self.natt = False
        self.local_nat = False
        self.remote_nat = False
        #: the peer announced RFC 3947 NAT-T / RFC 3706 DPD / IKE fragmentation.
        self.peer_natt = False
        self.peer_dpd = False
        self.peer_frag = False
        self.peer_id: Optional[Identity] = None
        #: the peer sent INITIAL-CONTACT: its older ISAKMP SAs with us are stale.
        self.peer_initial_contact = False
        #: send INITIAL-CONTACT with our Phase 1 (only when no other SA with the peer exists).
        self.send_initial_contact = True
        self.fragments = Reassembly()
        self._frag_id = 0
        self.last_rx = now
        #: the data plane's last inbound / outbound IPsec traffic (`note_traffic`)
        self.traffic_in_at = now
        self.traffic_out_at = now
        self.established_at: Optional[float] = None
        #: when Phase 1 completed, in the order of all sessions (0: not yet)
        self.phase1_seq = 0
        #: the ISAKMP SA nears its lifetime: a new Phase 1 should replace it (`reauth_at`)
        self.reauth_due = False
        #: the ISAKMP SA this one re-authenticates (it adopts that one's IPsec SAs)
        self.replaces: Optional["IkeV1Session"] = None
        #: when a re-authenticated ISAKMP SA is deleted (`retire` with a delay), and why
        self.retire_at: Optional[float] = None
        self.retire_reason = ""
        #: finds the newer ISAKMP SA with the same peer that takes over our IPsec SAs when
        #: the peer deletes us after re-authenticating (set by the manager)
        self.successor: Optional[Callable[[], Optional["IkeV1Session"]]] = None
        #: DPD (RFC 3706): next probe time, sequence number, probes in a row unanswered.
        self.dpd_next: Optional[float] = None
        self.dpd_seq = int.from_bytes(self.random(4), "big") & 0x7FFFFFFF
        self.dpd_outstanding = 0
        #: Quick Modes whose SA waits for the responder's CONNECTED (commit bit), by our SPI.
        self.commit_waits: dict[int, tuple[float, Callable[[], None]]] = {}
        self.errors: deque[IkeError] = deque(maxlen=MAX_ERRORS)
        self.drops: dict[str, int] = {}
        self._events: deque[IkeEvent] = deque()
        self._out: list[tuple[bytes, Addr]] = []
        self._pending_children: list = []
        #: the message being processed (what a message sent now answers)
        self._processing: Optional[bytes] = None
        #: called with the session after anything that may queue datagrams or events or move
        #: its timer (so a manager only visits the sessions that changed).
        self.listener: Optional[Callable[["IkeV1Session"], None]] = None

    # ------------------------------------------------------------------ IKEv2-like names
    @property
    def ike(self) -> IsakmpSa:
        return self.sa

    @property
    def exchange_mode(self) -> str:
        """"Main" or "Aggressive"."""
        return self.config.exchange_mode if self.phase1 is None else self.phase1.mode_name

    @property
    def frag_ok(self) -> bool:
        return self.config.fragmentation and self.peer_frag

    @property
    def nat_detected(self) -> bool:
        return self.local_nat or self.remote_nat

    @property
    def nat_local_addr(self) -> Addr:
        """Our address as the peer should see it: the NAT-T port once we use it."""
        return (self.local_addr[0], self.natt_local_port) if self.natt else self.local_addr

    # ------------------------------------------------------------------ public API
    def connect(self, now: float, first_child: bool = True) -> None:
        """Start Phase 1 (Main or Aggressive Mode as configured), then a Quick Mode for the
        first child configuration (unless `first_child` is False: a re-authentication, whose
        IPsec SAs are adopted from the ISAKMP SA it replaces)."""
        from .aggressive_mode import AggressiveMode
        from .main_mode import MainMode
        if not self.sa.initiator or self.state != IkeV1SaState.CREATED:
            raise LocalIkeError("connect() is for a fresh initiator session")
        self.now = now
        transition(self, IkeV1SaState.PHASE1)
        if self.remote_addr[1] == self.config.natt_port != IKE_PORT:
            self.natt = True     # the peer listens on its NAT-T port: marker from the start
        if self.config.children and first_child:
            self._pending_children.append(self.config.children[0])
        self.phase1 = (AggressiveMode if self.config.mode == "aggressive" else MainMode)(
            self, initiator=True)
        self._guard(self.phase1.start)    # type: ignore[attr-defined]

    def create_child(self, child_config, now: float) -> None:
        """Start a Quick Mode for another IPsec SA pair (RFC 2409 §5.5)."""
        self.now = now
        if self.state == IkeV1SaState.ESTABLISHED:
            self._guard(lambda: self._start_quick_mode(child_config))
        elif self.state in (IkeV1SaState.CREATED, IkeV1SaState.PHASE1):
            self._pending_children.append(child_config)

    def rekey_child(self, spi_in: int, now: float) -> None:
        """Replace the SA pair with inbound SPI `spi_in` by a new Quick Mode with the same
        identities; the old pair is deleted once the new one is up (make-before-break)."""
        self.now = now
        child = self.children.get(spi_in)
        if child is None or child.state != ChildSaState.INSTALLED or \
                self.state != IkeV1SaState.ESTABLISHED:
            return
        transition(child, ChildSaState.REKEYING)
        self._guard(lambda: self._start_quick_mode(child.config, rekey_of=child))

    def rekey_child_now(self, spi_in: int, now: float) -> None:
        """Rekey an SA pair at once because its data plane asked (sequence space or volume
        used up, RFC 4303 §3.3.3, RFC 4301 §4.4.2.1): as `rekey_child`, with its timer-based
        rekey dropped so it is not started twice."""
        child = self.children.get(spi_in)
        if child is not None:
            child.rekey_at = None
        self.rekey_child(spi_in, now)

    def delete_child(self, spi_in: int, now: float, reason: str = "deleted") -> None:
        """Delete an SA pair: a Delete payload with our inbound SPI (RFC 2408 §3.15)."""
        from .informational import send_delete_children
        self.now = now
        child = self.children.pop(spi_in, None)
        if child is None:
            return

        def delete() -> None:
            self.emit(ChildSaDown(child.spi_in, child.spi_out, reason))
            if self.state == IkeV1SaState.ESTABLISHED:
                send_delete_children(self, [child])
        self._guard(delete)

    def close(self, now: float) -> None:
        """Delete every SA pair and the ISAKMP SA (RFC 2408 §3.15, §4.8)."""
        from .informational import send_delete_isakmp
        self.now = now
        if self.state == IkeV1SaState.CLOSED:
            return

        def close() -> None:
            try:
                if self.state == IkeV1SaState.ESTABLISHED:
                    send_delete_isakmp(self, list(self.children.values()))
            finally:
                self.shutdown("closed locally")
        self._guard(close)

    def has_child(self, child_name: str) -> bool:
        """An IPsec SA pair of the child configuration named `child_name` exists and is not
        going away."""
        return any(c.config.name == child_name and
                   c.state in (ChildSaState.INSTALLED, ChildSaState.REKEYING)
                   for c in self.children.values())

    def negotiating(self, child_name: str) -> bool:
        """A Quick Mode of ours for the child configuration `child_name` is queued (behind
        Phase 1) or in flight, not counting rekeys."""
        from .quick_mode import QuickMode
        if any(c.name == child_name for c in self._pending_children):
            return True
        return any(isinstance(ex, QuickMode) and ex.initiator and ex.rekey_of is None and
                   ex.cfg is not None and ex.cfg.name == child_name
                   for ex in self.exchanges.values())

    def note_traffic(self, now: float, inbound: bool = False, outbound: bool = False) -> None:
        """The data plane saw IPsec traffic from the peer (`inbound`: proof of life, RFC 3706
        §5.1 "when there is traffic from the peer there is no need for DPD") and/or sent
        some to it (`outbound`) since the last call; DPD's modes look at both."""
        if inbound:
            self.traffic_in_at = max(self.traffic_in_at, now)
        if outbound:
            self.traffic_out_at = max(self.traffic_out_at, now)

    @property
    def last_heard(self) -> float:
        """The last time the peer proved alive: an ISAKMP message or inbound IPsec traffic."""
        return max(self.last_rx, self.traffic_in_at)

    def send_dpd(self, now: float) -> None:
        """Send an R-U-THERE now (RFC 3706 §5)."""
        from .informational import send_dpd
        self.now = now
        if self.state == IkeV1SaState.ESTABLISHED:
            self._guard(lambda: send_dpd(self))

    def next_event(self) -> Optional[IkeEvent]:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        self.now = now
        out, self._out = self._out, []
        return out

    def get_timer(self) -> Optional[float]:
        """The next time `handle_timer` must be called, or None."""
        if self.state == IkeV1SaState.CLOSED:
            return None
        times = [ex.deadline for ex in self._active() if ex.deadline is not None]
        if self.state in (IkeV1SaState.CREATED, IkeV1SaState.PHASE1):
            times.append(self.started + self.config.half_open_timeout)
        elif self.state == IkeV1SaState.ESTABLISHED:
            for c in self.children.values():
                if c.state == ChildSaState.INSTALLED and c.rekey_at is not None:
                    times.append(c.rekey_at)
                if c.expire_at is not None:
                    times.append(c.expire_at)
            if self.dpd_next is not None:
                times.append(self.dpd_next)
            times += [t for t, _ in self.commit_waits.values()]
            if self.retire_at is not None:
                times.append(self.retire_at)
            if self.established_at is not None and self.sa.suite is not None:
                times.append(self.established_at + self.sa.suite.lifetime_seconds)
                if self.sa.initiator and not self.reauth_due:
                    times.append(self.reauth_at)
        return min(times) if times else None

    @property
    def reauth_at(self) -> float:
        """When the initiator starts a new Phase 1 to replace this ISAKMP SA: at 90 % of
        its lifetime (IKEv1 has no rekey of Phase 1; a new one adopts the IPsec SAs)."""
        assert self.established_at is not None and self.sa.suite is not None
        return self.established_at + 0.9 * self.sa.suite.lifetime_seconds

    def handle_timer(self, now: float) -> None:
        """Retransmit or give up, half-open timeout, IPsec SA rekey and expiry, DPD, the
        ISAKMP SA lifetime."""
        self.now = now
        if self.state != IkeV1SaState.CLOSED:
            self._guard(lambda: self._timers(now))

    def _timers(self, now: float) -> None:
        from .informational import dpd_tick
        for ex in list(self._active()):
            if ex.deadline is None or ex.deadline > now:
                continue
            if ex.tries >= self.config.retransmit_tries:
                ex.deadline = None
                ex.on_timeout()
                if self.state == IkeV1SaState.CLOSED:
                    return
                continue
            ex.tries += 1
            ex.deadline = now + self.config.retransmit_timeout * \
                self.config.retransmit_base ** ex.tries
            self._out += [(d, self.remote_addr) for d in ex.out]
        if self.state in (IkeV1SaState.CREATED, IkeV1SaState.PHASE1) and \
                self.started + self.config.half_open_timeout <= now:
            last = self.errors[-1] if self.errors else None
            self.shutdown("half-open timeout", last)
            return
        if self.state != IkeV1SaState.ESTABLISHED:
            return
        for spi, (deadline, complete) in list(self.commit_waits.items()):
            if deadline <= now:
                del self.commit_waits[spi]
                self.record(RemoteIkeError("no CONNECTED notification after the commit bit"),
                            "commit-timeout")
                complete()
        for child in list(self.children.values()):
            if child.expire_at is not None and child.expire_at <= now:
                self.delete_child(child.spi_in, now, "expired")
            elif child.state == ChildSaState.INSTALLED and child.rekey_at is not None and \
                    child.rekey_at <= now:
                child.rekey_at = None
                self.rekey_child(child.spi_in, now)
        if self.retire_at is not None and self.retire_at <= now:
            self._retire_now(self.retire_reason)
            return
        dpd_tick(self, now)
        if self.state != IkeV1SaState.ESTABLISHED or self.established_at is None or \
                self.sa.suite is None:
            return
        if self.established_at + self.sa.suite.lifetime_seconds <= now:
            self.hand_over()         # hard lifetime: to a newer ISAKMP SA, if there is one
            self.close(now)
        elif self.sa.initiator and not self.reauth_due and self.reauth_at <= now:
            self.reauth_due = True   # the manager starts the replacement Phase 1

    # ------------------------------------------------------------------ receiving
    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one UDP payload (with the non-ESP marker if it came in on port 4500)."""
        self.now = now
        if data == b"\xff":
            return      # NAT-T keepalive (RFC 3948 §2.3)
        if self.state == IkeV1SaState.CLOSED:
            self.count("closed")
            return
        via_natt = data[:4] == NON_ESP_MARKER
        if via_natt:
            data = data[4:]
        self._guard(lambda: self._receive_raw(data, tuple(addr), via_natt))

    def _receive_raw(self, data: bytes, addr: Addr, via_natt: bool) -> None:
        msg = decode(data)
        if msg.header.next_payload == PayloadType.FRAGMENT:
            if not self._owns(msg.header):
                self.count("foreign-cookie")
                return
            frag = msg.first(FragmentPayload)
            if frag is None:
                self.count("malformed")
                return
            whole = self.fragments.add(frag)
            if whole is None:
                return
            msg = decode(whole)
            if msg.header.next_payload == PayloadType.FRAGMENT:
                self.count("malformed")
                return
        self._receive(msg, addr, via_natt)

    def _owns(self, h: IsakmpHeader) -> bool:
        if h.cky_i != self.sa.cky_i:
            return False
        return h.cky_r == self.sa.cky_r or self.sa.cky_r == bytes(8) or h.cky_r == bytes(8)

    def _receive(self, msg: IsakmpMessage, addr: Addr, via_natt: bool) -> None:
        from .informational import receive_informational
        from .quick_mode import QuickMode
        h = msg.header
        if not self._accepts(h):
            self.count("foreign-cookie")
            return
        if h.exchange in (ExchangeType.MAIN, ExchangeType.AGGRESSIVE):
            ex = self._phase1_for(h)
            if ex is None:
                return
        elif h.exchange == ExchangeType.QUICK:
            ex = self.exchanges.get(h.message_id) or self.done.get(h.message_id)
            if ex is None:
                if self.state != IkeV1SaState.ESTABLISHED or h.message_id == 0:
                    self.count("unexpected")
                    return
                if len(self.exchanges) >= MAX_QUICK_MODES:
                    self.count("quick-mode-limit")
                    return
                ex = QuickMode(self, h.message_id, initiator=False)
        elif h.exchange == ExchangeType.INFORMATIONAL:
            receive_informational(self, msg, addr, via_natt)
            return
        else:
            self.count("unsupported-exchange")
            return
        if ex.last_in == msg.raw:
            # A retransmission of the message we last processed: our answer to it got lost
            # (only an answer is resent, never a message nobody answers, so two ends cannot
            # ping-pong retransmissions).
            if ex.out and ex.out_for == msg.raw:
                self._out += [(d, self.remote_addr) for d in ex.out]
            return
        if ex.done:
            self.count("late")
            return
        self._processing = msg.raw
        try:
            ex.handle(msg, addr, via_natt)   # type: ignore[call-arg]
        finally:
            self._processing = None
        ex.last_in = msg.raw

    def _accepts(self, h: IsakmpHeader) -> bool:
        sa = self.sa
        if sa.initiator:
            if h.cky_i != sa.cky_i:
                return False
            if sa.cky_r == bytes(8):
                return h.cky_r != bytes(8) and h.message_id == 0 or \
                    h.exchange == ExchangeType.INFORMATIONAL
            return h.cky_r == sa.cky_r
        if sa.cky_i == bytes(8):
            return True           # first message of a fresh responder
        return h.cky_i == sa.cky_i and (h.cky_r == sa.cky_r or (
            h.cky_r == bytes(8) and h.message_id == 0))

    def _phase1_for(self, h: IsakmpHeader) -> Optional[Exchange]:
        from .aggressive_mode import AggressiveMode
        from .main_mode import MainMode
        if self.phase1 is not None:
            if h.exchange != self.phase1.exchange_type or h.message_id != 0:
                self.count("unexpected")
                return None
            return self.phase1
        # A fresh responder: Main or Aggressive Mode as configured (no downgrade from Main
        # Mode's identity protection to Aggressive Mode, RFC 2409 §5.4).
        want = ExchangeType.AGGRESSIVE if self.config.mode == "aggressive" else \
            ExchangeType.MAIN
        if h.exchange != want or h.message_id != 0 or h.encrypted or self.sa.initiator:
            self.count("unexpected")
            return None
        self.sa.cky_i = h.cky_i
        self.sa.cky_r = new_ike_spi(self.random)
        transition(self, IkeV1SaState.PHASE1)
        self.phase1 = (AggressiveMode if want == ExchangeType.AGGRESSIVE else MainMode)(
            self, initiator=False)
        return self.phase1

    def note_path(self, via_natt: bool, addr: Addr) -> None:
        """Once on the NAT-T port, stay there; follow the peer's NAT mapping (RFC 3947 §4)."""
        self.last_rx = self.now
        if via_natt and not self.natt:
            self.natt = True
            self.remote_addr = tuple(addr)
        elif self.natt and self.remote_nat and tuple(addr) != self.remote_addr:
            self.remote_addr = tuple(addr)

    # ------------------------------------------------------------------ sending
    def message(self, ex: Exchange, exchange_type: int, payloads: list[Payload],
                encrypt: bool, flags: int = 0) -> bytes:
        """Encode one message of `ex` (encrypted with its IV chain when `encrypt`)."""
        sa = self.sa
        hdr = IsakmpHeader(sa.cky_i, sa.cky_r, 0, exchange_type, flags, ex.mid)
        if encrypt:
            assert sa.cipher is not None
            return sa.cipher.seal(hdr, payloads, ex.chain)
        return encode(hdr, payloads)

    def send(self, ex: Exchange, message: bytes, retransmit: bool) -> None:
        """Queue our message of `ex` (in fragments if the peer takes them and it is large);
        with `retransmit`, resend it on a timer until the peer answers."""
        wires = self.wrap(message, ex.exchange_type)
        ex.out = wires
        ex.out_for = self._processing
        ex.tries = 0
        ex.deadline = self.now + self.config.retransmit_timeout if retransmit else None
        self._out += [(w, self.remote_addr) for w in wires]

    def send_once(self, message: bytes) -> None:
        """Queue a message nobody answers (Informational, RFC 2409 §5.7)."""
        self._out += [(w, self.remote_addr) for w in self.wrap(message,
                                                                ExchangeType.INFORMATIONAL)]

    def wrap(self, message: bytes, exchange_type: int) -> list[bytes]:
        size = self.config.fragment_size
        if self.frag_ok and len(message) > size:
            self._frag_id = (self._frag_id % 0xFFFF) + 1
            base = ExchangeType.AGGRESSIVE if self.exchange_mode == "Aggressive" \
                else ExchangeType.MAIN
            pieces = split(message, base, self._frag_id, size)
        else:
            pieces = [message]
        return [NON_ESP_MARKER + p if self.natt else p for p in pieces]

    # ------------------------------------------------------------------ helpers
    def new_mid(self) -> int:
        while True:
            mid = int.from_bytes(self.random(4), "big")
            if mid and mid not in self.exchanges and mid not in self.done:
                return mid

    def phase2_chain(self, mid: int) -> IvChain:
        """The IV of a new Quick Mode / Informational exchange (RFC 2409 Appendix B)."""
        sa = self.sa
        assert sa.suite is not None
        return IvChain(phase2_iv(sa.hash_name, sa.chain.iv, mid, sa.suite.block))

    def new_child_spi(self) -> int:
        while True:
            spi = int.from_bytes(self.random(4), "big")
            if spi >= 256 and spi not in self.children and \
                    all(e.pair_spis()[0] != spi for e in self.exchanges.values()):
                return spi

    def child_by_out(self, spi_out: int) -> Optional[ChildSa]:
        return next((c for c in self.children.values() if c.spi_out == spi_out), None)

    def natt_ports(self) -> tuple[int, int]:
        """(local, remote) UDP ports for ESP in UDP (RFC 3948)."""
        return self.natt_local_port, int(self.remote_addr[1]) if self.natt else \
            self.config.natt_port

    def emit(self, event: IkeEvent) -> None:
        self._events.append(event)

    def count(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def record(self, exc: IkeError, reason: str) -> None:
        """Count a failure and keep it in the bounded ring of recent errors, without its
        traceback (which would pin the frames, messages and exchanges it went through)."""
        self.errors.append(exc.with_traceback(None))
        self.count(reason)

    def finished(self, ex: Exchange) -> None:
        """Move a completed Quick Mode to the bounded cache of finished exchanges."""
        self.exchanges.pop(ex.mid, None)
        self.done[ex.mid] = ex
        while len(self.done) > MAX_DONE:
            self.done.popitem(last=False)
        for mid, old in list(self.done.items()):
            if old.finished_at is not None and old.finished_at + DONE_TTL < self.now:
                del self.done[mid]

    def forget(self, ex: Exchange) -> None:
        self.exchanges.pop(ex.mid, None)

    def _active(self) -> list[Exchange]:
        out = list(self.exchanges.values())
        if self.phase1 is not None and not self.phase1.done:
            out.append(self.phase1)
        return out

    def _guard(self, fn: Callable[[], object]) -> None:
        """Run one step; a peer's error is counted, never raised (our own configuration
        errors during Phase 1 end the session). Afterwards the listener hears that the
        session may have datagrams, events or a new timer."""
        try:
            fn()
        except RemoteIkeError as exc:
            self.record(exc, "malformed" if exc.notify_hint in (16, 1, 15) else "rejected")
        except LocalIkeError as exc:
            self.record(exc, "local-error")
            if self.state in (IkeV1SaState.CREATED, IkeV1SaState.PHASE1):
                self.shutdown("establishment failed", exc)
        except Exception as exc:  # noqa: BLE001 - never raise out of the session
            self.record(LocalIkeError(f"internal error: {type(exc).__name__}: {exc}"),
                        "internal-error")
        finally:
            if self.listener is not None:
                self.listener(self)

    # ------------------------------------------------------------------ Phase 1 outcome
    def on_phase1_done(self, event: IkeSaUp) -> None:
        transition(self, IkeV1SaState.ESTABLISHED)
        self.established_at = self.now
        self.phase1_seq = next(_PHASE1_ORDER)
        if self.config.dpd_interval:
            self.dpd_next = self.now + self.config.dpd_interval
        self.emit(event)
        pending, self._pending_children = self._pending_children, []
        if self.sa.initiator:
            for cfg in pending:
                self._start_quick_mode(cfg)

    def phase1_failed(self, error: Exception) -> None:
        from .informational import send_notify
        hint = error.notify_hint if isinstance(error, IkeError) else None
        if hint:
            try:
                send_notify(self, hint)
            except IkeError:
                pass
        self.shutdown("establishment failed", error if isinstance(error, IkeError) else
                      LocalIkeError(str(error)))

    def _start_quick_mode(self, cfg, rekey_of: Optional[ChildSa] = None) -> None:
        from .quick_mode import QuickMode
        if len(self.children) >= self.config.max_children:
            if rekey_of is not None:
                transition(rekey_of, ChildSaState.INSTALLED)
            self.record(LocalIkeError("IPsec SA limit of the ISAKMP SA reached"),
                        "child-limit")
            return
        qm = QuickMode(self, self.new_mid(), initiator=True, config=cfg, rekey_of=rekey_of)
        self.exchanges[qm.mid] = qm
        try:
            qm.start()
        except IkeError:
            self.exchanges.pop(qm.mid, None)
            if rekey_of is not None:
                transition(rekey_of, ChildSaState.INSTALLED)
            raise

    def adopt_children(self, old: "IkeV1Session") -> list[tuple[int, int]]:
        """Take over the IPsec SAs of an older ISAKMP SA with the same peer (a
        re-authentication): IKEv1 IPsec SAs do not depend on the ISAKMP SA that made them,
        and their rekeys and Deletes now run here (`IkeSaRekeyed` says so). Returns the
        (spi_in, spi_out) moved."""
        moved = []
        for spi, child in list(old.children.items()):
            if spi not in self.children and child.state != ChildSaState.DELETING:
                self.children[spi] = child
                moved.append((child.spi_in, child.spi_out))
            del old.children[spi]
        self.emit(IkeSaRekeyed(old.sa.cky_i, old.sa.cky_r, self.sa.cky_i, self.sa.cky_r))
        self._guard(lambda: None)            # the manager: events and new timers
        return moved

    def hand_over(self) -> None:
        """Before this ISAKMP SA goes (deleted by the peer, or expired): a newer one with the
        same peer adopts our IPsec SAs, so they do not go down with us."""
        newer = self.successor() if self.successor is not None else None
        if newer is not None and self.children:
            newer.adopt_children(self)

    def retire(self, now: float, reason: str, delay: float = 0.0) -> None:
        """Delete only the ISAKMP SA (its IPsec SAs were adopted by a newer one), now or
        `delay` seconds from now (RFC 2408 §4.8 Delete)."""
        self.now = now
        if self.state == IkeV1SaState.CLOSED:
            return
        if delay > 0:
            self.retire_at, self.retire_reason = now + delay, reason
            self._guard(lambda: None)        # the manager: the new timer
            return
        self._guard(lambda: self._retire_now(reason))

    def _retire_now(self, reason: str) -> None:
        from .informational import send_delete_isakmp
        self.retire_at = None
        self.hand_over()            # pairs the peer made here while our Delete waited
        try:
            if self.state == IkeV1SaState.ESTABLISHED:
                send_delete_isakmp(self, list(self.children.values()))
        finally:
            self.shutdown(reason)

    def drop(self, reason: str) -> None:
        """Forget the ISAKMP SA and its IPsec SAs without telling the peer."""
        self._guard(lambda: self.shutdown(reason))

    def shutdown(self, reason: str, error: Optional[IkeError] = None) -> None:
        if self.state == IkeV1SaState.CLOSED:
            return
        transition(self, IkeV1SaState.CLOSED)
        gone = [(c.spi_in, c.spi_out) for c in self.children.values()]
        self.children.clear()
        self.exchanges.clear()
        self.commit_waits.clear()
        if self.phase1 is not None:
            self.phase1.deadline = None
        self.emit(IkeSaDown(reason, error, gone))
