"""ISAKMP codec (RFC 2408 §3): the header, the generic payload chain and one dataclass per
payload body, stateless and bounds-checked.

Every length read from the wire is checked; a malformed or truncated message raises
`RemoteIkeError` with an IKEv1 notify hint (PAYLOAD_MALFORMED, INVALID_PAYLOAD_TYPE,
BAD_PROPOSAL_SYNTAX, INVALID_MAJOR_VERSION, ...; RFC 2408 §3.14.1) and never any other
exception. Decoded payloads keep the exact bytes they came in (`raw`, generic header included),
because IKEv1 hashes the payloads as sent: SAi_b and IDii_b in HASH_I (RFC 2409 §5), and the
payloads after HASH in Quick Mode and Informational exchanges (RFC 2409 §5.5, §5.7).

An encrypted message (E flag, RFC 2408 §3.1) has the whole payload chain encrypted: `decode`
returns it opaque (`IsakmpMessage.encrypted`); the session decrypts it (`protection.py`) and
calls `decode_chain` on the plaintext, which may end in padding (§3.1: the message length
includes it), so `allow_padding` lets the chain stop before the end of the buffer.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Sequence, Union

from ..errors import RemoteIkeError
from ..payloads import TrafficSelector
from .constants import ISAKMP_VERSION, DOI_IPSEC, Flag, IdType, NotifyType, PayloadType

HEADER_LEN = 28
GENERIC_HEADER_LEN = 4
#: RFC 2409 §5: "the length of nonce payload MUST be between 8 and 256 bytes inclusive".
NONCE_MIN, NONCE_MAX = 8, 256
#: more payloads than this in one message is not a message we want to process.
MAX_PAYLOADS = 64
#: more proposals / transforms / attributes than this in one SA payload are refused.
MAX_PROPOSALS = 64
MAX_TRANSFORMS = 64
MAX_ATTRIBUTES = 32
_HEADER = struct.Struct("!8s8sBBBBII")
_ATTR = struct.Struct("!HH")

IpAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def malformed(message: str) -> RemoteIkeError:
    """A malformed or truncated ISAKMP message (RFC 2408 §3.14.1 PAYLOAD-MALFORMED)."""
    return RemoteIkeError(message, NotifyType.PAYLOAD_MALFORMED)


class _Reader:
    """Bounds-checked reader over a payload body."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise malformed(f"{self.what}: truncated (need {n} bytes at {self.pos}, "
                            f"have {len(self.data) - self.pos})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


# --- header: RFC 2408 §3.1 -------------------------------------------------------------------

@dataclass
class IsakmpHeader:
    """RFC 2408 §3.1 ISAKMP header; the cookies are the ISAKMP SA's SPIs."""

    cky_i: bytes
    cky_r: bytes
    next_payload: int
    exchange: int
    flags: int
    message_id: int
    length: int = 0
    version: int = ISAKMP_VERSION

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & Flag.ENCRYPTION)

    @property
    def commit(self) -> bool:
        return bool(self.flags & Flag.COMMIT)

    def encode(self) -> bytes:
        return _HEADER.pack(self.cky_i, self.cky_r, self.next_payload, self.version,
                            self.exchange, self.flags, self.message_id, self.length)


def parse_header(data: bytes) -> IsakmpHeader:
    """Decode the fixed header; check the major version and the length (RFC 2408 §3.1,
    §5.2: a wrong major version is INVALID-MAJOR-VERSION)."""
    if len(data) < HEADER_LEN:
        raise malformed(f"ISAKMP message of {len(data)} bytes is shorter than the header")
    cky_i, cky_r, nxt, version, exch, flags, mid, length = _HEADER.unpack_from(data)
    if version >> 4 != 1:
        raise RemoteIkeError(f"ISAKMP major version {version >> 4} is not 1",
                             NotifyType.INVALID_MAJOR_VERSION)
    if length != len(data):
        raise RemoteIkeError(f"header length {length} does not match the datagram's "
                             f"{len(data)} bytes", NotifyType.UNEQUAL_PAYLOAD_LENGTHS)
    if cky_i == bytes(8):
        raise RemoteIkeError("initiator cookie is zero (RFC 2408 §2.5.3)",
                             NotifyType.INVALID_COOKIE)
    return IsakmpHeader(cky_i, cky_r, nxt, exch, flags, mid, length, version)


