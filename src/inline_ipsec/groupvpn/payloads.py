"""GDOI payload codec (RFC 6407 §5), stateless and bounds-checked.

The ISAKMP header and the payloads GDOI uses unchanged (HASH, SIG, Nonce, ID, Notification,
Delete, CERT, Vendor ID) come from the IKEv1 codec (`ike.v1.isakmp`); this module adds the
GDOI SA payload with its nested SA attribute payloads (SA KEK, GAP, SA TEK), the Key Download
and the Sequence Number payloads, and a chain decoder that knows them.

Layouts, as on the wire (and as Wireshark's ISAKMP dissector reads them):

    SA (1)     generic header | DOI=2 (4) | Situation=0 (4) | SA Attribute Next Payload (2) |
               RESERVED2 (2) | SA attribute payloads (KEK, GAP, TEKs) chained by their own
               Next Payload fields; the SA payload's length covers them (RFC 6407 §5.1)
    SAK (15)   generic header | Protocol (1) | SRC ID Type (1) | SRC ID Port (2) |
               SRC ID Data Len (1) | SRC ID Data | DST ID Type (1) | DST ID Port (2) |
               DST ID Data Len (1) | DST ID Data | SPI (16) | RESERVED2 (4) | KEK attributes
               (RFC 6407 §5.3)
    GAP (22)   generic header | attributes (RFC 6407 §5.5)
    SAT (16)   generic header | Protocol-ID (1) | for ESP/AH: Protocol (1) | SRC ID Type (1) |
               SRC ID Port (2) | SRC ID Data Len (2) | SRC ID Data | DST ID Type (1) |
               DST ID Port (2) | DST ID Data Len (2) | DST ID Data | Transform ID (1) |
               SPI (4) | RFC 2407 SA attributes (RFC 6407 §5.4, §5.4.1)
    KD (17)    generic header | Number of Key Packets (2) | RESERVED2 (2) | key packets:
               KD Type (1) | RESERVED (1) | KD Length (2) | SPI Size (1) | SPI | attributes
               (RFC 6407 §5.6)
    SEQ (18)   generic header | Sequence Number (4) (RFC 6407 §5.7)

Every length read is checked; a malformed payload raises `RemoteIkeError` (PAYLOAD-MALFORMED
and friends, RFC 2408 §3.14.1) and nothing else. Counts are bounded (`MAX_*`).
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Union

from ..ike.errors import RemoteIkeError
from ..ike.v1.constants import IdType, NotifyType
from ..ike.v1.isakmp import (GENERIC_HEADER_LEN, CertPayload, DeletePayload, HashPayload,
                             IdPayload, NoncePayload, NotifyPayload, Payload, SigPayload,
                             UnknownPayload, VendorIdPayload, malformed)
from .constants import DOI_GDOI, GdoiPayload, TekProtocol

#: bounds on what one message may carry
MAX_PAYLOADS = 64
MAX_SA_ATTRIBUTE_PAYLOADS = 17      # one KEK, one GAP, up to 15 TEKs
MAX_KEY_PACKETS = 17
MAX_ATTRIBUTES = 32
#: the longest TLV attribute value we accept (an RSA-4096 public key in DER is ~550 bytes)
MAX_ATTRIBUTE_VALUE = 2048

_SA_HDR = struct.Struct("!IIHH")
_ATTR = struct.Struct("!HH")


def _r(data: bytes, pos: int, n: int, what: str) -> bytes:
    if n < 0 or pos + n > len(data):
        raise malformed(f"{what}: truncated (need {n} bytes at {pos}, have {len(data) - pos})")
    return data[pos:pos + n]


# --- attributes (RFC 2408 §3.3) -------------------------------------------------------------

@dataclass(frozen=True)
class Attr:
    """A data attribute: TV (16-bit value, an int) or TLV (a byte string, e.g. a key)."""

    type: int
    value: Union[int, bytes]

    def encode(self) -> bytes:
        v = self.value
        if isinstance(v, int):
            if 0 <= v <= 0xFFFF:
                return _ATTR.pack(0x8000 | self.type, v)
            n = max(4, (v.bit_length() + 7) // 8)
            return _ATTR.pack(self.type & 0x7FFF, n) + v.to_bytes(n, "big")
        return _ATTR.pack(self.type & 0x7FFF, len(v)) + bytes(v)

    @property
    def as_int(self) -> int:
        return self.value if isinstance(self.value, int) else int.from_bytes(self.value, "big")

    @property
    def as_bytes(self) -> bytes:
        return self.value if isinstance(self.value, bytes) else self.value.to_bytes(2, "big")


def encode_attrs(attrs: tuple[Attr, ...] | list[Attr]) -> bytes:
    return b"".join(a.encode() for a in attrs)


def decode_attrs(data: bytes, what: str) -> tuple[Attr, ...]:
    """The whole of `data` as attributes (bounded count and value length)."""
    out: list[Attr] = []
    pos, end = 0, len(data)
    while pos < end:
        if len(out) >= MAX_ATTRIBUTES:
            raise malformed(f"{what}: more than {MAX_ATTRIBUTES} attributes")
        atype, v = _ATTR.unpack(_r(data, pos, 4, what))
        pos += 4
        if atype & 0x8000:
            out.append(Attr(atype & 0x7FFF, v))
            continue
        if v > MAX_ATTRIBUTE_VALUE:
            raise RemoteIkeError(f"{what}: attribute {atype} of {v} bytes",
                                 NotifyType.ATTRIBUTES_NOT_SUPPORTED)
        out.append(Attr(atype, _r(data, pos, v, what)))
        pos += v
    return tuple(out)


def attr_value(attrs: tuple[Attr, ...], atype: int) -> Optional[Attr]:
    for a in attrs:
        if a.type == atype:
            return a
    return None


# --- identities inside KEK and TEK payloads ---------------------------------------------------

#: ID types a KEK/TEK may name traffic with, and their data sizes (RFC 2407 §4.6.2.1)
_ID_SIZES = {IdType.ID_IPV4_ADDR: 4, IdType.ID_IPV4_ADDR_SUBNET: 8, IdType.ID_IPV6_ADDR: 16,
             IdType.ID_IPV6_ADDR_SUBNET: 32, IdType.ID_IPV4_ADDR_RANGE: 8,
             IdType.ID_IPV6_ADDR_RANGE: 32}


@dataclass(frozen=True)
class TrafficId:
    """One side of a KEK/TEK policy: an ID type, a port (0 = any) and the ID data."""

    id_type: int
    port: int
    data: bytes

    @classmethod
    def network(cls, prefix: str, port: int = 0) -> "TrafficId":
        """A host address or a subnet (RFC 2407 §4.6.2.2-§4.6.2.5)."""
        net = ipaddress.ip_network(prefix, strict=False)
        v4 = net.version == 4
        if net.prefixlen == net.max_prefixlen:
            return cls(IdType.ID_IPV4_ADDR if v4 else IdType.ID_IPV6_ADDR, port,
                       net.network_address.packed)
        return cls(IdType.ID_IPV4_ADDR_SUBNET if v4 else IdType.ID_IPV6_ADDR_SUBNET, port,
                   net.network_address.packed + net.netmask.packed)

    def to_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The prefix this ID names; INVALID-ID-INFORMATION for anything else."""
        size = _ID_SIZES.get(self.id_type)
        if size is None or size != len(self.data) or self.id_type in (
                IdType.ID_IPV4_ADDR_RANGE, IdType.ID_IPV6_ADDR_RANGE):
            raise RemoteIkeError(f"policy ID of type {self.id_type} with {len(self.data)} "
                                 "bytes", NotifyType.INVALID_ID_INFORMATION)
        if self.id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
            return ipaddress.ip_network(ipaddress.ip_address(self.data))
        half = len(self.data) // 2
        bits = half * 8
        mask = int.from_bytes(self.data[half:], "big")
        plen = bin(mask).count("1")
        if mask != ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1):
            raise RemoteIkeError("policy ID with a non-contiguous mask",
                                 NotifyType.INVALID_ID_INFORMATION)
        base = int.from_bytes(self.data[:half], "big") & mask
        return ipaddress.ip_network((base, plen)) if bits == 32 else \
            ipaddress.IPv6Network((base, plen))


