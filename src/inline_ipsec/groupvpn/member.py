"""A GDOI group member (RFC 6407 §1.2 "GM"), sans-I/O: Junos `security group-vpn member`.

Registers with the key server (IKEv1 Phase 1 + GROUPKEY-PULL on the GDOI port), installs the
group's TEKs on a `cpu.group.GroupEngine` and follows GROUPKEY-PUSH rekeys.

A push is acted on only after `push.open_push` accepted it: the cookies name our KEK, it
decrypts and decodes, the key server's signature verifies, and its SEQ is above every SEQ we
accepted. Everything it carries is validated before anything is installed (all or nothing).
Rejected pushes are counted by reason (`push_drops`: unknown-kek, malformed, bad-signature,
replayed, ...). The key server numbers each member's pushes 1, 2, 3, ...: a gap means a lost
push (with keys or Deletes we lack), and the member registers again at once. A member
re-registers (a new Phase 1 and GROUPKEY-PULL) when its KEK or its
newest TEK comes within `reregister_margin` of expiry without a push having replaced it, at
most once per `retry` seconds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

from ..cpu.group import GroupEngine, GroupSa
from ..ike.errors import RemoteIkeError
from ..ike.states import GroupMemberState, IkeV1SaState, enter, transition
from ..ike.v1.isakmp import DeletePayload, HEADER_LEN
from .config import MemberVpn
from .constants import GapAttr, GdoiExchange
from .keys import group_sa_from, kek_from
from .payloads import GdoiSaPayload, KdPayload, attr_value
from .pull import GdoiSession, GroupKeysReceived, RegistrationFailed
from .push import Kek, PushRejected, open_push

Addr = tuple
#: most group SAs one member VPN holds (each rekey adds one per ipsec-sa until the old
#: expire; an authentic but excessive push is refused whole, not installed in part)
MAX_TEKS_PER_GROUP = 32


@dataclass
class MemberEvent:
    """Something a member did, for logs and tests: registered, rekeyed, deleted, failed."""

    kind: str
    spis: tuple[int, ...] = ()
    detail: str = ""


class GroupMember:
    """One `ipsec vpn` of a member: a group at a key server."""

    def __init__(self, vpn: MemberVpn, local_addr: Addr, engine: Optional[GroupEngine] = None,
                 *, random: Callable[[int], bytes] = os.urandom, retry: float = 10.0) -> None:
        self.vpn = vpn
        self.local_addr = tuple(local_addr)
        self.engine = engine or GroupEngine()
        self.random = random
        self.retry = retry
        self.session: Optional[GdoiSession] = None
        self.kek: Optional[Kek] = None
        self.last_seq = 0
        #: a `GroupMemberState` (ike/states.py); changed only by `transition`
        self.state = GroupMemberState.IDLE
        self.registered_at: Optional[float] = None
        #: completed registrations (each starts its own push sequence and KEK)
        self.registrations = 0
        self.next_attempt = 0.0
        #: registrations that failed in a row (for the back-off)
        self.failures = 0
        self.pushes = 0
        #: pushes known lost (gaps in our SEQ), each answered by a new registration
        self.missed_pushes = 0
        self.push_drops: dict[str, int] = {}
        self.events: list[MemberEvent] = []
        self._out: list[tuple[bytes, Addr]] = []
        #: TEKs to remove later (deactivation delay), spi -> time
        self._pending_delete: dict[int, float] = {}

    @property
    def group_id(self) -> int:
        return self.vpn.group_id

    def _event(self, kind: str, spis=(), detail: str = "") -> None:
        self.events.append(MemberEvent(kind, tuple(spis), detail))
        del self.events[:-64]          # bounded history

    # -- registration --------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Register (again): a new ISAKMP SA with the key server, then GROUPKEY-PULL."""
        old = self.session
        if old is not None and old.state == IkeV1SaState.ESTABLISHED:
            old.close(now)                 # Delete: the key server forgets it at once
            self._out += old.datagrams_to_send(now)
        elif old is not None:
            old.drop("re-registering")
        # back off while registrations fail: retry, 2 x retry, ... up to 30 x retry
        self.failures = self.failures + 1 if self.state in (
            GroupMemberState.FAILED, GroupMemberState.REGISTERING) else 0
        enter(self, GroupMemberState.REGISTERING)
        self.next_attempt = now + self.retry * min(2 ** self.failures, 30)
        s = GdoiSession(self.vpn.ike, initiator=True, local_addr=self.local_addr,
                        remote_addr=self.vpn.server, now=now, group_id=self.vpn.group_id)
        self.session = s
        s.connect(now, first_child=False)
        self._drain(now)

    def _drain(self, now: float) -> None:
        s = self.session
        if s is None:
            return
        self._out += s.datagrams_to_send(now)
        while True:
            ev = s.next_event()
            if ev is None:
                break
            if isinstance(ev, GroupKeysReceived):
                self._registered(ev, now)
            elif isinstance(ev, RegistrationFailed):
                enter(self, GroupMemberState.FAILED)
                self._event("registration-failed", detail=ev.reason)
        if s.state == IkeV1SaState.CLOSED and self.state == GroupMemberState.REGISTERING:
            transition(self, GroupMemberState.FAILED)
            self._event("registration-failed", detail="ISAKMP SA closed")

    def _registered(self, ev: GroupKeysReceived, now: float) -> None:
        try:
            if len(ev.sa.teks) > MAX_TEKS_PER_GROUP:
                raise RemoteIkeError(f"{len(ev.sa.teks)} TEKs in one registration")
            sas = [group_sa_from(t, ev.kd.packets, now, self.group_id) for t in ev.sa.teks]
            kek = kek_from(ev.sa.kek, ev.kd.packets, now) if ev.sa.kek else None
        except RemoteIkeError as exc:
            transition(self, GroupMemberState.FAILED)
            self._event("registration-failed", detail=str(exc))
            return
        # a new registration replaces everything the old one installed
        for spi in list(self.engine.sas):
            if self.engine.sas[spi].group_id == self.group_id:
                self.engine.remove(spi)
        for sa in sas:
            sa.name = self.vpn.name
            self.engine.install(sa)
        self.kek = kek
        self.last_seq = ev.seq
        enter(self, GroupMemberState.REGISTERED)
        self.registered_at = now
        self.registrations += 1
        self._event("registered", [sa.spi for sa in sas])

    # -- GROUPKEY-PUSH -------------------------------------------------------------------
    def _count(self, reason: str) -> None:
        self.push_drops[reason] = self.push_drops.get(reason, 0) + 1

    def _push(self, data: bytes, now: float) -> None:
        if self.kek is None:
            self._count("no-kek")
            return
        try:
            seq, payloads = open_push(self.kek, data, self.last_seq)
        except PushRejected as exc:
            self._count(exc.reason)
            return
        # authentic and fresh: never act on it twice, whatever it carries
        missed = seq - self.last_seq - 1
        self.last_seq = seq
        try:
            self._apply(payloads, now)
        except (RemoteIkeError, ValueError) as exc:
            self._count("unusable")
            self._event("push-unusable", detail=str(exc))
            return
        self.pushes += 1
        if missed > 0:
            # our sequence skipped: pushes were lost, with TEKs (or Deletes) we lack;
            # register again now rather than send with keys the group dropped
            self.missed_pushes += missed
            self._event("missed-pushes", detail=f"{missed} before SEQ {seq}")
            self.start(now)

    def _apply(self, payloads, now: float) -> None:
        sa = next((p for p in payloads if type(p) is GdoiSaPayload), None)
        kd = next((p for p in payloads if type(p) is KdPayload), None)
        deletes = [p for p in payloads if type(p) is DeletePayload]
        delay = 0.0
        if sa is not None and sa.gap is not None:
            a = attr_value(sa.gap.attributes, GapAttr.ACTIVATION_TIME_DELAY)
            delay = float(a.as_int) if a else 0.0
        packets = kd.packets if kd is not None else []
        mine = sum(1 for sa in self.engine.sas.values() if sa.group_id == self.group_id)
        if sa is not None and mine + len(sa.teks) > MAX_TEKS_PER_GROUP:
            raise RemoteIkeError(f"push would hold {mine + len(sa.teks)} TEKs for the group "
                                 f"(at most {MAX_TEKS_PER_GROUP})")
        # validate everything first, then install
        new: list[GroupSa] = [group_sa_from(t, packets, now, self.group_id, delay)
                              for t in (sa.teks if sa else [])]
        kek = kek_from(sa.kek, packets, now) if sa is not None and sa.kek else None
        gone = [int.from_bytes(s, "big") for d in deletes for s in d.spis if len(s) == 4]
        for g in new:
            g.name = self.vpn.name
            self.engine.install(g)
        for spi in gone:
            if spi in self.engine.sas and self.engine.sas[spi].group_id == self.group_id:
                self.engine.remove(spi)
        if kek is not None:
            self.kek = kek
        self._event("rekeyed", [g.spi for g in new], f"deleted {len(gone)}, "
                    f"kek {'new' if kek else 'kept'}")

    # -- the sans-I/O surface ------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        data = bytes(data)
        if len(data) >= HEADER_LEN and data[18] == GdoiExchange.GROUPKEY_PUSH and \
                data[19] & 1:
            self._push(data, now)
            return
        s = self.session
        if s is None or len(data) < HEADER_LEN or data[:8] != s.sa.cky_i:
            self._count("unknown-sa")
            return
        s.receive_datagram(data, addr, now)
        self._drain(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        self._drain(now)
        out, self._out = self._out, []
        return out

    def _due(self) -> Optional[float]:
        """When the member must re-register: its KEK or its newest TEK is about to expire."""
        if self.state != GroupMemberState.REGISTERED:
            return self.next_attempt
        limits = []
        if self.kek is not None:
            limits.append(self.kek.expires)
        mine = [sa for sa in self.engine.sas.values() if sa.group_id == self.group_id]
        if mine:
            limits.append(max(sa.expires or float("inf") for sa in mine))
        else:
            return self.next_attempt
        return min(limits) - self.vpn.reregister_margin if limits else None

    def get_timer(self) -> Optional[float]:
        times = [self._due()]
        if self.session is not None:
            times.append(self.session.get_timer())
        times += [sa.expires for sa in self.engine.sas.values()
                  if sa.group_id == self.group_id and sa.expires is not None]
        times = [t for t in times if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        s = self.session
        if s is not None:
            t = s.get_timer()
            if t is not None and t <= now:
                s.handle_timer(now)
                self._drain(now)
        gone = self.engine.expire(now)
        if gone:
            self._event("expired", gone)
        due = self._due()
        if due is not None and due <= now and self.state != GroupMemberState.REGISTERING:
            self.start(now)
        elif self.state == GroupMemberState.REGISTERING and now >= self.next_attempt:
            self.start(now)

    # -- show ----------------------------------------------------------------------------
    def group_sas(self) -> list[GroupSa]:
        return sorted((sa for sa in self.engine.sas.values() if sa.group_id == self.group_id),
                      key=lambda sa: sa.not_before)

    def stats(self) -> dict[str, int]:
        out = {"pushes-accepted": self.pushes, "pushes-missed": self.missed_pushes}
        out.update({f"push-{k}": v for k, v in sorted(self.push_drops.items())})
        return out