# --- payload base ----------------------------------------------------------------------------

class Payload:
    """Base class; subclasses are dataclasses with a class-level `ptype`. `raw` is set on
    decoded payloads: the payload as received, generic header included."""

    ptype: ClassVar[int] = PayloadType.NONE
    raw: bytes = b""

    def encode_body(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def body(self) -> bytes:
        """The payload body as received (decoded payloads) or as it will be sent."""
        return self.raw[GENERIC_HEADER_LEN:] if self.raw else self.encode_body()


# --- SA, proposal, transform: RFC 2408 §3.4-§3.6, RFC 2407 §4.6.1 ---------------------------

@dataclass(frozen=True)
class Attribute:
    """RFC 2408 §3.3 data attribute: TV (AF=1, 16-bit value) or TLV (AF=0, variable)."""

    type: int
    value: int
    #: force the TLV form (e.g. life durations, RFC 2409 Appendix A "V" classes); the form
    #: does not change what the attribute means, so it is not compared.
    tlv: bool = field(default=False, compare=False)

    def encode(self) -> bytes:
        if not self.tlv and 0 <= self.value <= 0xFFFF:
            return struct.pack("!HH", 0x8000 | self.type, self.value)
        n = max(4, (self.value.bit_length() + 7) // 8)
        return struct.pack("!HH", self.type & 0x7FFF, n) + self.value.to_bytes(n, "big")


def decode_attributes(data: bytes) -> tuple[Attribute, ...]:
    """An attribute list (RFC 2408 §3.3), e.g. the data of RESPONDER-LIFETIME."""
    return _decode_attributes(_Reader(data, "attribute list"))


def _decode_attributes(r: _Reader) -> tuple[Attribute, ...]:
    """The rest of `r` as data attributes (a hot path: struct on offsets, bounds checked)."""
    data, pos, end = r.data, r.pos, len(r.data)
    attrs: list[Attribute] = []
    while pos < end:
        if len(attrs) >= MAX_ATTRIBUTES:
            raise malformed(f"more than {MAX_ATTRIBUTES} attributes in a transform")
        if end - pos < 4:
            raise malformed(f"{r.what}: truncated attribute at {pos}")
        atype, value = _ATTR.unpack_from(data, pos)
        pos += 4
        if atype & 0x8000:
            attrs.append(Attribute(atype & 0x7FFF, value))
            continue
        if value > 8:
            raise RemoteIkeError(f"attribute {atype} of {value} bytes",
                                 NotifyType.ATTRIBUTES_NOT_SUPPORTED)
        if end - pos < value:
            raise malformed(f"{r.what}: attribute {atype} truncated")
        attrs.append(Attribute(atype, int.from_bytes(data[pos:pos + value], "big"), tlv=True))
        pos += value
    r.pos = pos
    return tuple(attrs)


@dataclass(frozen=True)
class Transform:
    """RFC 2408 §3.6 transform payload (inside a proposal)."""

    num: int
    transform_id: int
    attributes: tuple[Attribute, ...] = ()

    def attr(self, atype: int) -> Optional[int]:
        """The value of the first attribute of class `atype`, or None."""
        for a in self.attributes:
            if a.type == atype:
                return a.value
        return None

    def encode(self, last: bool) -> bytes:
        body = struct.pack("!BBH", self.num, self.transform_id, 0) + \
            b"".join(a.encode() for a in self.attributes)
        return struct.pack("!BBH", PayloadType.NONE if last else PayloadType.TRANSFORM, 0,
                           4 + len(body)) + body


@dataclass
class Proposal:
    """RFC 2408 §3.5 proposal payload (inside an SA payload)."""

    num: int
    protocol: int
    spi: bytes
    transforms: list[Transform]

    def encode(self, last: bool) -> bytes:
        trans = b"".join(t.encode(i == len(self.transforms) - 1)
                         for i, t in enumerate(self.transforms))
        body = struct.pack("!BBBB", self.num, self.protocol, len(self.spi),
                           len(self.transforms)) + self.spi + trans
        return struct.pack("!BBH", PayloadType.NONE if last else PayloadType.PROPOSAL, 0,
                           4 + len(body)) + body


def _decode_transform(r: _Reader) -> tuple[int, Transform]:
    nxt, _, length = r.u8(), r.u8(), r.u16()
    if length < 8 or nxt not in (PayloadType.NONE, PayloadType.TRANSFORM):
        raise RemoteIkeError(f"transform payload length {length} / next {nxt} invalid",
                             NotifyType.BAD_PROPOSAL_SYNTAX)
    t = _Reader(r.take(length - 4), "transform payload")
    num, tid = t.u8(), t.u8()
    t.take(2)
    return nxt, Transform(num, tid, _decode_attributes(t))


@dataclass
class SaPayload(Payload):
    """RFC 2408 §3.4 Security Association payload with the IPsec DOI situation (RFC 2407
    §4.6.1). `raw[4:]` is SAi_b of RFC 2409 §5 for the initiator's SA payload."""

    ptype: ClassVar[int] = PayloadType.SA
    proposals: list[Proposal] = field(default_factory=list)
    doi: int = DOI_IPSEC
    situation: int = 1

    def encode_body(self) -> bytes:
        return struct.pack("!II", self.doi, self.situation) + b"".join(
            p.encode(i == len(self.proposals) - 1) for i, p in enumerate(self.proposals))

    @classmethod
    def decode(cls, body: bytes) -> "SaPayload":
        r = _Reader(body, "SA payload")
        doi, situation = r.u32(), r.u32()
        if doi != DOI_IPSEC:
            raise RemoteIkeError(f"DOI {doi} is not IPsec", NotifyType.DOI_NOT_SUPPORTED)
        if situation != 1:
            raise RemoteIkeError(f"situation {situation} is not SIT_IDENTITY_ONLY",
                                 NotifyType.SITUATION_NOT_SUPPORTED)
        proposals = []
        nxt = PayloadType.PROPOSAL
        while nxt == PayloadType.PROPOSAL:
            if len(proposals) >= MAX_PROPOSALS:
                raise malformed(f"more than {MAX_PROPOSALS} proposals")
            nxt, _, length = r.u8(), r.u8(), r.u16()
            if length < 8 or nxt not in (PayloadType.NONE, PayloadType.PROPOSAL):
                raise RemoteIkeError(f"proposal payload length {length} / next {nxt} invalid",
                                     NotifyType.BAD_PROPOSAL_SYNTAX)
            p = _Reader(r.take(length - 4), "proposal payload")
            num, proto, spi_size, count = p.u8(), p.u8(), p.u8(), p.u8()
            spi = p.take(spi_size)
            if count > MAX_TRANSFORMS:
                raise malformed(f"{count} transforms in one proposal")
            transforms = []
            tnext = PayloadType.TRANSFORM
            for i in range(count):
                if tnext != PayloadType.TRANSFORM:
                    raise RemoteIkeError("transform count does not match the chain",
                                         NotifyType.BAD_PROPOSAL_SYNTAX)
                tnext, t = _decode_transform(p)
                transforms.append(t)
            if count and tnext != PayloadType.NONE or p.left:
                raise RemoteIkeError("trailing data or transforms after the last transform",
                                     NotifyType.BAD_PROPOSAL_SYNTAX)
            proposals.append(Proposal(num, proto, spi, transforms))
        if r.left:
            raise RemoteIkeError("trailing bytes after the last proposal",
                                 NotifyType.BAD_PROPOSAL_SYNTAX)
        if not proposals:
            raise RemoteIkeError("SA payload without a proposal",
                                 NotifyType.BAD_PROPOSAL_SYNTAX)
        return cls(proposals, doi, situation)


# --- simple payloads -------------------------------------------------------------------------

@dataclass
class KePayload(Payload):
    """RFC 2408 §3.7 Key Exchange: the DH public value only (the group is in the SA)."""

    ptype: ClassVar[int] = PayloadType.KE
    data: bytes = b""

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, body: bytes) -> "KePayload":
        if not body:
            raise malformed("empty KE payload")
        return cls(body)


@dataclass
class NoncePayload(Payload):
    """RFC 2408 §3.13 Nonce; 8..256 bytes (RFC 2409 §5)."""

    ptype: ClassVar[int] = PayloadType.NONCE
    nonce: bytes = b""

    def encode_body(self) -> bytes:
        return self.nonce

    @classmethod
    def decode(cls, body: bytes) -> "NoncePayload":
        if not NONCE_MIN <= len(body) <= NONCE_MAX:
            raise malformed(f"nonce of {len(body)} bytes (must be 8..256, RFC 2409 §5)")
        return cls(body)


@dataclass
class IdPayload(Payload):
    """RFC 2408 §3.8 Identification with the IPsec DOI fields (RFC 2407 §4.6.2): ID type,
    protocol and port. `raw[4:]` is IDii_b / IDir_b of RFC 2409 §5."""

    ptype: ClassVar[int] = PayloadType.ID
    id_type: int = IdType.ID_FQDN
    data: bytes = b""
    protocol: int = 0
    port: int = 0

    def encode_body(self) -> bytes:
        return struct.pack("!BBH", self.id_type, self.protocol, self.port) + self.data

    @classmethod
    def decode(cls, body: bytes) -> "IdPayload":
        r = _Reader(body, "ID payload")
        id_type, proto, port = r.u8(), r.u8(), r.u16()
        return cls(id_type, r.rest(), proto, port)

    # -- Quick Mode client identities (RFC 2409 §5.5, RFC 2407 §4.6.2) --------------------
    @classmethod
    def from_selector(cls, ts: TrafficSelector) -> "IdPayload":
        """The ID payload naming a traffic selector: a host address, a subnet or a range; one
        port (0 = any) and one protocol (0 = any), as RFC 2407 §4.6.2 allows."""
        v4 = ts.start_addr.version == 4
        port = ts.start_port if ts.start_port == ts.end_port else 0
        if ts.start_addr == ts.end_addr:
            return cls(IdType.ID_IPV4_ADDR if v4 else IdType.ID_IPV6_ADDR,
                       ts.start_addr.packed, ts.ip_proto, port)
        nets = list(ipaddress.summarize_address_range(ts.start_addr, ts.end_addr))
        if len(nets) == 1:
            net = nets[0]
            return cls(IdType.ID_IPV4_ADDR_SUBNET if v4 else IdType.ID_IPV6_ADDR_SUBNET,
                       net.network_address.packed + net.netmask.packed, ts.ip_proto, port)
        return cls(IdType.ID_IPV4_ADDR_RANGE if v4 else IdType.ID_IPV6_ADDR_RANGE,
                   ts.start_addr.packed + ts.end_addr.packed, ts.ip_proto, port)

    def to_selector(self) -> TrafficSelector:
        """The traffic selector this client ID names; INVALID-ID-INFORMATION if it is not an
        address, subnet or range (RFC 2409 §5.5)."""
        t, d = self.id_type, self.data
        sizes = {IdType.ID_IPV4_ADDR: 4, IdType.ID_IPV6_ADDR: 16,
                 IdType.ID_IPV4_ADDR_SUBNET: 8, IdType.ID_IPV6_ADDR_SUBNET: 32,
                 IdType.ID_IPV4_ADDR_RANGE: 8, IdType.ID_IPV6_ADDR_RANGE: 32}
        if sizes.get(t) != len(d):
            raise RemoteIkeError(f"client ID of type {t} with {len(d)} bytes",
                                 NotifyType.INVALID_ID_INFORMATION)
        half = len(d) // 2
        if t in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
            start = end = ipaddress.ip_address(d)
        elif t in (IdType.ID_IPV4_ADDR_SUBNET, IdType.ID_IPV6_ADDR_SUBNET):
            mask = int.from_bytes(d[half:], "big")
            bits = half * 8
            if mask != (((1 << bits) - 1) ^ ((1 << (bits - bin(mask).count("1"))) - 1)):
                raise RemoteIkeError("subnet ID with a non-contiguous mask",
                                     NotifyType.INVALID_ID_INFORMATION)
            base = int.from_bytes(d[:half], "big") & mask
            start = ipaddress.ip_address(base.to_bytes(half, "big"))
            end = ipaddress.ip_address((base | (~mask & ((1 << bits) - 1))).to_bytes(half,
                                                                                     "big"))
        else:
            start, end = ipaddress.ip_address(d[:half]), ipaddress.ip_address(d[half:])
            if int(start) > int(end):
                raise RemoteIkeError("range ID whose start is above its end",
                                     NotifyType.INVALID_ID_INFORMATION)
        lo, hi = (self.port, self.port) if self.port else (0, 65535)
        return TrafficSelector(start, end, self.protocol, lo, hi)


@dataclass
class CertPayload(Payload):
    """RFC 2408 §3.9 Certificate."""

    ptype: ClassVar[int] = PayloadType.CERT
    encoding: int = 0
    data: bytes = b""

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.data

    @classmethod
    def decode(cls, body: bytes) -> "CertPayload":
        r = _Reader(body, "CERT payload")
        return cls(r.u8(), r.rest())


@dataclass
class CertReqPayload(CertPayload):
    """RFC 2408 §3.10 Certificate Request (data: a DER Distinguished Name of a CA, or empty)."""

    ptype: ClassVar[int] = PayloadType.CERTREQ


@dataclass
class HashPayload(Payload):
    """RFC 2408 §3.11 Hash."""

    ptype: ClassVar[int] = PayloadType.HASH
    data: bytes = b""

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, body: bytes) -> "HashPayload":
        return cls(body)