# --- SA attribute payloads -------------------------------------------------------------------

@dataclass
class KekPayload(Payload):
    """RFC 6407 §5.3 SA KEK: the policy of the key that protects GROUPKEY-PUSH messages;
    `spi` is the 16-byte KEK SPI, which pushes carry as their ISAKMP cookies."""

    ptype: ClassVar[int] = GdoiPayload.SAK
    spi: bytes = bytes(16)
    attributes: tuple[Attr, ...] = ()
    protocol: int = 17          # UDP: pushes come to the member's GDOI port
    src: TrafficId = field(default_factory=lambda: TrafficId(IdType.ID_IPV4_ADDR, 848,
                                                             bytes(4)))
    dst: TrafficId = field(default_factory=lambda: TrafficId(IdType.ID_IPV4_ADDR, 848,
                                                             bytes(4)))

    def encode_body(self) -> bytes:
        if len(self.spi) != 16:
            raise ValueError("a KEK SPI is 16 bytes")
        return (struct.pack("!BBHB", self.protocol, self.src.id_type, self.src.port,
                            len(self.src.data)) + self.src.data +
                struct.pack("!BHB", self.dst.id_type, self.dst.port, len(self.dst.data)) +
                self.dst.data + self.spi + bytes(4) + encode_attrs(self.attributes))

    @classmethod
    def decode(cls, body: bytes) -> "KekPayload":
        w = "SA KEK payload"
        proto, st, sp, sl = struct.unpack("!BBHB", _r(body, 0, 5, w))
        sdata = _r(body, 5, sl, w)
        pos = 5 + sl
        dt, dp, dl = struct.unpack("!BHB", _r(body, pos, 4, w))
        ddata = _r(body, pos + 4, dl, w)
        pos += 4 + dl
        spi = _r(body, pos, 16, w)
        _r(body, pos + 16, 4, w)
        attrs = decode_attrs(body[pos + 20:], w)
        return cls(spi, attrs, proto, TrafficId(st, sp, sdata), TrafficId(dt, dp, ddata))


