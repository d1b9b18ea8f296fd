"""`IkeV2Session`: one IKEv2 SA with its child SAs, sans-I/O (aioquic / h11 style).

The session is driven only by `receive_datagram(data, addr, now)`, `handle_timer(now)` and API
calls (`connect`, `create_child`, `rekey_child`, `rekey_ike`, `delete_child`, `close`,
`send_dpd`); it produces `datagrams_to_send(now)` and `next_event()`. Time is always passed in.

Datagrams to and from the NAT-T port carry the 4-byte non-ESP marker (RFC 3948 §2.2): a
datagram returned by `datagrams_to_send` that starts with it must leave through the NAT-T
socket (4500), any other through the IKE socket (500). An IKE header never starts with four
zero bytes (SPIi is never zero, RFC 7296 §3.1), so the marker alone tells the socket.

Message IDs, retransmission and duplicate detection follow RFC 7296 §2.1-§2.2: we keep one
request in flight (window size 1), retransmit it with exponential back-off, and answer a
retransmitted request with the cached response.

Dead peer detection (RFC 7296 §2.4 liveness checks, timed as Junos `dead-peer-detection`
does), with `IkeConfig.dpd_interval` I, `dpd_threshold` N and `dpd_mode`:

- a probe (an empty INFORMATIONAL request) is sent when the peer has been silent for I
  seconds (no authenticated IKE message, no inbound child SA traffic reported with
  `note_traffic`): in mode "optimized" only if traffic was sent to it meanwhile, in
  "probe-idle-tunnel" also when the tunnel is idle; in "always-send" every I seconds whatever
  the traffic;
- an unanswered probe is sent again every I seconds (the same request, §2.1), and the peer is
  dead when N probes went unanswered: I x (N + 1) seconds after it fell silent. The IKE SA
  and its child SAs are then cleared (`IkeSaDown(reason="dead peer")`);
- any other request of ours on the established IKE SA is retransmitted with the usual
  back-off, but also ends as a dead peer after N x I seconds without an answer.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Optional

from ..auth import Identity
from ..config import IkeConfig
from ..constants import IKE_PORT, NON_ESP_MARKER, ExchangeType, HeaderFlag, NotifyType
from ..errors import ErrorLog, IkeError, LocalIkeError, RemoteIkeError
from ..events import IkeEvent, IkeSaDown
from ..keymat import derive_ike_keys, skeyseed
from ..message import IkeHeader, Message, decode_message, encode_message
from ..payloads import EncryptedFragmentPayload, NotifyPayload, Payload, notify
from ..protection import IntegrityCheckFailed
from ..proposals import Suite
from ..states import ChildSaState, IkeSaState as IkeState, transition
from .child import ChildSa
from .ike_sa import MAX_OLD_IKE_SAS, IkeSaKeys, PendingRequest
from .natt import new_ike_spi
from .task import StatelessReply, Task, TaskResult

Addr = tuple  # (host, port)



class IkeV2Session:
    """One IKEv2 SA (initiator or responder) and its child SAs."""

    #: the IKE major version, as `IkeV1Session.version` (show output: "IKEv2")
    version = 2

    def __init__(self, config: IkeConfig, *, initiator: bool, local_addr: Addr,
                 remote_addr: Addr, now: float = 0.0,
                 natt_local_port: Optional[int] = None) -> None:
        self.config = config
        self.local_addr = tuple(local_addr)
        self.remote_addr = tuple(remote_addr)
        self.natt_local_port = natt_local_port or config.natt_port
        self.now = now
        self.random = config.random
        spi = new_ike_spi(self.random) if initiator else bytes(8)
        self.ike = IkeSaKeys(spi, bytes(8), initiator)
        #: an `IkeState` (ike/states.py); changed only by `transition`
        self.state = IkeState.CREATED
        self.children: dict[int, ChildSa] = {}
        self.natt = False
        self.local_nat = False
        self.remote_nat = False
        self.peer_use_ppk = False
        self.frag_ok = False  #: both sides sent IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383)
        #: the IKE SA the request being answered arrived on (differs from `ike` after rekey).
        self.rx_ike: Optional[IkeSaKeys] = None
        self.ppk_used = False
        self.init_request = b""
        self.init_response = b""
        self.peer_id: Optional[Identity] = None
        #: the peer's Configuration payload in IKE_AUTH (RFC 7296 §3.15), if it sent one
        self.peer_cp: Optional[Payload] = None
        #: the peer sent INITIAL_CONTACT in IKE_AUTH (§2.4): its older IKE SAs are stale.
        self.peer_initial_contact = False
        #: send INITIAL_CONTACT in IKE_AUTH: only when no other IKE SA with the peer exists.
        self.send_initial_contact = True
        self.proposal_text = ""
        self.last_rx = now
        #: when IKE_AUTH completed; child SA traffic reported by `note_traffic` (RFC 7296
        #: §2.4: a protected packet on a child SA proves liveness as well)
        self.established_at = now
        self.traffic_in_at = float("-inf")
        self.traffic_out_at = float("-inf")
        #: when dead peer detection last looked at the traffic (and probed or not)
        self._dpd_checked = float("-inf")
        #: DPD probes sent (retransmissions included) and peers found dead, for show output
        self.dpd_probes = 0
        self.ike_rekey_at: Optional[float] = None
        self.old_ike: list[IkeSaKeys] = []   #: rekeyed-away IKE SAs still being deleted
        #: failures that did not kill the SA: counters per reason and the last few (bounded,
        #: whatever the peer or an on-path sender sends)
        self.errors = ErrorLog()
        self._queue: deque[Task] = deque()
        self._events: deque[IkeEvent] = deque()
        self._out: list[tuple[bytes, Addr]] = []
        self._after_response: list[Callable[[], None]] = []
        #: called with the session whenever it queues an event (`IkeManager` uses it to
        #: collect events from the sessions that have some, not from all of them).
        self.listener: Optional[Callable[["IkeV2Session"], None]] = None

    # ----------------------------------------------------------------- public API
    def connect(self, now: float) -> None:
        """Start IKE_SA_INIT + IKE_AUTH (+ the first child SA) as initiator (§1.2)."""
        from .tasks.ike_auth import IkeAuthTask
        from .tasks.ike_init import IkeInitTask
        if not self.ike.initiator or self.state != IkeState.CREATED:
            raise LocalIkeError("connect() is for a fresh initiator session")
        self.now = now
        transition(self, IkeState.INIT)
        if self.remote_addr[1] == self.config.natt_port != IKE_PORT:
            # §2.23: "an initiator MAY use port 4500 ... from the start": when we are told to
            # reach the peer on its NAT-T port, use it (and the non-ESP marker) right away, as
            # strongSwan does for a remote_port other than 500.
            self.natt = True
        self._queue.extend([IkeInitTask(self), IkeAuthTask(self)])
        self._kick(now)

    def create_child(self, child_config, now: float) -> None:
        """Queue a CREATE_CHILD_SA for an additional child SA (§1.3.1)."""
        from .tasks.child_create import ChildCreateTask
        self._queue.append(ChildCreateTask(self, child_config))
        self._kick(now)

    def negotiating(self, child_name: str) -> bool:
        """A child SA of the configuration named `child_name` is being created by us
        (IKE_AUTH or CREATE_CHILD_SA queued or in flight)."""
        from .tasks.child_create import ChildCreateTask
        from .tasks.ike_auth import IkeAuthTask
        for task in [*self._queue, *(p.task for p in self._all_pending())]:
            if isinstance(task, ChildCreateTask) and task.cfg.name == child_name:
                return True
            if isinstance(task, IkeAuthTask) and self.config.children and \
                    self.config.children[0].name == child_name:
                return True
        return False

    def has_child(self, child_name: str) -> bool:
        """A child SA of the configuration named `child_name` exists and is not going away."""
        return any(c.config.name == child_name and c.reported and
                   c.state in (ChildSaState.INSTALLED, ChildSaState.REKEYING)
                   for c in self.children.values())

    def rekey_child(self, spi_in: int, now: float) -> None:
        """Queue a rekey of the child SA with inbound SPI `spi_in` (§1.3.3, §2.8)."""
        from .tasks.child_rekey import ChildRekeyTask
        self._queue.append(ChildRekeyTask(self, spi_in))
        self._kick(now)

    def rekey_child_now(self, spi_in: int, now: float) -> None:
        """Rekey a child SA at once because its data plane asked (sequence space or volume
        used up, RFC 4303 §3.3.3, RFC 4301 §4.4.2.1), and drop its timer-based rekey so the
        rekey is not started twice (§2.8). The one way for code outside `ike` to do this."""
        child = self.children.get(spi_in)
        if child is not None:
            child.rekey_at = None
        self.rekey_child(spi_in, now)

    def rekey_ike(self, now: float) -> None:
        """Queue a rekey of the IKE SA (§1.3.2, §2.18)."""
        from .tasks.ike_rekey import IkeRekeyTask
        self._queue.append(IkeRekeyTask(self))
        self._kick(now)

    def delete_child(self, spi_in: int, now: float) -> None:
        """Queue an INFORMATIONAL Delete of a child SA (§1.4.1)."""
        from .tasks.delete import DeleteChildTask
        self._queue.append(DeleteChildTask(self, spi_in))
        self._kick(now)

    def close(self, now: float) -> None:
        """Delete the IKE SA and with it all child SAs (§1.4.1)."""
        from .tasks.delete import DeleteIkeTask
        if self.state == IkeState.CLOSED:
            return
        if self.state != IkeState.ESTABLISHED:
            self._shutdown("closed locally")
            return
        self._queue.append(DeleteIkeTask(self))
        self._kick(now)

    def send_notify(self, notify_type: int, data: bytes, now: float) -> None:
        """Queue an INFORMATIONAL request with one private-use status Notify (§3.10.1);
        the peer's session reports it as `PrivateNotify`."""
        from .tasks.delete import NotifyTask
        self._queue.append(NotifyTask([notify(notify_type, data)]))
        self._kick(now)

    def send_dpd(self, now: float) -> None:
        """Queue a liveness check: an empty INFORMATIONAL request (§1.4, §2.4)."""
        from .tasks.dpd import DpdTask
        self._queue.append(DpdTask(self))
        self._kick(now)

    def note_traffic(self, now: float, inbound: bool = False, outbound: bool = False) -> None:
        """The data plane saw authenticated child SA traffic from the peer (`inbound`, which
        proves it alive, §2.4) and/or sent some to it (`outbound`) since the last call: what
        dead peer detection's "optimized" and "probe-idle-tunnel" modes look at."""
        if inbound:
            self.traffic_in_at = max(self.traffic_in_at, now)
        if outbound:
            self.traffic_out_at = max(self.traffic_out_at, now)

    @property
    def last_heard(self) -> float:
        """The last time the peer proved alive: an IKE message or inbound child SA traffic."""
        return max(self.last_rx, self.traffic_in_at)

    def _dpd_check_at(self) -> Optional[float]:
        """When dead peer detection next looks at the traffic (None: off, or a request is in
        flight, whose answer or silence decides)."""
        interval = self.config.dpd_interval
        if not interval or self.state != IkeState.ESTABLISHED or self.ike.pending is not None:
            return None
        since = max(self.established_at, self._dpd_checked)
        if self.config.dpd_mode != "always-send":
            since = max(since, self.last_heard)
        return since + interval

    def _dpd_wants_probe(self, now: float) -> bool:
        mode = self.config.dpd_mode
        if mode == "always-send":
            return True
        interval = self.config.dpd_interval or 0.0
        if now - self.last_heard < interval:
            return False
        if mode == "optimized":     # only when we sent and heard nothing back
            return self.traffic_out_at > self.last_heard
        return True                 # probe-idle-tunnel

    def next_event(self) -> Optional[IkeEvent]:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        self.now = now
        out, self._out = self._out, []
        return out

    def get_timer(self) -> Optional[float]:
        """The next time `handle_timer` must be called, or None."""
        if self.state == IkeState.CLOSED:
            return None
        times = [p.deadline for p in self._all_pending()]
        if self.state == IkeState.INIT and not self.ike.initiator:
            times.append(self.last_rx + self.config.half_open_timeout)
        if self.state == IkeState.ESTABLISHED:
            for child in self.children.values():
                if child.state == ChildSaState.INSTALLED and child.rekey_at is not None:
                    times.append(child.rekey_at)
                if child.expire_at is not None:
                    times.append(child.expire_at)
            if self.ike_rekey_at is not None:
                times.append(self.ike_rekey_at)
            dpd = self._dpd_check_at()
            if dpd is not None:
                times.append(dpd)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        """Retransmit, give up, rekey or expire child SAs, DPD (§2.1, §2.4, §2.8)."""
        from .tasks.child_rekey import ChildRekeyTask
        from .tasks.delete import DeleteChildTask
        from .tasks.dpd import DpdTask
        from .tasks.ike_rekey import IkeRekeyTask
        self.now = now
        for ike in [self.ike, *self.old_ike]:
            p = ike.pending
            if p is None or p.deadline > now:
                continue
            dead = p.dead_at is not None and p.dead_at <= now
            if dead or (not p.probe and p.tries >= self.config.retransmit_tries):
                p.task.on_timeout(self)
                reason = "dead peer" if dead or isinstance(p.task, DpdTask) \
                    else "retransmit timeout"
                if ike is self.ike:
                    self._shutdown(reason, RemoteIkeError(
                        f"no response to message {p.mid} since {p.sent_at:g} s"))
                    return
                ike.pending = None
                self.old_ike.remove(ike)
                continue
            p.tries += 1
            if p.probe:
                p.deadline = now + (self.config.dpd_interval or 0.0)
                self.dpd_probes += 1
            else:
                p.deadline = now + self.config.retransmit_timeout * \
                    self.config.retransmit_base ** p.tries
            if p.dead_at is not None:
                p.deadline = min(p.deadline, p.dead_at)
            self._out += [(d, self.remote_addr) for d in p.data]
        if self.state == IkeState.INIT and not self.ike.initiator and \
                self.last_rx + self.config.half_open_timeout <= now:
            self._shutdown("half-open timeout")
            return
        if self.state != IkeState.ESTABLISHED:
            return
        for child in list(self.children.values()):
            if child.expire_at is not None and child.expire_at <= now:
                child.expire_at = None
                if child.state != ChildSaState.DELETING:
                    transition(child, ChildSaState.DELETING)   # hard lifetime (§2.8): delete it
                    self._queue.append(DeleteChildTask(self, child.spi_in, "expired"))
            elif child.state == ChildSaState.INSTALLED and child.rekey_at is not None and \
                    child.rekey_at <= now:
                child.rekey_at = None
                self._queue.append(ChildRekeyTask(self, child.spi_in))
        if self.ike_rekey_at is not None and self.ike_rekey_at <= now:
            self.ike_rekey_at = None
            self._queue.append(IkeRekeyTask(self))
        dpd = self._dpd_check_at()
        if dpd is not None and dpd <= now and not self._queue:
            self._dpd_checked = now
            if self._dpd_wants_probe(now):
                self._queue.append(DpdTask(self, probe=True))
        self._kick(now)

    # ----------------------------------------------------------------- receiving
    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one UDP payload (with the non-ESP marker if it came in on port 4500)."""
        self.now = now
        via_natt = False
        if len(data) == 1 and data[0] == 0xFF:
            return  # NAT-T keepalive (RFC 3948 §2.3)
        if data[:4] == NON_ESP_MARKER:
            data, via_natt = data[4:], True
        try:
            msg = decode_message(data)
        except RemoteIkeError as exc:
            self.errors.add("malformed datagram", exc, now)
            return
        h = msg.header
        target = self.ike if self._accepts(self.ike, h) else next(
            (o for o in self.old_ike if o.matches(h)), None)
        if target is None:
            self.errors.add("unknown IKE SPIs", "datagram for another IKE SA", now)
            return
        try:
            if h.is_response:
                self._handle_response(target, msg, via_natt, addr)
            else:
                self._handle_request(target, msg, via_natt, addr)
        except IntegrityCheckFailed as exc:
            self.errors.add("integrity check failed", exc, now)  # dropped silently (§2.21)
        self._kick(now)

    def _accepts(self, ike: IkeSaKeys, h: IkeHeader) -> bool:
        if not ike.initiator and self.state == IkeState.CREATED and h.exchange == \
                ExchangeType.IKE_SA_INIT and not h.is_response and h.spi_r == bytes(8):
            return ike.spi_i in (bytes(8), h.spi_i)
        return ike.matches(h)

    def _handle_response(self, ike: IkeSaKeys, msg: Message, via_natt: bool,
                         addr: Addr) -> None:
        p = ike.pending
        if p is None or msg.header.message_id != p.mid or msg.header.exchange != \
                p.task.exchange:
            return
        bad: Optional[RemoteIkeError] = None
        if msg.header.exchange == ExchangeType.IKE_SA_INIT:
            payloads = msg.payloads
        else:
            try:
                opened = self._open(ike, msg, True)
            except IntegrityCheckFailed:
                raise
            except RemoteIkeError as exc:   # authentic but malformed inside
                opened, bad = [], exc
            if opened is None:
                return   # more fragments to come
            payloads = opened
        self.last_rx = self.now
        self._note_path(via_natt, addr)
        ike.pending = None
        try:
            if bad is not None:
                raise bad
            result = p.task.process_i(self, msg, payloads)
        except IkeError as exc:
            p.task.error, result = exc, TaskResult.FAILED
        if result is TaskResult.RETRY:
            self._queue.appendleft(p.task)
            return
        ike.next_mid += 1
        if result is TaskResult.FAILED:
            err = p.task.error or RemoteIkeError(f"{type(p.task).__name__} failed")
            if self.state in (IkeState.INIT, IkeState.AUTH):
                self._shutdown("establishment failed", err)
            else:
                self.errors.add("exchange failed", err, self.now)

    def _handle_request(self, ike: IkeSaKeys, msg: Message, via_natt: bool,
                        addr: Addr) -> None:
        h = msg.header
        bad: Optional[RemoteIkeError] = None
        if ike.cached is not None and h.message_id == ike.cached[0]:
            last = msg.payloads[-1] if msg.payloads else None
            if not isinstance(last, EncryptedFragmentPayload) or last.number == 1:
                # Retransmitted request (§2.1; RFC 7383 §2.6.1: react to fragment 1 only).
                # Anyone can send one (the check precedes decryption), so the response goes
                # out once per flush however many copies arrive.
                wires = ike.cached[1]
                if not any(d is wires[0] for d, _ in self._out):
                    self._out += [(d, self.remote_addr) for d in wires]
            return
        if h.message_id != ike.peer_mid:
            return
        if h.exchange == ExchangeType.IKE_SA_INIT:
            if self.state != IkeState.CREATED:
                return
            payloads = msg.payloads
            self.remote_addr = tuple(addr)
        else:
            if ike.sk_in is None:
                return
            try:
                opened = self._open(ike, msg, False)
            except IntegrityCheckFailed:
                raise
            except RemoteIkeError as exc:
                # §3.10.1: INVALID_SYNTAX may be returned for an authenticated request.
                opened, bad = [], exc
            if opened is None:
                return   # more fragments to come
            payloads = opened
        self.last_rx = self.now
        self._note_path(via_natt, addr)
        fatal_error: Optional[IkeError] = None
        self.rx_ike = ike
        establishing = self.state in (IkeState.CREATED, IkeState.INIT)
        try:
            if bad is not None:
                raise bad
            response = self._dispatch(h.exchange, msg, payloads)
        except StatelessReply as reply:
            hdr = IkeHeader(h.spi_i, bytes(8), 0, h.exchange, HeaderFlag.RESPONSE, h.message_id)
            self._out.append((self._wrap(encode_message(hdr, reply.payloads)),
                              self.remote_addr))
            return
        except IkeError as exc:
            hint = exc.notify_hint if isinstance(exc, RemoteIkeError) else \
                NotifyType.AUTHENTICATION_FAILED if h.exchange == ExchangeType.IKE_AUTH else \
                NotifyType.NO_PROPOSAL_CHOSEN
            response = [notify(hint, exc.notify_data)] if hint else []
            if establishing:   # §2.21.1/§2.21.2: a failed IKE_SA_INIT/IKE_AUTH ends the SA
                fatal_error = exc
            else:
                self.errors.add("request refused", exc, self.now)
        if h.exchange == ExchangeType.IKE_SA_INIT and fatal_error is not None:
            ike.spi_i = h.spi_i
        flags = HeaderFlag.RESPONSE | (HeaderFlag.INITIATOR if ike.initiator else 0)
        hdr = IkeHeader(ike.spi_i, ike.spi_r, 0, h.exchange, flags, h.message_id)
        if h.exchange == ExchangeType.IKE_SA_INIT:
            data = encode_message(hdr, response)
            self.init_response = data
            wires = [self._wrap(data)]
        else:
            wires = self.seal(ike, hdr, response)
        ike.cached = (h.message_id, wires)
        ike.peer_mid += 1
        self._out += [(w, self.remote_addr) for w in wires]
        hooks, self._after_response = self._after_response, []
        for hook in hooks:
            hook()
        if fatal_error is not None:
            self._shutdown("establishment failed", fatal_error)

    def _dispatch(self, exchange: int, msg: Message, payloads: list[Payload]) -> list[Payload]:
        from .tasks import child_create, child_rekey, delete, ike_auth, ike_init, ike_rekey
        if exchange == ExchangeType.IKE_SA_INIT:
            return ike_init.respond(self, msg, payloads)
        if exchange == ExchangeType.IKE_AUTH:
            if self.state != IkeState.INIT:
                raise RemoteIkeError("unexpected IKE_AUTH", NotifyType.INVALID_SYNTAX)
            return ike_auth.respond(self, msg, payloads)
        if self.state != IkeState.ESTABLISHED:
            raise RemoteIkeError(f"exchange {exchange} before IKE_AUTH completed",
                                 NotifyType.INVALID_SYNTAX)
        if exchange == ExchangeType.CREATE_CHILD_SA:
            if any(isinstance(p, NotifyPayload) and p.notify_type == NotifyType.REKEY_SA
                   for p in payloads):
                return child_rekey.respond(self, msg, payloads)
            if ike_rekey.is_ike_rekey(payloads):
                return ike_rekey.respond(self, msg, payloads)
            return child_create.respond(self, msg, payloads)
        if exchange == ExchangeType.INFORMATIONAL:
            return delete.respond(self, msg, payloads)
        raise RemoteIkeError(f"unknown exchange type {exchange}", NotifyType.INVALID_SYNTAX)

    def _note_path(self, via_natt: bool, addr: Addr) -> None:
        """§2.23: once on the NAT-T port, stay there; follow the peer's NAT mapping."""
        if via_natt and not self.natt:
            self.natt = True
            self.remote_addr = tuple(addr)
        elif self.natt and self.remote_nat and tuple(addr) != self.remote_addr:
            self.remote_addr = tuple(addr)

    # ----------------------------------------------------------------- sending
    def _wrap(self, data: bytes) -> bytes:
        return NON_ESP_MARKER + data if self.natt else data

    def _kick(self, now: float) -> None:
        """Start the next queued task if no request is in flight (window size 1, §2.3)."""
        while self.ike.pending is None and self._queue and self.state != IkeState.CLOSED:
            task = self._queue.popleft()
            try:
                payloads = task.build_i(self)
            except IkeError as exc:
                if self.state in (IkeState.INIT, IkeState.AUTH):
                    self._shutdown("establishment failed", exc)
                else:
                    self.errors.add("request not sent", exc, now)
                continue
            if payloads is None:
                continue  # the task became moot (e.g. the child SA is already gone)
            ike = self.ike
            flags = HeaderFlag.INITIATOR if ike.initiator else HeaderFlag.NONE
            hdr = IkeHeader(ike.spi_i, ike.spi_r if task.exchange != ExchangeType.IKE_SA_INIT
                            else bytes(8), 0, task.exchange, flags, ike.next_mid)
            if task.exchange == ExchangeType.IKE_SA_INIT:
                data = encode_message(hdr, payloads)
                self.init_request = data
                wires = [self._wrap(data)]
            else:
                wires = self.seal(ike, hdr, payloads)
            self.send_request(ike, task, wires, now)
        if self.listener is not None:      # our timer may have moved
            self.listener(self)

    def seal(self, ike: IkeSaKeys, hdr: IkeHeader, payloads: list[Payload]) -> list[bytes]:
        """Protect a message (§3.14), in RFC 7383 fragments when negotiated and too large;
        returns the datagrams, with the non-ESP marker when on the NAT-T port."""
        assert ike.sk_out is not None
        if self.frag_ok:
            size = self.config.fragment_size - (4 if self.natt else 0)
            return [self._wrap(d) for d in ike.sk_out.seal_fragments(hdr, payloads, size)]
        return [self._wrap(ike.sk_out.seal(hdr, payloads))]

    def _open(self, ike: IkeSaKeys, msg: Message, is_response: bool
              ) -> Optional[list[Payload]]:
        """Decrypt an SK message or collect an SKF fragment (None until complete)."""
        assert ike.sk_in is not None
        last = msg.payloads[-1] if msg.payloads else None
        if not isinstance(last, EncryptedFragmentPayload):
            return ike.sk_in.open(msg)
        if not self.frag_ok:
            raise RemoteIkeError("IKE fragment without negotiated RFC 7383 support",
                                 NotifyType.INVALID_SYNTAX)
        return ike.fragments.add(is_response, msg, ike.sk_in)

    def send_request(self, ike: IkeSaKeys, task: Task, wires: list[bytes],
                     now: float) -> None:
        p = PendingRequest(task, ike.next_mid, wires, now, now + self.config.retransmit_timeout)
        interval = self.config.dpd_interval
        if interval and self.state in (IkeState.ESTABLISHED, IkeState.DELETING):
            # dead peer detection: N probes I seconds apart, or N x I seconds of silence
            p.dead_at = now + self.config.dpd_threshold * interval
            p.probe = task.probe
            if p.probe:
                p.deadline = now + interval
                self.dpd_probes += 1
            p.deadline = min(p.deadline, p.dead_at)
        ike.pending = p
        self._out += [(w, self.remote_addr) for w in wires]

    def _all_pending(self) -> list[PendingRequest]:
        return [i.pending for i in [self.ike, *self.old_ike] if i.pending is not None]

    # ----------------------------------------------------------------- helpers for tasks
    def emit(self, event: IkeEvent) -> None:
        self._events.append(event)
        if self.listener is not None:
            self.listener(self)

    def after_response(self, hook: Callable[[], None]) -> None:
        """Run `hook` once the current response is on its way (e.g. switch IKE SAs)."""
        self._after_response.append(hook)

    def install_ike_keys(self, suite: Suite, g_ir: bytes) -> None:
        """SKEYSEED and SK_* for a new IKE SA from IKE_SA_INIT (§2.14)."""
        ike = self.ike
        seed = skeyseed(suite.prf, ike.nonce_i, ike.nonce_r, g_ir)
        keys = derive_ike_keys(suite.prf, seed, ike.nonce_i, ike.nonce_r, ike.spi_i, ike.spi_r,
                               suite.encr_key_len, suite.integ_key_len)
        ike.install(suite, keys, self.random)

    @property
    def nat_local_addr(self) -> Addr:
        """Our address as the peer should see it: the NAT-T port once we use it."""
        return (self.local_addr[0], self.natt_local_port) if self.natt else self.local_addr

    @property
    def nat_detected(self) -> bool:
        return self.local_nat or self.remote_nat

    def natt_ports(self) -> tuple[int, int]:
        """(local, remote) UDP ports for ESP-in-UDP child SAs (RFC 3948)."""
        return self.natt_local_port, int(self.remote_addr[1]) if self.natt else \
            self.config.natt_port

    def new_child_spi(self) -> int:
        while True:
            spi = int.from_bytes(self.random(4), "big")
            if spi >= 256 and spi not in self.children:
                return spi

    def child_by_out(self, spi_out: int) -> Optional[ChildSa]:
        return next((c for c in self.children.values() if c.spi_out == spi_out), None)

    def drop(self, reason: str) -> None:
        """Forget the IKE SA and its child SAs without telling the peer (events still say
        what went down)."""
        self._shutdown(reason)

    def _shutdown(self, reason: str, error: Optional[IkeError] = None) -> None:
        if self.state == IkeState.CLOSED:
            return
        transition(self, IkeState.CLOSED)
        gone = [(c.spi_in, c.spi_out) for c in self.children.values() if c.reported]
        self.children.clear()
        self._queue.clear()
        self.ike.pending = None
        self.old_ike.clear()
        if error is not None:
            # the event may be kept a long time: not the frames (and sessions) it came from
            error.__traceback__ = None
        self.emit(IkeSaDown(reason, error, gone))