@dataclass
class SigPayload(HashPayload):
    """RFC 2408 §3.12 Signature."""

    ptype: ClassVar[int] = PayloadType.SIG


@dataclass
class NatDPayload(HashPayload):
    """RFC 3947 §3.2 NAT-Discovery: HASH(CKY-I | CKY-R | IP | Port)."""

    ptype: ClassVar[int] = PayloadType.NAT_D


@dataclass
class NotifyPayload(Payload):
    """RFC 2408 §3.14 Notification (DOI, protocol, SPI, type, data)."""

    ptype: ClassVar[int] = PayloadType.NOTIFY
    notify_type: int = 0
    data: bytes = b""
    protocol: int = 0
    spi: bytes = b""
    doi: int = DOI_IPSEC

    def encode_body(self) -> bytes:
        return struct.pack("!IBBH", self.doi, self.protocol, len(self.spi),
                           self.notify_type) + self.spi + self.data

    @classmethod
    def decode(cls, body: bytes) -> "NotifyPayload":
        r = _Reader(body, "Notification payload")
        doi, proto, spi_size, ntype = r.u32(), r.u8(), r.u8(), r.u16()
        spi = r.take(spi_size)
        return cls(ntype, r.rest(), proto, spi, doi)


@dataclass
class DeletePayload(Payload):
    """RFC 2408 §3.15 Delete: ISAKMP (16-byte SPI = both cookies) or ESP/AH (4-byte SPIs)."""

    ptype: ClassVar[int] = PayloadType.DELETE
    protocol: int = 3
    spis: list[bytes] = field(default_factory=list)
    doi: int = DOI_IPSEC

    def encode_body(self) -> bytes:
        size = len(self.spis[0]) if self.spis else 4
        return struct.pack("!IBBH", self.doi, self.protocol, size, len(self.spis)) + \
            b"".join(self.spis)

    @classmethod
    def decode(cls, body: bytes) -> "DeletePayload":
        r = _Reader(body, "Delete payload")
        doi, proto, size, count = r.u32(), r.u8(), r.u8(), r.u16()
        if count and not size:
            raise malformed("Delete payload with SPIs of size 0")
        spis = [r.take(size) for _ in range(count)]
        if r.left:
            raise malformed("trailing bytes in Delete payload")
        return cls(proto, spis, doi)


