"""One dataclass per IKEv2 payload body (RFC 7296 §3.3-§3.15).

Each class has `ptype`, `encode_body() -> bytes` and `decode(body) -> instance`. Decoding is
bounds-checked and raises only `RemoteIkeError(INVALID_SYNTAX)`; the generic header (next
payload, critical bit, length) is handled by `message.py`.
"""
from __future__ import annotations

import functools
import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Union

from .constants import IdType, NotifyType, PayloadType, ProtocolId, TransformAttr, TsType
from .errors import syntax_error

IpAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


class _Reader:
    """Bounds-checked reader over a payload body."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise syntax_error(f"{self.what}: truncated (need {n} bytes at {self.pos}, "
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


class Payload:
    """Base class; subclasses are dataclasses with a class-level `ptype`."""

    ptype: ClassVar[int] = PayloadType.NONE
    #: the critical bit of the generic header (RFC 7296 §3.2): set only on payloads kept
    #: unparsed (`UnknownPayload`); every payload we implement is sent non-critical
    critical = False

    def encode_body(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError


# --- SA payload: RFC 7296 §3.3 -------------------------------------------------------------

@dataclass(frozen=True)
class Transform:
    """RFC 7296 §3.3.2; `key_length` is the Key Length attribute (§3.3.5) in bits, if any."""

    type: int
    id: int
    key_length: Optional[int] = None

    def encode(self, last: bool) -> bytes:
        attrs = b""
        if self.key_length is not None:
            attrs = struct.pack("!HH", 0x8000 | TransformAttr.KEY_LENGTH, self.key_length)
        return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attrs), self.type, 0,
                           self.id) + attrs


@dataclass
class Proposal:
    """RFC 7296 §3.3.1 proposal substructure."""

    num: int
    protocol: int
    spi: bytes
    transforms: list[Transform]

    def encode(self, last: bool) -> bytes:
        body = b"".join(t.encode(i == len(self.transforms) - 1)
                        for i, t in enumerate(self.transforms))
        return struct.pack("!BBHBBBB", 0 if last else 2, 0, 8 + len(self.spi) + len(body),
                           self.num, self.protocol, len(self.spi), len(self.transforms)
                           ) + self.spi + body

    def of_type(self, ttype: int) -> list[Transform]:
        return [t for t in self.transforms if t.type == ttype]


_TRANSFORM = struct.Struct("!BxHBxH")      # last, length, type, ID (§3.3.2)
_PROPOSAL = struct.Struct("!BxHBBBB")      # last, length, num, protocol, SPI size, count


def _decode_transforms(data: bytes, pos: int, end: int, count: int
                       ) -> tuple[list[Transform], int]:
    """`count` transforms from data[pos:end] (§3.3.2, bounds-checked with offsets, no copies;
    the SA payload is read for every IKE_SA_INIT and CREATE_CHILD_SA)."""
    transforms = []
    for n in range(count):
        if end - pos < 8:
            raise syntax_error(f"transform: truncated ({end - pos} bytes left)")
        last, tlen, ttype, tid = _TRANSFORM.unpack_from(data, pos)
        if tlen < 8 or last not in (0, 3) or pos + tlen > end:
            raise syntax_error(f"transform length {tlen} / last {last} invalid")
        if (last == 0) != (n == count - 1):
            raise syntax_error("transform count does not match the last flags")
        key_length = None
        a, a_end = pos + 8, pos + tlen
        while a < a_end:
            if a_end - a < 4:
                raise syntax_error("transform attribute: truncated")
            atype, value = struct.unpack_from("!HH", data, a)
            if atype & 0x8000:  # TV format
                if atype & 0x7FFF == TransformAttr.KEY_LENGTH:
                    key_length = value
                a += 4
            else:  # TLV format: value is the length
                if a + 4 + value > a_end:
                    raise syntax_error("transform attribute: truncated")
                a += 4 + value
        transforms.append(Transform(ttype, tid, key_length))
        pos += tlen
    return transforms, pos


@dataclass
class SaPayload(Payload):
    ptype: ClassVar[int] = PayloadType.SA
    proposals: list[Proposal] = field(default_factory=list)

    def encode_body(self) -> bytes:
        return b"".join(p.encode(i == len(self.proposals) - 1)
                        for i, p in enumerate(self.proposals))

    @classmethod
    def decode(cls, body: bytes) -> "SaPayload":
        proposals = []
        pos, end = 0, len(body)
        last = False
        while not last:
            if pos == end:
                raise syntax_error("SA payload: missing last proposal")
            if end - pos < 8:
                raise syntax_error(f"proposal: truncated ({end - pos} bytes left)")
            more, plen, num, proto, spi_size, ntrans = _PROPOSAL.unpack_from(body, pos)
            if plen < 8 or more not in (0, 2) or pos + plen > end:
                raise syntax_error(f"proposal length {plen} / last {more} invalid")
            p_end = pos + plen
            if pos + 8 + spi_size > p_end:
                raise syntax_error("proposal: SPI truncated")
            spi = body[pos + 8:pos + 8 + spi_size]
            transforms, at = _decode_transforms(body, pos + 8 + spi_size, p_end, ntrans)
            if at != p_end:
                raise syntax_error("trailing bytes in proposal")
            proposals.append(Proposal(num, proto, spi, transforms))
            pos = p_end
            last = more == 0
        if pos != end:
            raise syntax_error("trailing bytes after the last proposal")
        return cls(proposals)


# --- simple payloads -----------------------------------------------------------------------

@dataclass
class KePayload(Payload):
    """RFC 7296 §3.4 Key Exchange."""

    ptype: ClassVar[int] = PayloadType.KE
    group: int = 0
    data: bytes = b""

    def encode_body(self) -> bytes:
        return struct.pack("!HH", self.group, 0) + self.data

    @classmethod
    def decode(cls, body: bytes) -> "KePayload":
        r = _Reader(body, "KE payload")
        group = r.u16()
        r.u16()
        return cls(group, r.rest())


@dataclass
class NoncePayload(Payload):
    """RFC 7296 §3.9 Nonce: 16 to 256 octets (§2.10)."""

    ptype: ClassVar[int] = PayloadType.NONCE
    nonce: bytes = b""

    def encode_body(self) -> bytes:
        return self.nonce

    @classmethod
    def decode(cls, body: bytes) -> "NoncePayload":
        if not 16 <= len(body) <= 256:
            raise syntax_error(f"nonce of {len(body)} bytes (must be 16..256, §3.9)")
        return cls(body)


@dataclass
class IdPayload(Payload):
    """RFC 7296 §3.5 Identification; `IdiPayload`/`IdrPayload` fix the payload type."""

    id_type: int = IdType.ID_FQDN
    data: bytes = b""

    def encode_body(self) -> bytes:
        return struct.pack("!B3x", self.id_type) + self.data

    @classmethod
    def decode(cls, body: bytes) -> "IdPayload":
        r = _Reader(body, "ID payload")
        id_type = r.u8()
        r.take(3)
        return cls(id_type, r.rest())


@dataclass
class IdiPayload(IdPayload):
    ptype: ClassVar[int] = PayloadType.IDi


@dataclass
class IdrPayload(IdPayload):
    ptype: ClassVar[int] = PayloadType.IDr


@dataclass
class AuthPayload(Payload):
    """RFC 7296 §3.8 Authentication."""

    ptype: ClassVar[int] = PayloadType.AUTH
    method: int = 0
    data: bytes = b""

    def encode_body(self) -> bytes:
        return struct.pack("!B3x", self.method) + self.data

    @classmethod
    def decode(cls, body: bytes) -> "AuthPayload":
        r = _Reader(body, "AUTH payload")
        method = r.u8()
        r.take(3)
        return cls(method, r.rest())


@dataclass
class CertPayload(Payload):
    """RFC 7296 §3.6 Certificate."""

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
    """RFC 7296 §3.7 Certificate Request (data: concatenated SHA-1 hashes of CA keys)."""

    ptype: ClassVar[int] = PayloadType.CERTREQ


@dataclass
class NotifyPayload(Payload):
    """RFC 7296 §3.10 Notify."""

    ptype: ClassVar[int] = PayloadType.NOTIFY
    notify_type: int = 0
    data: bytes = b""
    protocol: int = ProtocolId.NONE
    spi: bytes = b""

    def encode_body(self) -> bytes:
        return struct.pack("!BBH", self.protocol, len(self.spi), self.notify_type) + \
            self.spi + self.data

    @classmethod
    def decode(cls, body: bytes) -> "NotifyPayload":
        r = _Reader(body, "Notify payload")
        proto, spi_size, ntype = r.u8(), r.u8(), r.u16()
        spi = r.take(spi_size)
        return cls(ntype, r.rest(), proto, spi)

    @property
    def name(self) -> str:
        try:
            return NotifyType(self.notify_type).name
        except ValueError:
            return str(self.notify_type)


@dataclass
class DeletePayload(Payload):
    """RFC 7296 §3.11 Delete: IKE (no SPIs) or ESP/AH with 4-byte SPIs."""

    ptype: ClassVar[int] = PayloadType.DELETE
    protocol: int = ProtocolId.ESP
    spis: list[bytes] = field(default_factory=list)

    def encode_body(self) -> bytes:
        size = len(self.spis[0]) if self.spis else (0 if self.protocol == ProtocolId.IKE else 4)
        return struct.pack("!BBH", self.protocol, size, len(self.spis)) + b"".join(self.spis)

    @classmethod
    def decode(cls, body: bytes) -> "DeletePayload":
        r = _Reader(body, "Delete payload")
        proto, size, count = r.u8(), r.u8(), r.u16()
        spis = [r.take(size) for _ in range(count)] if size else []
        if r.left:
            raise syntax_error("trailing bytes in Delete payload")
        return cls(proto, spis)


@dataclass
class VendorIdPayload(Payload):
    """RFC 7296 §3.12 Vendor ID."""

    ptype: ClassVar[int] = PayloadType.VENDOR_ID
    data: bytes = b""

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, body: bytes) -> "VendorIdPayload":
        return cls(body)


# --- Traffic selectors: RFC 7296 §3.13 ------------------------------------------------------

@dataclass(frozen=True)
class TrafficSelector:
    """RFC 7296 §3.13.1; addresses are `ipaddress` objects of one family."""

    start_addr: IpAddress
    end_addr: IpAddress
    ip_proto: int = 0
    start_port: int = 0
    end_port: int = 65535

    @property
    def ts_type(self) -> int:
        return TsType.TS_IPV4_ADDR_RANGE if self.start_addr.version == 4 \
            else TsType.TS_IPV6_ADDR_RANGE

    @classmethod
    def from_network(cls, net: str, ip_proto: int = 0, start_port: int = 0,
                     end_port: int = 65535) -> "TrafficSelector":
        return _from_network(cls, net, ip_proto, start_port, end_port)

    def encode(self) -> bytes:
        addrs = self.start_addr.packed + self.end_addr.packed
        return struct.pack("!BBHHH", self.ts_type, self.ip_proto, 8 + len(addrs),
                           self.start_port, self.end_port) + addrs

    def intersect(self, other: "TrafficSelector") -> Optional["TrafficSelector"]:
        """The narrowing of two selectors (RFC 7296 §2.9), or None if they do not overlap."""
        if self.start_addr.version != other.start_addr.version:
            return None
        if self.ip_proto and other.ip_proto and self.ip_proto != other.ip_proto:
            return None
        lo, hi = max(self.start_addr, other.start_addr), min(self.end_addr, other.end_addr)
        plo, phi = max(self.start_port, other.start_port), min(self.end_port, other.end_port)
        if int(lo) > int(hi) or plo > phi:
            return None
        return TrafficSelector(lo, hi, self.ip_proto or other.ip_proto, plo, phi)

    def __str__(self) -> str:
        try:
            nets = list(ipaddress.summarize_address_range(self.start_addr, self.end_addr))
            addr = str(nets[0]) if len(nets) == 1 else f"{self.start_addr}-{self.end_addr}"
        except (TypeError, ValueError):
            addr = f"{self.start_addr}-{self.end_addr}"
        extra = ""
        if self.ip_proto or (self.start_port, self.end_port) != (0, 65535):
            extra = f"[{self.ip_proto}/{self.start_port}-{self.end_port}]"
        return addr + extra


@functools.lru_cache(maxsize=4096)
def _from_network(cls: type, net: str, ip_proto: int, start_port: int, end_port: int
                  ) -> TrafficSelector:
    """Configured prefixes repeat in every negotiation; the selector is immutable."""
    n = ipaddress.ip_network(net, strict=False)
    return cls(n.network_address, n.broadcast_address, ip_proto, start_port, end_port)


_TS_ADDR_LEN: dict[int, int] = {TsType.TS_IPV4_ADDR_RANGE: 4, TsType.TS_IPV6_ADDR_RANGE: 16}


@dataclass
class TsPayload(Payload):
    selectors: list[TrafficSelector] = field(default_factory=list)

    def encode_body(self) -> bytes:
        return struct.pack("!B3x", len(self.selectors)) + \
            b"".join(ts.encode() for ts in self.selectors)

    @classmethod
    def decode(cls, body: bytes) -> "TsPayload":
        r = _Reader(body, "TS payload")
        count = r.u8()
        r.take(3)
        selectors = []
        for _ in range(count):
            ts_type, proto, length = r.u8(), r.u8(), r.u16()
            alen = _TS_ADDR_LEN.get(ts_type)
            if alen is None or length != 8 + 2 * alen:
                raise syntax_error(f"traffic selector type {ts_type} length {length}")
            sport, eport = r.u16(), r.u16()
            start = ipaddress.ip_address(r.take(alen))
            end = ipaddress.ip_address(r.take(alen))
            selectors.append(TrafficSelector(start, end, proto, sport, eport))
        if r.left:
            raise syntax_error("trailing bytes in TS payload")
        return cls(selectors)


@dataclass
class TsiPayload(TsPayload):
    ptype: ClassVar[int] = PayloadType.TSi


@dataclass
class TsrPayload(TsPayload):
    ptype: ClassVar[int] = PayloadType.TSr


# --- opaque payloads -------------------------------------------------------------------------

@dataclass
class EncryptedPayload(Payload):
    """RFC 7296 §3.14 Encrypted and Authenticated: IV || ciphertext || ICV, still opaque."""

    ptype: ClassVar[int] = PayloadType.SK
    first_inner: int = PayloadType.NONE
    data: bytes = b""
    offset: int = 0  #: where its generic header starts in the message (for AAD / ICV)

    def encode_body(self) -> bytes:
        return self.data


@dataclass
class EncryptedFragmentPayload(Payload):
    """RFC 7383 §2.5 Encrypted Fragment (SKF): number, total, then IV || ciphertext || ICV.

    `first_inner` is the Next Payload field: the first inner payload's type in fragment 1,
    zero in the others."""

    ptype: ClassVar[int] = PayloadType.SKF
    first_inner: int = PayloadType.NONE
    number: int = 1
    total: int = 1
    data: bytes = b""
    offset: int = 0

    def encode_body(self) -> bytes:
        return struct.pack("!HH", self.number, self.total) + self.data


# --- Configuration payload: RFC 7296 §3.15 ---------------------------------------------------

#: CFG types (§3.15) and the attributes used here (§3.15.1)
CFG_REQUEST, CFG_REPLY, CFG_SET, CFG_ACK = 1, 2, 3, 4
INTERNAL_IP4_ADDRESS, INTERNAL_IP4_NETMASK, INTERNAL_IP6_ADDRESS = 1, 2, 8


@dataclass
class CpPayload(Payload):
    """RFC 7296 §3.15 Configuration payload: a CFG type and (attribute type, value) pairs.
    A request may carry an empty value (asking for one) or a value (suggesting it,
    §3.15.1); the reserved bit before each attribute type is ignored on receipt."""

    ptype: ClassVar[int] = PayloadType.CP
    cfg_type: int = CFG_REQUEST
    attributes: list[tuple[int, bytes]] = field(default_factory=list)

    def encode_body(self) -> bytes:
        out = [struct.pack("!B3x", self.cfg_type)]
        for atype, value in self.attributes:
            out.append(struct.pack("!HH", atype & 0x7FFF, len(value)) + value)
        return b"".join(out)

    @classmethod
    def decode(cls, body: bytes) -> "CpPayload":
        r = _Reader(body, "Configuration payload")
        cfg_type = r.u8()
        r.take(3)
        attrs = []
        while r.left:
            atype = r.u16() & 0x7FFF
            attrs.append((atype, r.take(r.u16())))
        return cls(cfg_type, attrs)

    def first(self, atype: int) -> Optional[bytes]:
        """The value of the first attribute of type `atype`, or None."""
        return next((v for t, v in self.attributes if t == atype), None)


@dataclass
class UnknownPayload(Payload):
    """A payload type we do not implement (kept so the chain stays intact)."""

    type: int = 0
    body: bytes = b""
    critical: bool = False

    @property
    def ptype(self) -> int:  # type: ignore[override]
        return self.type

    def encode_body(self) -> bytes:
        return self.body


PAYLOAD_CLASSES: dict[int, Any] = {
    cls.ptype: cls for cls in (SaPayload, KePayload, NoncePayload, IdiPayload, IdrPayload,
                               AuthPayload, CertPayload, CertReqPayload, NotifyPayload,
                               DeletePayload, VendorIdPayload, TsiPayload, TsrPayload,
                               CpPayload)
}


def decode_payload_body(ptype: int, body: bytes) -> Payload:
    """Decode one payload body by type; unknown types become `UnknownPayload`."""
    cls = PAYLOAD_CLASSES.get(ptype)
    if cls is None:
        return UnknownPayload(type=ptype, body=body)
    return cls.decode(body)


def notify(ntype: int, data: bytes = b"", protocol: int = ProtocolId.NONE,
           spi: bytes = b"") -> NotifyPayload:
    """Shorthand constructor for a Notify payload."""
    return NotifyPayload(ntype, data, protocol, spi)

