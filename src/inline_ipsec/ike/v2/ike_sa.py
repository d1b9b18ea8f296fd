"""The keying state of one IKE SA (RFC 7296 §2.14 keys, §2.1 message IDs and retransmission
state, §2.18: replaced wholesale by an IKE SA rekey). Kept apart from the session so that the
rekey task can build a new one without importing the session."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from ..constants import ExchangeType
from ..keymat import IkeKeys
from ..message import IkeHeader
from ..protection import SkCipher
from ..proposals import Suite
from .fragments import Reassembly

if TYPE_CHECKING:  # pragma: no cover
    from .task import Task

__all__ = ["IkeSaKeys", "PendingRequest", "MAX_OLD_IKE_SAS"]

#: rekeyed-away IKE SAs kept while their Delete is exchanged (RFC 7296 §2.18); a peer that
#: rekeys without ever deleting cannot make the session keep more.
MAX_OLD_IKE_SAS = 4


@dataclass
class PendingRequest:
    """The request in flight (RFC 7296 §2.1: we are responsible for retransmitting it)."""

    task: Task
    mid: int
    data: list[bytes]   #: the datagrams of the request (several with RFC 7383 fragments)
    sent_at: float
    deadline: float
    tries: int = 0
    #: dead peer detection: the peer is dead if this passes without an answer (None: the
    #: ordinary retransmission limit decides)
    dead_at: Optional[float] = None
    #: a DPD probe: retransmitted every `dpd_interval` seconds
    probe: bool = False


class IkeSaKeys:
    """Keys, SPIs and message-ID counters of one IKE SA (replaced wholesale on IKE rekey)."""

    def __init__(self, spi_i: bytes, spi_r: bytes, initiator: bool) -> None:
        self.spi_i = spi_i
        self.spi_r = spi_r
        #: we are the original initiator of this IKE SA (the I flag, §3.1).
        self.initiator = initiator
        self.suite: Optional[Suite] = None
        self.keys: Optional[IkeKeys] = None
        self.sk_out: Optional[SkCipher] = None
        self.sk_in: Optional[SkCipher] = None
        self.nonce_i = b""
        self.nonce_r = b""
        self.next_mid = 0      #: ID of our next request
        self.peer_mid = 0      #: ID we expect on the peer's next request
        #: (mid, datagrams of our last response), for retransmitted requests (§2.1).
        self.cached: Optional[tuple[int, list[bytes]]] = None
        self.pending: Optional[PendingRequest] = None
        self.fragments = Reassembly()  #: RFC 7383 fragments being collected
        #: the IKE SA our rekey replaced by this one (a colliding rekey of it may still
        #: arrive, §2.8.2); only the latest link is kept
        self.rekeyed_from: Optional["IkeSaKeys"] = None

    @property
    def prf(self) -> int:
        assert self.suite is not None
        return self.suite.prf

    def install(self, suite: Suite, keys: IkeKeys, random: Callable[[int], bytes]) -> None:
        """Key the SK ciphers (§2.14: SK_ei/SK_ai protect initiator-to-responder traffic)."""
        self.suite, self.keys = suite, keys
        mine = (keys.sk_ei, keys.sk_ai) if self.initiator else (keys.sk_er, keys.sk_ar)
        theirs = (keys.sk_er, keys.sk_ar) if self.initiator else (keys.sk_ei, keys.sk_ai)
        self.sk_out = SkCipher(suite, *mine, random=random)
        self.sk_in = SkCipher(suite, *theirs, random=random)

    def matches(self, header: IkeHeader) -> bool:
        if header.spi_i != self.spi_i:
            return False
        if header.spi_r == self.spi_r:
            return True
        # IKE_SA_INIT: requests carry SPIr = 0; the first response brings the responder's SPI.
        return header.exchange == ExchangeType.IKE_SA_INIT and (
            header.spi_r == bytes(8) or self.spi_r == bytes(8))