@dataclass
class VendorIdPayload(Payload):
    """RFC 2408 §3.16 Vendor ID."""

    ptype: ClassVar[int] = PayloadType.VENDOR_ID
    data: bytes = b""

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, body: bytes) -> "VendorIdPayload":
        return cls(body)


@dataclass
class NatOaPayload(Payload):
    """RFC 3947 §5.2 NAT Original Address: ID type (IPv4/IPv6 address), 3 reserved, address."""

    ptype: ClassVar[int] = PayloadType.NAT_OA
    id_type: int = IdType.ID_IPV4_ADDR
    data: bytes = b""

    def encode_body(self) -> bytes:
        return struct.pack("!B3x", self.id_type) + self.data

    @classmethod
    def decode(cls, body: bytes) -> "NatOaPayload":
        r = _Reader(body, "NAT-OA payload")
        id_type = r.u8()
        r.take(3)
        data = r.rest()
        if {IdType.ID_IPV4_ADDR: 4, IdType.ID_IPV6_ADDR: 16}.get(id_type) != len(data):
            raise malformed(f"NAT-OA of type {id_type} with {len(data)} bytes")
        return cls(id_type, data)


@dataclass
class FragmentPayload(Payload):
    """The IKE fragment payload (Cisco/racoon extension, as strongSwan's fragment_payload.c):
    fragment ID (2), fragment number (1, from 1), flags (1; 0x01 = last), data."""

    ptype: ClassVar[int] = PayloadType.FRAGMENT
    frag_id: int = 1
    number: int = 1
    last: bool = False
    data: bytes = b""

    def encode_body(self) -> bytes:
        return struct.pack("!HBB", self.frag_id, self.number, 1 if self.last else 0) + \
            self.data

    @classmethod
    def decode(cls, body: bytes) -> "FragmentPayload":
        r = _Reader(body, "fragment payload")
        frag_id, number, flags = r.u16(), r.u8(), r.u8()
        if number == 0:
            raise malformed("fragment number 0")
        return cls(frag_id, number, bool(flags & 1), r.rest())


