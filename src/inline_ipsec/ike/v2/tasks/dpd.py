"""Liveness check (RFC 7296 §1.4, §2.4): an empty INFORMATIONAL request; the peer answers
with an empty response. Unanswered after all retransmissions, the peer is dead and the IKE
SA and its child SAs are torn down by the session (`IkeSaDown(reason="dead peer")`); when
dead peer detection sent it, the retransmissions are its probes (`IkeV2Session` docstring).

    Initiator                         Responder
    -------------------------------------------------------------------
    HDR, SK {}  -->
                               <--  HDR, SK {}
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...constants import ExchangeType
from ...message import Message
from ...payloads import Payload
from ..task import Task, TaskResult

if TYPE_CHECKING:  # pragma: no cover
    from ..session import IkeV2Session


class DpdTask(Task):
    exchange = ExchangeType.INFORMATIONAL

    def __init__(self, session: "IkeV2Session", probe: bool = False) -> None:
        super().__init__()
        #: sent by dead peer detection (retransmitted every DPD interval, see session.py)
        self.probe = probe

    def build_i(self, session: "IkeV2Session") -> list[Payload]:
        return []

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        return TaskResult.DONE
