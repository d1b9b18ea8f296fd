"""CREATE_CHILD_SA rekeying a child SA (RFC 7296 §1.3.3, §2.8), make-before-break.

    Initiator                         Responder
    -------------------------------------------------------------------
    HDR, SK {N(REKEY_SA, ESP, old spi_in), SA, Ni, [KEi], TSi, TSr}  -->
                               <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
    (both: install the new SA pair, event ChildSaRekeyed)
    HDR, SK {D(ESP, old spi_in)}  -->
                               <--  HDR, SK {D(ESP, old spi_in of the responder)}
    (both: remove the old pair, event ChildSaDown)

Simultaneous rekey of the same child SA (§2.8.1): both exchanges complete.

    A                                                   B
    N(REKEY_SA, old) SA Ni(a1) ...  -->   <--  N(REKEY_SA, old) SA Ni(b1) ...
    (each answers the other's request although its own is in flight:
     B creates SA_A with Nr(b2), A creates SA_B with Nr(a2), neither reports it yet)
    <--  SA Nr(b2) ...                          SA Nr(a2) ...  -->
    (each now knows the four nonces; the exchange holding the lowest one (octet by octet)
     created the redundant SA. Say it is A's exchange, SA_A:)
    A: ChildSaRekeyed(old -> SA_B)              B: ChildSaRekeyed(old -> SA_B)
    D(ESP, SA_A)  -->                           <--  D(ESP, old)
    (A deletes the SA it created, B, whose SA survives, deletes the old one; SA_A is never
     reported to either user, so it needs no ChildSaDown; the old pair gets one on each end)

If the peer's Delete of the old SA arrives before our own exchange completes, the peer's SA is
reported then (make-before-break) and ours, when it completes, is deleted as redundant. If our
exchange fails (e.g. TEMPORARY_FAILURE because the peer was already deleting the old SA,
§2.25.1), the peer's SA is the replacement. A rekey request for an SA we are deleting is
answered TEMPORARY_FAILURE (§2.25.1), for one we do not know CHILD_SA_NOT_FOUND.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...constants import ExchangeType, NotifyType
from ...errors import RemoteIkeError
from ...events import ChildSaRekeyed, ChildSaUp
from ...message import Message
from ...payloads import NoncePayload, Payload, notify
from ...states import ChildSaState, transition
from ..child import ChildSa
from ..task import Task, TaskResult
from .child_create import ChildInitiator, child_protocol, child_respond, invalid_ke_group
from .delete import DeleteChildTask, adopt_collision
from .ike_init import NONCE_LEN, find_notify, one

if TYPE_CHECKING:  # pragma: no cover
    from ..session import IkeV2Session


def _loses(ours: tuple[bytes, bytes], theirs: tuple[bytes, bytes], ike_initiator: bool
           ) -> bool:
    """§2.8.1: our exchange holds the lowest of the four nonces ("lowest" octet by octet, a
    prefix being lower: Python's bytes order), so the SA we created is the redundant one.
    Equal lowest nonces (never, with random ones) fall back to the higher nonces, then to
    the IKE SA's original initiator winning, so both ends still decide alike."""
    a, b = sorted(ours), sorted(theirs)
    if a != b:
        return a < b
    return not ike_initiator


class ChildRekeyTask(Task):
    exchange = ExchangeType.CREATE_CHILD_SA

    def __init__(self, session: "IkeV2Session", spi_in: int,
                 group: Optional[int] = None) -> None:
        super().__init__()
        self.spi_in = spi_in
        self.group = group
        self.neg: Optional[ChildInitiator] = None
        self.old: Optional[ChildSa] = None

    def build_i(self, session: "IkeV2Session") -> Optional[list[Payload]]:
        old = session.children.get(self.spi_in)
        if old is None or old.state != ChildSaState.INSTALLED:
            return None
        transition(old, ChildSaState.REKEYING)
        old.collision = None
        self.old = old
        # PFS with the group the SA was last keyed with, unless the peer asked otherwise.
        group = self.group or (old.suite.dh or None)
        self.neg = ChildInitiator(session, old.config, with_pfs=True, group=group)
        self.neg.tsi, self.neg.tsr = list(old.local_ts), list(old.remote_ts)
        return [notify(NotifyType.REKEY_SA, b"", child_protocol(old.config),
                       self.spi_in.to_bytes(4, "big"))
                ] + self.neg.exchange_payloads()

    def _peer_sa(self, session: "IkeV2Session") -> Optional[ChildSa]:
        """The SA the peer's colliding rekey created (§2.8.1), if any."""
        if self.old is None or self.old.collision is None:
            return None
        return session.children.get(self.old.collision)

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        old = session.children.get(self.spi_in)
        peer = self._peer_sa(session)
        assert self.neg is not None
        group = invalid_ke_group(payloads, self.neg.proposals, self.neg.group)
        if group is not None and old is not None:
            if peer is not None:      # the peer's colliding rekey stands: no retry needed
                adopt_collision(session, old)
                transition(old, ChildSaState.REKEYED)
                return TaskResult.DONE
            transition(old, ChildSaState.INSTALLED)
            session._queue.appendleft(ChildRekeyTask(session, self.spi_in, group))
            return TaskResult.DONE
        try:
            new = self.neg.complete(session, payloads, self.neg.nonce, None)
        except RemoteIkeError as exc:
            if old is not None and peer is not None and not peer.reported:
                # Ours failed, the peer's colliding rekey succeeded: its SA replaces the old
                # one, which the peer deletes (§2.8.1).
                adopt_collision(session, old)
                transition(old, ChildSaState.REKEYED)
            elif old is not None and old.state == ChildSaState.REKEYING:
                # Keep the old SA and try again later (e.g. TEMPORARY_FAILURE, §2.25).
                transition(old, ChildSaState.INSTALLED)
                old.rekey_at = session.now + 10.0 + session.random(1)[0] / 8.0
            self.error = exc
            return TaskResult.FAILED
        if old is None:
            if peer is not None and peer.reported:
                # The peer deleted the old SA after its colliding rekey, whose SA is already
                # reported as the replacement: ours is redundant (§2.8.1).
                self._discard(session, new)
            else:   # deleted meanwhile: the new pair stands alone
                session.emit(ChildSaUp(new.negotiated()))
            return TaskResult.DONE
        if peer is not None and not peer.reported:
            old.collision = None
            if _loses(new.nonces, peer.nonces, session.ike.initiator):
                # §2.8.1: we created the SA with the lowest nonce: we close it, the peer
                # (whose SA survives) deletes the old one.
                transition(peer, ChildSaState.INSTALLED)
                peer.reported = True
                transition(old, ChildSaState.REKEYED)
                session.emit(ChildSaRekeyed(old.spi_in, old.spi_out, peer.negotiated()))
                self._discard(session, new)
                return TaskResult.DONE
            transition(peer, ChildSaState.REDUNDANT)   # the peer deletes it
            peer.reported = False
        transition(old, ChildSaState.REKEYED)
        session.emit(ChildSaRekeyed(old.spi_in, old.spi_out, new.negotiated()))
        # The initiator of the surviving rekey deletes the old SA (§2.8, §2.8.1).
        session._queue.appendleft(DeleteChildTask(session, old.spi_in, "rekeyed"))
        return TaskResult.DONE

    @staticmethod
    def _discard(session: "IkeV2Session", new: ChildSa) -> None:
        transition(new, ChildSaState.REDUNDANT)
        new.reported = False
        session._queue.appendleft(DeleteChildTask(session, new.spi_in, "redundant"))


def respond(session: "IkeV2Session", msg: Message, payloads: list[Payload]) -> list[Payload]:
    """Responder side: the REKEY_SA SPI is the initiator's inbound SPI = our outbound."""
    rekey = find_notify(payloads, NotifyType.REKEY_SA)
    assert rekey is not None
    old = session.child_by_out(int.from_bytes(rekey.spi, "big")) if len(rekey.spi) == 4 \
        else None
    if old is None or old.state in (ChildSaState.PENDING, ChildSaState.REDUNDANT):
        raise RemoteIkeError("rekey of an unknown child SA", NotifyType.CHILD_SA_NOT_FOUND)
    if old.state == ChildSaState.DELETING:
        # §2.25.1: a rekey of a child SA we are closing.
        raise RemoteIkeError("rekey of a child SA being deleted", NotifyType.TEMPORARY_FAILURE)
    collision = old.state == ChildSaState.REKEYING
    if collision and old.collision is not None:
        raise RemoteIkeError("second rekey collision", NotifyType.TEMPORARY_FAILURE)
    nonce_i = one(payloads, NoncePayload, "Nonce").nonce
    nonce_r = session.random(NONCE_LEN)
    new, out = child_respond(session, payloads, nonce_i, nonce_r, in_auth=False,
                             cfg_hint=old.config)
    if collision:
        # Simultaneous rekey (§2.8.1): accept; which new SA survives is decided when our own
        # exchange completes (ChildRekeyTask.process_i), so nothing is reported yet.
        transition(new, ChildSaState.PENDING)
        new.reported = False
        old.collision = new.spi_in
    else:
        transition(old, ChildSaState.REKEYED)
        session.emit(ChildSaRekeyed(old.spi_in, old.spi_out, new.negotiated()))
    return [out[0], NoncePayload(nonce_r)] + out[1:]
