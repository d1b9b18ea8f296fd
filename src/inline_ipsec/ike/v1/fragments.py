"""IKE fragmentation for IKEv1 (the Cisco/racoon extension strongSwan and Junos use for
messages carrying large certificates; announced by the FRAGMENTATION vendor ID).

A complete ISAKMP message, encrypted if it is, is cut into pieces; each piece travels in an
unencrypted message of its own: the original cookies, exchange type Main (or Aggressive, when
the ISAKMP SA uses Aggressive Mode), message ID 0, and a single fragment payload with a
fragment ID, the fragment number (from 1) and the LAST flag on the final piece
(strongSwan's message.c `fragment`/`add_fragment_v1`). The receiver joins the pieces of one
fragment ID in number order and processes the result as if it had arrived whole.

Reassembly is bounded: one message at a time per IKE SA, at most `MAX_FRAGMENTS` pieces and
`MAX_MESSAGE` bytes; anything beyond is dropped and counted by the session.
"""
from __future__ import annotations

from typing import Optional

from ..errors import RemoteIkeError
from .constants import NotifyType
from .isakmp import HEADER_LEN, FragmentPayload, IsakmpHeader, encode

MAX_FRAGMENTS = 32
MAX_MESSAGE = 65535
#: fragment payload header: generic header (4) + ID (2) + number (1) + flags (1).
_FRAG_OVERHEAD = HEADER_LEN + 8


def split(message: bytes, exchange: int, frag_id: int, max_size: int) -> list[bytes]:
    """The fragment messages of `message` (already complete, encrypted if it is), each at
    most `max_size` bytes of ISAKMP message (IP/UDP headers and a non-ESP marker excluded)."""
    chunk = max_size - _FRAG_OVERHEAD
    if chunk < 64:
        raise ValueError(f"fragment size {max_size} is too small")
    pieces = [message[i:i + chunk] for i in range(0, len(message), chunk)]
    out = []
    for n, piece in enumerate(pieces, 1):
        hdr = IsakmpHeader(message[:8], message[8:16], 0, exchange, 0, 0)
        out.append(encode(hdr, [FragmentPayload(frag_id, n, n == len(pieces), piece)]))
    return out


class Reassembly:
    """Fragments of the one message being received on an IKE SA."""

    def __init__(self) -> None:
        self._id: Optional[int] = None
        self._parts: dict[int, bytes] = {}
        self._last: Optional[int] = None
        self._size = 0

    def add(self, frag: FragmentPayload) -> Optional[bytes]:
        """Store one fragment; returns the whole message once every piece is in. A fragment
        of another ID starts a new message (the sender gave up on the previous one)."""
        if frag.frag_id != self._id:
            self.reset()
            self._id = frag.frag_id
        if frag.number > MAX_FRAGMENTS or (self._last is not None and frag.number > self._last):
            self.reset()
            raise RemoteIkeError(f"fragment {frag.number} beyond the limit",
                                 NotifyType.PAYLOAD_MALFORMED)
        if frag.number in self._parts:
            return None                       # duplicate
        if frag.last:
            if any(n > frag.number for n in self._parts):
                self.reset()
                raise RemoteIkeError("fragments after the last one",
                                     NotifyType.PAYLOAD_MALFORMED)
            self._last = frag.number
        self._size += len(frag.data)
        if self._size > MAX_MESSAGE:
            self.reset()
            raise RemoteIkeError("fragmented message too large", NotifyType.PAYLOAD_MALFORMED)
        self._parts[frag.number] = frag.data
        if self._last is None or len(self._parts) != self._last:
            return None
        whole = b"".join(self._parts[n] for n in range(1, self._last + 1))
        self.reset()
        return whole

    def reset(self) -> None:
        self._id, self._parts, self._last, self._size = None, {}, None, 0

    @property
    def pending(self) -> int:
        """Fragments held (bounded by MAX_FRAGMENTS)."""
        return len(self._parts)
