"""INFORMATIONAL exchanges with Delete payloads (RFC 7296 §1.4.1), and the responder side of
every INFORMATIONAL request (an empty one is a liveness check, §2.4).

    Initiator                         Responder
    -------------------------------------------------------------------
    HDR, SK {D(ESP, spi_in...)}  -->
                               <--  HDR, SK {D(ESP, spi_in of the paired SAs)}
    HDR, SK {D(IKE)}  -->
                               <--  HDR, SK {}
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Optional

from ...constants import ExchangeType, ProtocolId
from ...events import ChildSaDown, ChildSaRekeyed, PrivateNotify
from ...message import Message
from ...payloads import DeletePayload, NotifyPayload, Payload
from ...states import ChildSaState, IkeSaState as IkeState, enter, transition
from ..task import Task, TaskResult

if TYPE_CHECKING:  # pragma: no cover
    from ..child import ChildSa
    from ..ike_sa import IkeSaKeys
    from ..session import IkeV2Session


#: private-use status notify types (RFC 7296 §3.10.1), handed to the user as PrivateNotify
PRIVATE_STATUS_MIN = 40960


class NotifyTask(Task):
    """An INFORMATIONAL request carrying Notify payloads (private-use status types, which
    the peer's user interprets); the empty response only acknowledges it (§1.4)."""

    exchange = ExchangeType.INFORMATIONAL

    def __init__(self, payloads: list[Payload]) -> None:
        super().__init__()
        self.payloads = payloads

    def build_i(self, session: "IkeV2Session") -> list[Payload]:
        return list(self.payloads)

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        return TaskResult.DONE


def _spi4(spi: int) -> bytes:
    return spi.to_bytes(4, "big")


class DeleteChildTask(Task):
    exchange = ExchangeType.INFORMATIONAL

    def __init__(self, session: "IkeV2Session", spi_in: int, reason: str = "deleted") -> None:
        super().__init__()
        self.spi_in = spi_in
        self.reason = reason

    def build_i(self, session: "IkeV2Session") -> Optional[list[Payload]]:
        child = session.children.get(self.spi_in)
        if child is None:
            return None
        enter(child, ChildSaState.DELETING)     # the hard lifetime may have said so
        proto = ProtocolId.AH if child.config.protocol == "ah" else ProtocolId.ESP
        return [DeletePayload(proto, [_spi4(self.spi_in)])]

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        # Whatever the peer answers, the SA pair is gone (§1.4.1).
        child = session.children.pop(self.spi_in, None)
        if child is not None and child.reported:
            session.emit(ChildSaDown(child.spi_in, child.spi_out, self.reason))
        return TaskResult.DONE


class DeleteIkeTask(Task):
    """Delete the IKE SA (and implicitly every child SA, §1.4.1)."""

    exchange = ExchangeType.INFORMATIONAL

    def __init__(self, session: "IkeV2Session", target: "Optional[IkeSaKeys]" = None) -> None:
        super().__init__()
        self.target = target  #: an old, rekeyed IKE SA; None = the current one

    def build_i(self, session: "IkeV2Session") -> list[Payload]:
        if self.target is None:
            transition(session, IkeState.DELETING)
        return [DeletePayload(ProtocolId.IKE, [])]

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        if self.target is not None:
            if self.target in session.old_ike:
                session.old_ike.remove(self.target)
        else:
            session._shutdown("deleted")
        return TaskResult.DONE


def adopt_collision(session: "IkeV2Session", old: "ChildSa") -> None:
    """The peer deletes `old` while our rekey of it is in flight and its colliding rekey
    already created a replacement (RFC 7296 §2.8.1: the peer won, or its rekey completed
    first): report that replacement before the old pair goes (make-before-break)."""
    peer = session.children.get(old.collision) if old.collision is not None else None
    if peer is None or peer.reported:
        return
    transition(peer, ChildSaState.INSTALLED)
    peer.reported = True
    session.emit(ChildSaRekeyed(old.spi_in, old.spi_out, peer.negotiated()))


def _forget(session: "IkeV2Session", old: "IkeSaKeys") -> None:
    if old in session.old_ike:
        session.old_ike.remove(old)


def respond(session: "IkeV2Session", msg: Message, payloads: list[Payload]) -> list[Payload]:
    """Answer an INFORMATIONAL request: process Delete payloads, otherwise echo nothing."""
    out: list[Payload] = []
    for d in payloads:
        if isinstance(d, NotifyPayload) and d.notify_type >= PRIVATE_STATUS_MIN:
            session.emit(PrivateNotify(d.notify_type, d.data))
        if not isinstance(d, DeletePayload):
            continue
        if d.protocol == ProtocolId.IKE:
            old = session.rx_ike
            pending = session.ike.pending
            if old is not None and old is not session.ike:
                session.after_response(functools.partial(_forget, session, old))
            elif pending is not None and pending.task.collision is not None:
                # §2.8.2: the peer finished its rekey of this IKE SA (which we answered)
                # before our colliding one returned; that decides which new SA stays, and
                # this one goes then
                pending.task.old_deleted = True
            else:
                session.after_response(lambda: session._shutdown("deleted by peer"))
            return []
        if d.protocol not in (ProtocolId.ESP, ProtocolId.AH):
            continue
        ours: list[bytes] = []
        for raw in d.spis:
            child = session.child_by_out(int.from_bytes(raw, "big"))
            if child is None:
                continue
            crossed = child.state == ChildSaState.DELETING  # both ends deleted at once (§1.4.1)
            adopt_collision(session, child)
            session.children.pop(child.spi_in, None)
            if child.reported:
                session.emit(ChildSaDown(child.spi_in, child.spi_out, "deleted by peer"))
            if not crossed:
                ours.append(_spi4(child.spi_in))
        if ours:
            out.append(DeletePayload(d.protocol, ours))
    return out
