"""RFC 7383 IKEv2 message fragmentation: reassembly of Encrypted Fragment (SKF) payloads.

Each fragment is verified and decrypted on its own (§2.6); the plaintexts are joined in
fragment-number order and decoded as one payload chain whose first type is the Next Payload
field of fragment 1 (§2.5). Sending is `SkCipher.seal_fragments` in `protection.py`.
"""
from __future__ import annotations

from typing import Optional

from ..constants import NotifyType, PayloadType
from ..errors import RemoteIkeError
from ..message import Message, decode_chain
from ..payloads import Payload
from ..protection import SkCipher

#: more fragments than this for one message are refused (RFC 7383 §2.6 "reasonable limit").
MAX_FRAGMENTS = 64
#: messages collected at once on one IKE SA: the session only reassembles the request it
#: expects next and the response to its request in flight (RFC 7296 §2.3 window of one).
MAX_MESSAGES = 2
#: plaintext bytes one message may collect before it is given up (a certificate chain fits).
MAX_MESSAGE_BYTES = 128 * 1024


class Reassembly:
    """Fragments of the messages being received on one IKE SA, by (is_response, msg ID)."""

    def __init__(self) -> None:
        self._parts: dict[tuple[bool, int], dict[int, bytes]] = {}
        self._meta: dict[tuple[bool, int], tuple[int, int]] = {}  # total, first payload type

    def add(self, is_response: bool, msg: Message, sk_in: SkCipher
            ) -> Optional[list[Payload]]:
        """Verify one fragment; returns the message's payloads once all fragments are in."""
        skf, plain = sk_in.open_fragment(msg)
        if skf.total > MAX_FRAGMENTS:
            raise RemoteIkeError(f"{skf.total} fragments", NotifyType.INVALID_SYNTAX)
        key = (is_response, msg.header.message_id)
        meta = self._meta.get(key)
        if meta is None or meta[0] != skf.total:   # new message, or a resend with new sizes
            if key not in self._parts and len(self._parts) >= MAX_MESSAGES:
                oldest = next(iter(self._parts))
                del self._parts[oldest], self._meta[oldest]
            self._parts[key] = {}
            meta = (skf.total, PayloadType.NONE)
        if skf.number == 1:
            meta = (skf.total, skf.first_inner)
        self._meta[key] = meta
        parts = self._parts[key]
        parts[skf.number] = plain
        if sum(len(p) for p in parts.values()) > MAX_MESSAGE_BYTES:
            del self._parts[key], self._meta[key]
            raise RemoteIkeError(f"fragmented message larger than {MAX_MESSAGE_BYTES} bytes",
                                 NotifyType.INVALID_SYNTAX)
        if len(parts) < skf.total:
            return None
        del self._parts[key], self._meta[key]
        return decode_chain(meta[1], b"".join(parts[n] for n in range(1, skf.total + 1)))

    def __len__(self) -> int:
        return len(self._parts)
