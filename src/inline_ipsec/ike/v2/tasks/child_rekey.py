"""CREATE_CHILD_SA rekeying a child SA (RFC 7296 §1.3.3, §2.8), make-before-break.

    Initiator                         Responder
    -------------------------------------------------------------------
    HDR, SK {N(REKEY_SA, ESP, old spi_in), SA, Ni, [KEi], TSi, TSr}  -->
                               <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
    (both: install the new SA pair, event ChildSaRekeyed)
    HDR, SK {D(ESP, old spi_in)}  -->
                               <--  HDR, SK {D(ESP, old spi_in of the responder)}
    (both: remove the old pair, event ChildSaDown)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...constants import ExchangeType, NotifyType
from ...errors import RemoteIkeError
from ...events import ChildSaRekeyed
from ...message import Message
from ...payloads import NoncePayload, Payload, notify
from ..task import Task, TaskResult
from .child_create import ChildInitiator, child_protocol, child_respond, invalid_ke_group
from .delete import DeleteChildTask
from .ike_init import NONCE_LEN, find_notify, one

if TYPE_CHECKING:  # pragma: no cover
    from ..session import IkeV2Session


class ChildRekeyTask(Task):
    exchange = ExchangeType.CREATE_CHILD_SA

    def __init__(self, session: "IkeV2Session", spi_in: int,
                 group: Optional[int] = None) -> None:
        super().__init__()
        self.spi_in = spi_in
        self.group = group
        self.neg: Optional[ChildInitiator] = None

    def build_i(self, session: "IkeV2Session") -> Optional[list[Payload]]:
        old = session.children.get(self.spi_in)
        if old is None or old.state != "installed":
            return None
        old.state = "rekeying"
        # PFS with the group the SA was last keyed with, unless the peer asked otherwise.
        group = self.group or (old.suite.dh or None)
        self.neg = ChildInitiator(session, old.config, with_pfs=True, group=group)
        self.neg.tsi, self.neg.tsr = list(old.local_ts), list(old.remote_ts)
        return [notify(NotifyType.REKEY_SA, b"", child_protocol(old.config),
                       self.spi_in.to_bytes(4, "big"))
                ] + self.neg.exchange_payloads()

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        old = session.children.get(self.spi_in)
        assert self.neg is not None
        group = invalid_ke_group(payloads, self.neg.proposals, self.neg.group)
        if group is not None and old is not None:
            old.state = "installed"
            session._queue.appendleft(ChildRekeyTask(session, self.spi_in, group))
            return TaskResult.DONE
        try:
            new = self.neg.complete(session, payloads, self.neg.nonce, None)
        except RemoteIkeError as exc:
            if old is not None and old.state == "rekeying":
                # Keep the old SA and try again later; the random delay breaks the tie when
                # both ends rekeyed at once and each answered TEMPORARY_FAILURE (§2.25).
                old.state = "installed"
                old.rekey_at = session.now + 10.0 + session.random(1)[0] / 8.0
            self.error = exc
            return TaskResult.FAILED
        if old is None:  # deleted meanwhile: the new pair stands alone
            return TaskResult.DONE
        old.state = "rekeyed"
        session.emit(ChildSaRekeyed(old.spi_in, old.spi_out, new.negotiated()))
        # The rekey initiator deletes the old SA (§2.8).
        session._queue.appendleft(DeleteChildTask(session, old.spi_in, "rekeyed"))
        return TaskResult.DONE


def respond(session: "IkeV2Session", msg: Message, payloads: list[Payload]) -> list[Payload]:
    """Responder side: the REKEY_SA SPI is the initiator's inbound SPI = our outbound."""
    rekey = find_notify(payloads, NotifyType.REKEY_SA)
    assert rekey is not None
    old = session.child_by_out(int.from_bytes(rekey.spi, "big")) if len(rekey.spi) == 4 \
        else None
    if old is None or old.state in ("deleting",):
        raise RemoteIkeError("rekey of an unknown child SA", NotifyType.CHILD_SA_NOT_FOUND)
    if old.state == "rekeying":
        # Simultaneous rekey (§2.8.1) is not resolved here; ask the peer to try again.
        raise RemoteIkeError("rekey collision", NotifyType.TEMPORARY_FAILURE)
    nonce_i = one(payloads, NoncePayload, "Nonce").nonce
    nonce_r = session.random(NONCE_LEN)
    new, out = child_respond(session, payloads, nonce_i, nonce_r, in_auth=False,
                             cfg_hint=old.config)
    old.state = "rekeyed"
    session.emit(ChildSaRekeyed(old.spi_in, old.spi_out, new.negotiated()))
    return [out[0], NoncePayload(nonce_r)] + out[1:]
