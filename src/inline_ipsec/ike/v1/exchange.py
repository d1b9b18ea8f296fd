"""The exchange protocol of the IKEv1 session: one object per exchange in flight (Phase 1 with
message ID 0, or one Quick Mode), holding its IV chain (RFC 2409 Appendix B), the last message
it processed (a retransmitted copy is answered with our cached reply instead of being
processed again, RFC 2408 §5.1 / strongSwan's task_manager_v1) and our last message with its
retransmission schedule.

Whoever waits for the peer's next message retransmits its own last one on a timer (the
initiator of each exchange, and the responder whose message needs a final reply: Aggressive
Mode message 2, Quick Mode message 2); whoever sent an exchange's final message answers a
retransmission of the message before it with that final message again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..errors import RemoteIkeError
from .isakmp import IsakmpMessage
from .protection import IvChain

if TYPE_CHECKING:  # pragma: no cover
    from .session import IkeV1Session


class Exchange:
    """Base class; subclasses implement `handle` (a new message of this exchange)."""

    #: ISAKMP exchange type (RFC 2408 §3.1).
    exchange_type: int = 0

    def __init__(self, session: "IkeV1Session", mid: int, initiator: bool) -> None:
        self.session = session
        self.mid = mid
        #: we sent the exchange's first message.
        self.initiator = initiator
        self.chain = IvChain(b"")
        #: the last message we processed (as received, after reassembly).
        self.last_in: Optional[bytes] = None
        #: our last message, as datagrams (fragments, non-ESP marker), to resend.
        self.out: list[bytes] = []
        #: the peer's message `out` answers (None: we sent it unprompted).
        self.out_for: Optional[bytes] = None
        #: when to retransmit `out` unless the peer's reply came; None: only on a duplicate.
        self.deadline: Optional[float] = None
        self.tries = 0
        #: the exchange completed; it stays cached for duplicates of the peer's last message.
        self.done = False
        self.finished_at: Optional[float] = None

    def handle(self, msg: IsakmpMessage) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_timeout(self) -> None:
        """All retransmissions went unanswered."""

    def pair_spis(self) -> tuple[int, int]:
        """(inbound, outbound) SPIs of the IPsec SA pair this exchange negotiates; zeros
        for an exchange that negotiates none (Phase 1, Informational)."""
        return (0, 0)

    def peer_refused(self, error: RemoteIkeError) -> None:
        """The peer answered with an error notification about this exchange (RFC 2408
        §3.14.1); only an exchange still waiting for the peer's answer ends on it."""

    def finish(self) -> None:
        self.done = True
        self.deadline = None
        self.finished_at = self.session.now

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mid={self.mid:#x}, initiator={self.initiator})"
