"""The task protocol (strongSwan libcharon's idea): one task per exchange we *initiate*.

A task builds the request payloads (`build_i`) and consumes the response (`process_i`). The
responder side of every exchange is a plain function `respond(session, msg, payloads)` in the
same task module, returning the response payloads. Task failures are results, not exceptions,
once they reach the session (h11-style local/remote errors).
"""
from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Optional

from ..constants import ExchangeType
from ..errors import IkeError
from ..message import Message
from ..payloads import Payload

if TYPE_CHECKING:  # pragma: no cover
    from .session import IkeV2Session


class TaskResult(enum.Enum):
    DONE = "done"      #: exchange complete
    RETRY = "retry"    #: send a new request of the same task (COOKIE, INVALID_KE_PAYLOAD)
    FAILED = "failed"  #: exchange failed; `Task.error` says why


class Task:
    """Base class: subclasses set `exchange` and implement build_i / process_i."""

    exchange: ExchangeType = ExchangeType.INFORMATIONAL
    #: a dead-peer probe (`DpdTask`): its retransmissions run on the DPD interval
    probe: bool = False
    #: what decides an IKE SA rekey crossed by the peer's (`IkeRekeyTask`, RFC 7296 §2.8.2);
    #: None for every other task
    collision: Optional[object] = None

    def __init__(self) -> None:
        self.error: Optional[IkeError] = None

    def build_i(self, session: "IkeV2Session") -> Optional[list[Payload]]:  # pragma: no cover
        """Request payloads, or None when the task became moot (nothing is sent)."""
        raise NotImplementedError

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:  # pragma: no cover
        raise NotImplementedError

    def on_timeout(self, session: "IkeV2Session") -> None:
        """Called when all retransmissions went unanswered (before the IKE SA is torn down)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StatelessReply(Exception):
    """Raised by an IKE_SA_INIT responder to answer without creating state: a COOKIE request
    (RFC 7296 §2.6) or INVALID_KE_PAYLOAD (§1.2). The message ID is not consumed."""

    def __init__(self, payloads: list[Payload]) -> None:
        super().__init__("stateless reply")
        self.payloads = payloads