@dataclass
class GapPayload(Payload):
    """RFC 6407 §5.5 Group Associated Policy (activation/deactivation delays)."""

    ptype: ClassVar[int] = GdoiPayload.GAP
    attributes: tuple[Attr, ...] = ()

    def encode_body(self) -> bytes:
        return encode_attrs(self.attributes)

    @classmethod
    def decode(cls, body: bytes) -> "GapPayload":
        return cls(decode_attrs(body, "GAP payload"))


@dataclass
class TekPayload(Payload):
    """RFC 6407 §5.4 SA TEK; for ESP (§5.4.1) the traffic it protects, the ESP transform ID,
    the SPI shared by the whole group and the RFC 2407 SA attributes. Another Protocol-ID is
    kept opaque in `other`."""

    ptype: ClassVar[int] = GdoiPayload.SAT
    protocol_id: int = TekProtocol.ESP
    ip_protocol: int = 0
    src: TrafficId = field(default_factory=lambda: TrafficId.network("0.0.0.0/0"))
    dst: TrafficId = field(default_factory=lambda: TrafficId.network("0.0.0.0/0"))
    transform_id: int = 12
    spi: int = 0
    attributes: tuple[Attr, ...] = ()
    other: bytes = b""

    def encode_body(self) -> bytes:
        if self.protocol_id not in (TekProtocol.ESP, TekProtocol.AH):
            return bytes([self.protocol_id]) + self.other
        return (struct.pack("!BBBHH", self.protocol_id, self.ip_protocol, self.src.id_type,
                            self.src.port, len(self.src.data)) + self.src.data +
                struct.pack("!BHH", self.dst.id_type, self.dst.port, len(self.dst.data)) +
                self.dst.data + struct.pack("!BI", self.transform_id, self.spi) +
                encode_attrs(self.attributes))

    @classmethod
    def decode(cls, body: bytes) -> "TekPayload":
        w = "SA TEK payload"
        pid = _r(body, 0, 1, w)[0]
        if pid not in (TekProtocol.ESP, TekProtocol.AH):
            return cls(protocol_id=pid, other=body[1:])
        _, proto, st, sp, sl = struct.unpack("!BBBHH", _r(body, 0, 7, w))
        sdata = _r(body, 7, sl, w)
        pos = 7 + sl
        dt, dp, dl = struct.unpack("!BHH", _r(body, pos, 5, w))
        ddata = _r(body, pos + 5, dl, w)
        pos += 5 + dl
        tid, spi = struct.unpack("!BI", _r(body, pos, 5, w))
        attrs = decode_attrs(body[pos + 5:], w)
        return cls(pid, proto, TrafficId(st, sp, sdata), TrafficId(dt, dp, ddata), tid, spi,
                   attrs)


