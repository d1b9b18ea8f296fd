"""CREATE_CHILD_SA rekeying the IKE SA (RFC 7296 §1.3.2, §2.18).

    Initiator                         Responder
    -------------------------------------------------------------------
    HDR, SK {SA(IKE, new SPIi), Ni, KEi}  -->
                               <--  HDR, SK {SA(IKE, new SPIr), Nr, KEr}
    (both: new IKE SA with SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), message IDs
     from 0; child SAs move over; the rekey initiator is the new SA's original initiator)
    HDR(old SPIs), SK {D(IKE)}  -->
                               <--  HDR(old SPIs), SK {}

Simultaneous rekeys (§2.8.2): when both ends start an IKE SA rekey at once, each answers the
other's request as usual, so two new IKE SAs exist. The exchange that carried the lowest of
the four nonces made the redundant SA: the end that initiated that exchange deletes it (on the
redundant SA itself), the children move to the surviving SA, and the survivor's initiator
deletes the old IKE SA. An end sees the collision either when its own response arrives after
it answered the peer's request (`IkeRekeyTask.collision`), or when the peer's request arrives
on the old SA after its own rekey completed; both ends decide alike, without
TEMPORARY_FAILURE or a retry.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...constants import ExchangeType, HeaderFlag, NotifyType, ProtocolId, TransformType
from ...errors import RemoteIkeError
from ...events import IkeSaRekeyed
from ...keymat import derive_ike_keys, skeyseed_rekey
from ...message import IkeHeader, Message
from ...payloads import KePayload, NoncePayload, Payload, SaPayload
from ...protection import KeyExchange, group_supported
from ...proposals import Suite, check_accepted, select
from ...states import IkeSaState as IkeState
from ..natt import new_ike_spi
from ..task import Task, TaskResult
from .delete import DeleteIkeTask
from .ike_init import (NONCE_LEN, find_notify, first_error, ike_proposals, one,
                       proposal_name)

if TYPE_CHECKING:  # pragma: no cover
    from ..ike_sa import IkeSaKeys
    from ..session import IkeV2Session


def is_ike_rekey(payloads: list[Payload]) -> bool:
    sa = next((p for p in payloads if isinstance(p, SaPayload)), None)
    return sa is not None and any(p.protocol == ProtocolId.IKE for p in sa.proposals)


def _new_sa(session: "IkeV2Session", suite: Suite, spi_i: bytes, spi_r: bytes,
            initiator: bool, nonce_i: bytes, nonce_r: bytes, g_ir: bytes,
            old: "Optional[IkeSaKeys]" = None) -> "IkeSaKeys":
    """The IKE SA a rekey of `old` (default: the current one) makes (§2.18: SKEYSEED from
    the rekeyed SA's SK_d)."""
    from ..ike_sa import IkeSaKeys
    old = old or session.ike
    assert old.keys is not None
    seed = skeyseed_rekey(suite.prf, old.keys.sk_d, g_ir, nonce_i, nonce_r)
    keys = derive_ike_keys(suite.prf, seed, nonce_i, nonce_r, spi_i, spi_r,
                           suite.encr_key_len, suite.integ_key_len)
    new = IkeSaKeys(spi_i, spi_r, initiator)
    new.nonce_i, new.nonce_r = nonce_i, nonce_r
    new.install(suite, keys, session.random)
    return new


def _switch(session: "IkeV2Session", new: "IkeSaKeys", suite: Suite) -> "IkeSaKeys":
    from ..ike_sa import MAX_OLD_IKE_SAS
    old = session.ike
    session.old_ike.append(old)
    if len(session.old_ike) > MAX_OLD_IKE_SAS:
        # A peer that rekeys again and again but never deletes the old IKE SAs: forget the
        # oldest (its Delete, if ours is pending, is abandoned).
        del session.old_ike[0]
    session.ike = new
    old.rekeyed_from = None          # one link only: no chain of every earlier IKE SA
    new.rekeyed_from = old           # a late colliding request may still arrive on it
    session.proposal_text = proposal_name(suite)
    # A fresh IKE SA: its own lifetime, and any retry of a refused rekey is moot.
    session.ike_rekey_at = None if session.config.ike_rekey_seconds is None \
        else session.now + session.config.ike_rekey_seconds
    session.emit(IkeSaRekeyed(old.spi_i, old.spi_r, new.spi_i, new.spi_r))
    return old


class IkeRekeyTask(Task):
    exchange = ExchangeType.CREATE_CHILD_SA

    def __init__(self, session: "IkeV2Session", group: Optional[int] = None) -> None:
        super().__init__()
        self.spi = new_ike_spi(session.random)
        proposals = ike_proposals(session)
        offered = [t.id for p in proposals for t in p.of_type(TransformType.DH)]
        current = session.ike.suite.dh if session.ike.suite is not None else None
        # KE for the requested group, else the current IKE SA's, else our first (§1.3.2);
        # proposals with that group go first so the responder picks one that matches.
        self.group = group or (current if current in offered else offered[0])
        self.proposals = sorted(proposals, key=lambda p: all(
            t.id != self.group for t in p.of_type(TransformType.DH)))
        for p in self.proposals:
            p.spi = self.spi
        self.ke: Optional[KeyExchange] = None
        self.nonce = session.random(NONCE_LEN)
        #: the peer's simultaneous rekey, answered while ours was in flight (§2.8.2): its
        #: new IKE SA and suite
        self.collision: Optional[tuple["IkeSaKeys", Suite]] = None
        #: the peer deleted the IKE SA we rekey while ours was in flight (it completed its
        #: own rekey first): nothing left to delete once ours returns
        self.old_deleted = False

    def build_i(self, session: "IkeV2Session") -> Optional[list[Payload]]:
        if session.state != IkeState.ESTABLISHED:
            return None
        self.ke = KeyExchange(self.group)
        return [SaPayload(self.proposals), NoncePayload(self.nonce),
                KePayload(self.group, self.ke.public)]

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        invalid_ke = find_notify(payloads, NotifyType.INVALID_KE_PAYLOAD)
        if invalid_ke is not None and len(invalid_ke.data) >= 2:
            group = int.from_bytes(invalid_ke.data[:2], "big")
            if group != self.group and group_supported(group) and any(
                    t.id == group for p in self.proposals for t in p.of_type(TransformType.DH)):
                session._queue.appendleft(IkeRekeyTask(session, group))   # §1.3.2 retry
                return TaskResult.DONE
        err = first_error(payloads)
        if err is not None and self.collision is not None:
            # the peer refused ours but took its own, which we answered: it survives
            self._forget_old(session, _switch(session, *self.collision))
            return TaskResult.DONE
        if err is not None:
            # Try again later, after a random delay so two colliding rekeys do not meet
            # again (§2.25.2 handled the simple way: both refuse, one retries first).
            session.ike_rekey_at = session.now + 10.0 + session.random(1)[0] / 8.0
            raise RemoteIkeError(f"IKE rekey refused: {err.name}", err.notify_type)
        sa = one(payloads, SaPayload, "SA")
        chosen = check_accepted(sa.proposals, self.proposals)
        suite = Suite.from_proposal(chosen)
        ke = one(payloads, KePayload, "KE")
        if ke.group != self.group or suite.dh != self.group or len(chosen.spi) != 8:
            raise RemoteIkeError("IKE rekey response does not match the request",
                                 NotifyType.INVALID_SYNTAX)
        assert self.ke is not None
        g_ir = self.ke.shared_secret(ke.data)
        nonce_r = one(payloads, NoncePayload, "Nonce").nonce
        new = _new_sa(session, suite, self.spi, chosen.spi, True, self.nonce, nonce_r, g_ir)
        if self.collision is not None:
            theirs, their_suite = self.collision
            if redundant(new, theirs) is new:
                # ours holds the lowest nonce: the peer's SA survives and its initiator
                # deletes the old one; we delete ours, on ours (§2.8.2)
                self._forget_old(session, _switch(session, theirs, their_suite))
                _delete_redundant(session, new)
                return TaskResult.DONE
            session.old_ike.append(theirs)     # the peer deletes it; answer it till then
        old = _switch(session, new, suite)
        if self.old_deleted:
            self._forget_old(session, old)
            return TaskResult.DONE
        # Delete the old IKE SA on the old SA itself (§2.18).
        task = DeleteIkeTask(session, target=old)
        old.next_mid += 1  # this response's ID is consumed on the old SA
        hdr = IkeHeader(old.spi_i, old.spi_r, 0, ExchangeType.INFORMATIONAL,
                        HeaderFlag.INITIATOR if old.initiator else HeaderFlag.NONE,
                        old.next_mid)
        session.send_request(old, task, session.seal(old, hdr, task.build_i(session)),
                             session.now)
        old.next_mid -= 1  # the session increments after process_i returns
        return TaskResult.DONE


    def _forget_old(self, session: "IkeV2Session", old: "IkeSaKeys") -> None:
        """The old IKE SA already deleted by the peer: no Delete of ours, no answers."""
        if self.old_deleted and old in session.old_ike:
            session.old_ike.remove(old)


def redundant(a: "IkeSaKeys", b: "IkeSaKeys") -> "IkeSaKeys":
    """Of two IKE SAs made by simultaneous rekeys, the redundant one: made by the exchange
    that carried the lowest of the four nonces (§2.8.2)."""
    return a if min(a.nonce_i, a.nonce_r) < min(b.nonce_i, b.nonce_r) else b


def _delete_redundant(session: "IkeV2Session", sa: "IkeSaKeys") -> None:
    """Delete a redundant IKE SA we initiated, on itself; kept (as an old SA) until the
    peer answers."""
    if sa not in session.old_ike:
        session.old_ike.append(sa)
    task = DeleteIkeTask(session, target=sa)
    hdr = IkeHeader(sa.spi_i, sa.spi_r, 0, ExchangeType.INFORMATIONAL,
                    HeaderFlag.INITIATOR if sa.initiator else HeaderFlag.NONE, sa.next_mid)
    session.send_request(sa, task, session.seal(sa, hdr, task.build_i(session)), session.now)


def respond(session: "IkeV2Session", msg: Message, payloads: list[Payload]) -> list[Payload]:
    pending = session.ike.pending
    ours = pending.task if pending is not None and isinstance(pending.task, IkeRekeyTask) \
        else None
    rx = session.rx_ike
    late = rx is not None and rx is not session.ike
    if late and session.ike.rekeyed_from is not rx:
        raise RemoteIkeError("IKE rekey request on an IKE SA being deleted",
                             NotifyType.TEMPORARY_FAILURE)
    sa = one(payloads, SaPayload, "SA")
    chosen = select(sa.proposals, ike_proposals(session))
    suite = Suite.from_proposal(chosen)
    ke = one(payloads, KePayload, "KE")
    if not group_supported(suite.dh) or ke.group != suite.dh:
        raise RemoteIkeError("IKE rekey with the wrong KE group", NotifyType.INVALID_KE_PAYLOAD,
                             int(suite.dh).to_bytes(2, "big"))
    if len(chosen.spi) != 8:
        raise RemoteIkeError("IKE rekey proposal needs an 8-byte SPI", NotifyType.INVALID_SYNTAX)
    kex = KeyExchange(suite.dh)
    g_ir = kex.shared_secret(ke.data)
    nonce_i = one(payloads, NoncePayload, "Nonce").nonce
    nonce_r = session.random(NONCE_LEN)
    spi_r = new_ike_spi(session.random)
    new = _new_sa(session, suite, chosen.spi, spi_r, False, nonce_i, nonce_r, g_ir,
                  old=rx if late else None)
    if ours is not None:
        ours.collision = (new, suite)          # decided when our response arrives (§2.8.2)
    elif late:
        # our rekey of `rx` already completed: the collision is decided now (§2.8.2)
        mine = session.ike
        if redundant(mine, new) is mine:
            def adopt() -> None:
                _switch(session, new, suite)
                _delete_redundant(session, mine)
            session.after_response(adopt)
        else:
            session.old_ike.append(new)        # the peer deletes it
    else:
        def switch() -> None:
            _switch(session, new, suite)
        session.after_response(switch)
    chosen.spi = spi_r
    return [SaPayload([chosen]), NoncePayload(nonce_r), KePayload(suite.dh, kex.public)]
