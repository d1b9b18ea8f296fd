"""IKEv2 header and generic payload chain codec (RFC 7296 §3.1, §3.2), stateless.

Everything read from the wire is bounds-checked; a malformed or truncated message raises
`RemoteIkeError` with notify hint INVALID_SYNTAX (or UNSUPPORTED_CRITICAL_PAYLOAD for an
unknown payload with the critical bit, RFC 7296 §2.5) and never any other exception.

The Encrypted payload (SK, §3.14) is the last payload of a protected message: its Next Payload
field names the first payload *inside* the ciphertext, and its body is left opaque here
(`EncryptedPayload`); `protection.py` decrypts it and calls `decode_chain` on the plaintext.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Sequence

from .constants import IKE_VERSION, HeaderFlag, NotifyType, PayloadType
from .errors import RemoteIkeError, syntax_error
from .payloads import (PAYLOAD_CLASSES, EncryptedFragmentPayload, EncryptedPayload, Payload,
                       UnknownPayload)

HEADER_LEN = 28
GENERIC_HEADER_LEN = 4
MAX_MESSAGE_LEN = 65535
_HEADER = struct.Struct("!8s8sBBBBII")


@dataclass
class IkeHeader:
    """RFC 7296 §3.1 IKE header."""

    spi_i: bytes
    spi_r: bytes
    next_payload: int
    exchange: int
    flags: int
    message_id: int
    length: int = 0
    version: int = IKE_VERSION

    @property
    def is_response(self) -> bool:
        return bool(self.flags & HeaderFlag.RESPONSE)

    @property
    def is_initiator(self) -> bool:
        """The sender is the original initiator of the IKE SA (I flag)."""
        return bool(self.flags & HeaderFlag.INITIATOR)

    def encode(self) -> bytes:
        return _HEADER.pack(self.spi_i, self.spi_r, self.next_payload, self.version,
                            self.exchange, self.flags, self.message_id, self.length)


@dataclass
class Message:
    """A decoded IKE message: header plus payloads (an SK payload, if any, stays encrypted)."""

    header: IkeHeader
    payloads: list[Payload] = field(default_factory=list)
    raw: bytes = b""

    def get(self, cls: type) -> list:
        return [p for p in self.payloads if isinstance(p, cls)]

    def first(self, cls: type):
        for p in self.payloads:
            if isinstance(p, cls):
                return p
        return None


def parse_header(data: bytes) -> IkeHeader:
    """Decode the fixed header and check version and length (RFC 7296 §3.1)."""
    if len(data) < HEADER_LEN:
        raise syntax_error(f"IKE message of {len(data)} bytes is shorter than the header")
    spi_i, spi_r, nxt, version, exch, flags, mid, length = _HEADER.unpack_from(data)
    if version >> 4 != 2:
        raise RemoteIkeError(f"IKE major version {version >> 4} is not 2",
                             NotifyType.INVALID_MAJOR_VERSION)
    if length != len(data):
        raise syntax_error(f"header length {length} does not match datagram length {len(data)}")
    return IkeHeader(spi_i, spi_r, nxt, exch, flags, mid, length, version)


_GENERIC = struct.Struct("!BBH")
_SK, _SKF, _NONE = int(PayloadType.SK), int(PayloadType.SKF), int(PayloadType.NONE)


def decode_chain(first_type: int, data: bytes, offset: int = 0) -> list[Payload]:
    """Decode a chain of generic payloads (RFC 7296 §3.2) starting with `first_type`.

    Stops after an SK payload, whose body runs to the end of `data`.
    """
    payloads: list[Payload] = []
    ptype = int(first_type)
    data = bytes(data)
    end = len(data)
    classes = PAYLOAD_CLASSES
    unpack = _GENERIC.unpack_from
    while ptype != _NONE:
        if end - offset < GENERIC_HEADER_LEN:
            raise syntax_error(f"payload {ptype} truncated: {end - offset} bytes left")
        nxt, crit, plen = unpack(data, offset)
        if plen < GENERIC_HEADER_LEN or offset + plen > end:
            raise syntax_error(f"payload {ptype} length {plen} out of bounds")
        body = data[offset + GENERIC_HEADER_LEN:offset + plen]
        if ptype == _SK or ptype == _SKF:
            if offset + plen != end:
                raise syntax_error("the Encrypted payload must be the last payload (§3.14)")
            if ptype == _SK:
                payloads.append(EncryptedPayload(first_inner=nxt, data=body, offset=offset))
                return payloads
            if len(body) < 4:
                raise syntax_error("Encrypted Fragment payload too short (RFC 7383 §2.5)")
            number, total = struct.unpack_from("!HH", body)
            if not 1 <= number <= total or (number > 1 and nxt != 0):
                raise syntax_error(f"bad fragment {number} of {total} (RFC 7383 §2.5)")
            payloads.append(EncryptedFragmentPayload(nxt, number, total, body[4:], offset))
            return payloads
        cls = classes.get(ptype)
        if cls is not None:
            p = cls.decode(body)
        else:
            critical = bool(crit & 0x80)
            if critical:
                raise RemoteIkeError(f"unsupported critical payload {ptype}",
                                     NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD)
            p = UnknownPayload(type=ptype, body=body, critical=critical)
        payloads.append(p)
        offset += plen
        ptype = nxt
    if offset != end:
        raise syntax_error(f"{end - offset} trailing bytes after the last payload")
    return payloads


def decode_message(data: bytes) -> Message:
    """Decode a whole IKE message (without a non-ESP marker). Raises only RemoteIkeError."""
    try:
        data = bytes(data)
        header = parse_header(data)
        payloads = decode_chain(header.next_payload, data, HEADER_LEN)
        return Message(header, payloads, data)
    except RemoteIkeError:
        raise
    except (ValueError, IndexError, struct.error, OverflowError, TypeError) as exc:
        # Defence in depth: any decoding slip is still the peer's malformed input.
        raise syntax_error(f"malformed IKE message: {exc}") from None


def encode_chain(payloads: Sequence[Payload], next_after: int = PayloadType.NONE) -> bytes:
    """Encode payloads as a generic chain; the last one's Next Payload is `next_after`."""
    parts = []
    pack = _GENERIC.pack
    last = len(payloads) - 1
    for i, p in enumerate(payloads):
        nxt = payloads[i + 1].ptype if i < last else next_after
        body = p.encode_body()
        crit = 0x80 if p.critical else 0
        parts.append(pack(nxt, crit, GENERIC_HEADER_LEN + len(body)))
        parts.append(body)
    return b"".join(parts)


def first_type(payloads: Sequence[Payload]) -> int:
    return payloads[0].ptype if payloads else PayloadType.NONE


def encode_message(header: IkeHeader, payloads: Sequence[Payload]) -> bytes:
    """Encode an unprotected message (IKE_SA_INIT); sets next_payload and length."""
    body = encode_chain(payloads)
    header.next_payload = first_type(payloads)
    header.length = HEADER_LEN + len(body)
    return header.encode() + body