_SA_ATTRIBUTE_CLASSES: dict[int, Any] = {
    GdoiPayload.SAK: KekPayload, GdoiPayload.GAP: GapPayload, GdoiPayload.SAT: TekPayload}


@dataclass
class GdoiSaPayload(Payload):
    """RFC 6407 §5.1 SA payload of the GDOI DOI with its SA attribute payloads nested."""

    ptype: ClassVar[int] = GdoiPayload.SA
    kek: Optional[KekPayload] = None
    gap: Optional[GapPayload] = None
    teks: list[TekPayload] = field(default_factory=list)
    situation: int = 0

    @property
    def attribute_payloads(self) -> list[Payload]:
        """KEK, GAP, TEKs: the order RFC 6407 §5.1 gives them."""
        return ([self.kek] if self.kek else []) + ([self.gap] if self.gap else []) + \
            list(self.teks)

    def encode_body(self) -> bytes:
        attrs = self.attribute_payloads
        first = attrs[0].ptype if attrs else 0
        out = bytearray(_SA_HDR.pack(DOI_GDOI, self.situation, first, 0))
        for i, p in enumerate(attrs):
            nxt = attrs[i + 1].ptype if i + 1 < len(attrs) else 0
            body = p.encode_body()
            out += struct.pack("!BBH", nxt, 0, GENERIC_HEADER_LEN + len(body)) + body
        return bytes(out)

    @classmethod
    def decode(cls, body: bytes) -> "GdoiSaPayload":
        w = "GDOI SA payload"
        doi, situation, nxt, _ = _SA_HDR.unpack(_r(body, 0, 12, w))
        if doi != DOI_GDOI:
            raise RemoteIkeError(f"SA payload of DOI {doi}, not GDOI",
                                 NotifyType.DOI_NOT_SUPPORTED)
        sa = cls(situation=situation)
        pos, count = 12, 0
        while nxt:
            count += 1
            if count > MAX_SA_ATTRIBUTE_PAYLOADS:
                raise malformed(f"more than {MAX_SA_ATTRIBUTE_PAYLOADS} SA attribute payloads")
            klass = _SA_ATTRIBUTE_CLASSES.get(nxt)
            if klass is None:
                raise RemoteIkeError(f"payload type {nxt} in an SA payload",
                                     NotifyType.INVALID_PAYLOAD_TYPE)
            n2, _, plen = struct.unpack("!BBH", _r(body, pos, 4, w))
            if plen < GENERIC_HEADER_LEN:
                raise malformed(f"SA attribute payload length {plen}")
            raw = _r(body, pos, plen, w)
            p = klass.decode(raw[4:])
            p.raw = raw
            if klass is KekPayload:
                if sa.kek is not None or sa.gap is not None or sa.teks:
                    raise malformed("SA KEK out of place (one, first)")
                sa.kek = p
            elif klass is GapPayload:
                if sa.gap is not None or sa.teks:
                    raise malformed("GAP out of place (one, before the TEKs)")
                sa.gap = p
            else:
                sa.teks.append(p)
            pos += plen
            nxt = n2
        if pos != len(body):
            raise malformed(f"{len(body) - pos} trailing bytes in the SA payload")
        return sa


# --- Key Download and Sequence Number ---------------------------------------------------------

@dataclass(frozen=True)
class KeyPacket:
    """RFC 6407 §5.6 one key packet: the type (TEK, KEK, ...), the SPI it keys and the keys
    as attributes (TLV)."""

    kd_type: int
    spi: bytes
    attributes: tuple[Attr, ...] = ()

    def encode(self) -> bytes:
        attrs = encode_attrs(self.attributes)
        # KD Length counts from the KD Type through the end of the attributes (Wireshark and
        # RFC 6407 §5.6: the whole key packet)
        return struct.pack("!BBHB", self.kd_type, 0, 5 + len(self.spi) + len(attrs),
                           len(self.spi)) + self.spi + attrs