@dataclass
class UnknownPayload(Payload):
    """A payload type we do not implement (kept so the chain stays intact)."""

    type: int = 0
    payload: bytes = b""

    @property
    def ptype(self) -> int:  # type: ignore[override]
        return self.type

    def encode_body(self) -> bytes:
        return self.payload


PAYLOAD_CLASSES: dict[int, Any] = {
    cls.ptype: cls for cls in (SaPayload, KePayload, NoncePayload, IdPayload, CertPayload,
                               CertReqPayload, HashPayload, SigPayload, NotifyPayload,
                               DeletePayload, VendorIdPayload, NatDPayload, NatOaPayload,
                               FragmentPayload)
}


# --- chains and messages ---------------------------------------------------------------------

def decode_chain(first_type: int, data: bytes, offset: int = 0,
                 allow_padding: bool = False) -> list[Payload]:
    """Decode a generic payload chain (RFC 2408 §3.2) starting with `first_type`.

    With `allow_padding` the chain may end before the buffer (the padding of an encrypted
    message, RFC 2408 §3.1), otherwise trailing bytes are an error."""
    payloads: list[Payload] = []
    ptype = first_type
    end = len(data)
    while ptype != PayloadType.NONE:
        if len(payloads) >= MAX_PAYLOADS:
            raise malformed(f"more than {MAX_PAYLOADS} payloads")
        if ptype in (PayloadType.PROPOSAL, PayloadType.TRANSFORM):
            raise RemoteIkeError(f"payload type {ptype} outside an SA payload",
                                 NotifyType.INVALID_PAYLOAD_TYPE)
        if end - offset < GENERIC_HEADER_LEN:
            raise malformed(f"payload {ptype} truncated: {end - offset} bytes left")
        nxt, _, plen = struct.unpack_from("!BBH", data, offset)
        if plen < GENERIC_HEADER_LEN or offset + plen > end:
            raise malformed(f"payload {ptype} length {plen} out of bounds")
        raw = bytes(data[offset:offset + plen])
        cls = PAYLOAD_CLASSES.get(ptype)
        p = UnknownPayload(type=ptype, payload=raw[4:]) if cls is None else \
            cls.decode(raw[4:])
        p.raw = raw
        payloads.append(p)
        offset += plen
        ptype = nxt
    if offset != end and not allow_padding:
        raise malformed(f"{end - offset} trailing bytes after the last payload")
    return payloads