@dataclass
class KdPayload(Payload):
    """RFC 6407 §5.6 Key Download."""

    ptype: ClassVar[int] = GdoiPayload.KD
    packets: list[KeyPacket] = field(default_factory=list)

    def encode_body(self) -> bytes:
        return struct.pack("!HH", len(self.packets), 0) + b"".join(
            p.encode() for p in self.packets)

    @classmethod
    def decode(cls, body: bytes) -> "KdPayload":
        w = "KD payload"
        count, _ = struct.unpack("!HH", _r(body, 0, 4, w))
        if count > MAX_KEY_PACKETS:
            raise malformed(f"{count} key packets")
        pos = 4
        packets = []
        for _ in range(count):
            kt, _, klen, spi_size = struct.unpack("!BBHB", _r(body, pos, 5, w))
            if klen < 5 + spi_size:
                raise malformed(f"key packet length {klen}")
            kp = _r(body, pos, klen, w)
            packets.append(KeyPacket(kt, kp[5:5 + spi_size],
                                     decode_attrs(kp[5 + spi_size:], "key packet")))
            pos += klen
        if pos != len(body):
            raise malformed(f"{len(body) - pos} trailing bytes in the KD payload")
        return cls(packets)


@dataclass
class SeqPayload(Payload):
    """RFC 6407 §5.7 Sequence Number: GROUPKEY-PUSH replay protection."""

    ptype: ClassVar[int] = GdoiPayload.SEQ
    seq: int = 0

    def encode_body(self) -> bytes:
        return struct.pack("!I", self.seq)

    @classmethod
    def decode(cls, body: bytes) -> "SeqPayload":
        if len(body) != 4:
            raise malformed(f"SEQ payload of {len(body)} bytes")
        return cls(struct.unpack("!I", body)[0])


PAYLOAD_CLASSES: dict[int, Any] = {
    GdoiPayload.SA: GdoiSaPayload, GdoiPayload.ID: IdPayload, GdoiPayload.CERT: CertPayload,
    GdoiPayload.HASH: HashPayload, GdoiPayload.SIG: SigPayload,
    GdoiPayload.NONCE: NoncePayload, GdoiPayload.NOTIFY: NotifyPayload,
    GdoiPayload.DELETE: DeletePayload, GdoiPayload.VENDOR_ID: VendorIdPayload,
    GdoiPayload.KD: KdPayload, GdoiPayload.SEQ: SeqPayload,
}


def decode_chain(first_type: int, data: bytes, offset: int = 0,
                 allow_padding: bool = False) -> list[Payload]:
    """A GDOI payload chain (RFC 2408 §3.2 framing); raises only `RemoteIkeError`."""
    try:
        return _decode_chain(first_type, bytes(data), offset, allow_padding)
    except RemoteIkeError:
        raise
    except (ValueError, IndexError, struct.error, OverflowError, TypeError) as exc:
        raise malformed(f"malformed GDOI payload: {exc}") from None


def _decode_chain(ptype: int, data: bytes, offset: int, allow_padding: bool) -> list[Payload]:
    payloads: list[Payload] = []
    end = len(data)
    while ptype != 0:
        if len(payloads) >= MAX_PAYLOADS:
            raise malformed(f"more than {MAX_PAYLOADS} payloads")
        if ptype in _SA_ATTRIBUTE_CLASSES:
            raise RemoteIkeError(f"SA attribute payload {ptype} outside an SA payload",
                                 NotifyType.INVALID_PAYLOAD_TYPE)
        if end - offset < GENERIC_HEADER_LEN:
            raise malformed(f"payload {ptype} truncated")
        nxt, _, plen = struct.unpack_from("!BBH", data, offset)
        if plen < GENERIC_HEADER_LEN or offset + plen > end:
            raise malformed(f"payload {ptype} length {plen} out of bounds")
        raw = data[offset:offset + plen]
        cls = PAYLOAD_CLASSES.get(ptype)
        p = UnknownPayload(type=ptype, payload=raw[4:]) if cls is None else cls.decode(raw[4:])
        p.raw = raw
        payloads.append(p)
        offset += plen
        ptype = nxt
    if offset != end and not allow_padding:
        raise malformed(f"{end - offset} trailing bytes after the last payload")
    return payloads


def first(payloads: list[Payload], cls: type) -> Any:
    for p in payloads:
        if type(p) is cls:
            return p
    return None


__all__ = ["Attr", "GapPayload", "GdoiSaPayload", "KdPayload", "KekPayload", "KeyPacket",
           "SeqPayload", "TekPayload", "TrafficId", "attr_value", "decode_attrs",
           "decode_chain", "encode_attrs", "first", "HashPayload", "IdPayload",
           "NoncePayload", "SigPayload", "DeletePayload", "NotifyPayload"]