def encode_chain(payloads: Sequence[Payload]) -> bytes:
    """Encode payloads as a generic chain (the last one's Next Payload is NONE)."""
    out = bytearray()
    for i, p in enumerate(payloads):
        nxt = payloads[i + 1].ptype if i + 1 < len(payloads) else PayloadType.NONE
        body = p.encode_body()
        out += struct.pack("!BBH", nxt, 0, GENERIC_HEADER_LEN + len(body)) + body
    return bytes(out)


def first_type(payloads: Sequence[Payload]) -> int:
    return payloads[0].ptype if payloads else PayloadType.NONE


@dataclass
class IsakmpMessage:
    """A decoded ISAKMP message. For an encrypted one, `payloads` is empty until the session
    decrypts `encrypted` (the ciphertext after the header)."""

    header: IsakmpHeader
    payloads: list[Payload] = field(default_factory=list)
    raw: bytes = b""

    @property
    def encrypted(self) -> bytes:
        return self.raw[HEADER_LEN:] if self.header.encrypted else b""

    def get(self, cls: type) -> list:
        return [p for p in self.payloads if type(p) is cls]

    def first(self, cls: type) -> Any:
        for p in self.payloads:
            if type(p) is cls:
                return p
        return None


def decode(data: bytes) -> IsakmpMessage:
    """Decode an ISAKMP message (without a non-ESP marker); an encrypted body stays opaque
    (a fragment message is never encrypted, whatever its flags say, as strongSwan treats
    racoon's). Raises only RemoteIkeError."""
    try:
        data = bytes(data)
        header = parse_header(data)
        if header.next_payload == PayloadType.FRAGMENT:
            header.flags &= ~Flag.ENCRYPTION
        if header.encrypted:
            return IsakmpMessage(header, [], data)
        return IsakmpMessage(header, decode_chain(header.next_payload, data, HEADER_LEN), data)
    except RemoteIkeError:
        raise
    except (ValueError, IndexError, struct.error, OverflowError, TypeError) as exc:
        # Defence in depth: any decoding slip is still the peer's malformed input.
        raise malformed(f"malformed ISAKMP message: {exc}") from None


def encode(header: IsakmpHeader, payloads: Sequence[Payload]) -> bytes:
    """Encode an unencrypted message; sets the header's next payload and length."""
    body = encode_chain(payloads)
    header.next_payload = first_type(payloads)
    header.length = HEADER_LEN + len(body)
    return header.encode() + body
