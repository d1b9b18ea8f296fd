"""IPv4 fragmentation and reassembly, and the ICMP errors a tunnel sends back (sans-I/O).

What a tunnel endpoint needs when an inner packet is too big for the tunnel (RFC 4301 §8):

- `fragment_ipv4`: RFC 791 §2.3 / §3.2 fragmentation ("pre-fragmentation": the inner packet is
  split *before* it is encrypted, each fragment becomes its own ESP packet). Fragment data is
  a multiple of 8 bytes except in the last fragment; the first fragment keeps every option,
  the others only the options whose "copied" flag is set (RFC 791 §3.1, option type bit 0x80);
  every fragment gets a correct header checksum.
- `Reassembler`: RFC 791 §3.2 reassembly (what the receiving host does), keyed by
  (source, destination, protocol, identification), for tests and the demo.
- `icmp_fragmentation_needed`: ICMP type 3 code 4 (RFC 792) with the next-hop MTU in the
  second half of the "unused" word (RFC 1191 §4), quoting the IP header and the first 8 bytes
  of the offending datagram.
- `icmpv6_packet_too_big`: ICMPv6 type 2 code 0 (RFC 4443 §3.2) with a 32-bit MTU, quoting as
  much of the packet as fits in the minimum IPv6 MTU (1280), checksummed over the RFC 8200 §8.1
  pseudo-header.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Optional

from .ip import internet_checksum, ones_sum, fold

__all__ = [
    "FragmentError",
    "Reassembler",
    "fragment_ipv4",
    "icmp_fragmentation_needed",
    "icmpv6_packet_too_big",
    "ipv4_checksum",
    "is_fragment",
    "IPV6_MIN_MTU",
]

IPV6_MIN_MTU = 1280
_MF = 0x2000
_DF = 0x4000
_OFFSET_MASK = 0x1FFF


class FragmentError(ValueError):
    """The packet cannot be fragmented as asked (DF set, or the MTU is too small)."""


def ipv4_checksum(header: bytes) -> int:
    """The RFC 791 header checksum of `header` (its checksum field taken as zero)."""
    h = bytearray(header)
    h[10:12] = b"\x00\x00"
    return internet_checksum(bytes(h))


def is_fragment(packet: bytes) -> bool:
    """True for an IPv4 fragment (MF set or a non-zero offset, RFC 791 §3.1)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return False
    return bool(struct.unpack_from("!H", packet, 6)[0] & (_MF | _OFFSET_MASK))


def _copied_options(options: bytes) -> bytes:
    """The options a non-first fragment carries: those with the copied flag (RFC 791 §3.1),
    padded with End-of-Option-List to a multiple of 4 bytes."""
    out = bytearray()
    pos = 0
    while pos < len(options):
        opt = options[pos]
        if opt == 0:
            break
        if opt == 1:
            pos += 1
            continue
        if pos + 1 >= len(options) or options[pos + 1] < 2:
            break
        length = options[pos + 1]
        if opt & 0x80:
            out += options[pos:pos + length]
        pos += length
    out += bytes(-len(out) % 4)
    return bytes(out)


def fragment_ipv4(packet: bytes, mtu: int) -> list[bytes]:
    """Split an IPv4 packet into fragments of at most `mtu` bytes each (RFC 791 §3.2).

    A packet that fits is returned as it is (a list of one). Raises `FragmentError` when the
    DF bit is set, or when `mtu` leaves no room for 8 bytes of data after the header.
    A packet that is itself a fragment is split further (its offset and MF bit carry over).
    """
    if len(packet) < 20 or packet[0] >> 4 != 4:
        raise FragmentError("not an IPv4 packet")
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    if ihl < 20 or total < ihl or total > len(packet):
        raise FragmentError("malformed IPv4 header")
    packet = packet[:total]
    if total <= mtu:
        return [packet]
    flags_off = struct.unpack_from("!H", packet, 6)[0]
    if flags_off & _DF:
        raise FragmentError("DF is set: the packet may not be fragmented")
    base_offset = flags_off & _OFFSET_MASK          # in 8-byte units
    last_mf = flags_off & _MF
    header, data = packet[:ihl], packet[ihl:]
    later_header = header[:20] + _copied_options(header[20:])
    fragments = []
    pos = 0
    first = True
    while pos < len(data):
        hdr = header if first else later_header
        room = (mtu - len(hdr)) // 8 * 8
        if room < 8:
            raise FragmentError(f"an MTU of {mtu} leaves no room for fragment data")
        chunk = data[pos:pos + room]
        more = pos + len(chunk) < len(data)
        h = bytearray(hdr)
        h[0] = 0x40 | (len(hdr) // 4)
        struct.pack_into("!H", h, 2, len(h) + len(chunk))
        struct.pack_into("!H", h, 6, (_MF if more or last_mf else 0) | (base_offset + pos // 8))
        struct.pack_into("!H", h, 10, ipv4_checksum(bytes(h)))
        fragments.append(bytes(h) + chunk)
        pos += len(chunk)
        first = False
    return fragments


@dataclass
class _Hole:
    first_header: Optional[bytes] = None
    parts: dict[int, bytes] = field(default_factory=dict)
    total: Optional[int] = None


class Reassembler:
    """RFC 791 §3.2 reassembly of IPv4 fragments (what the destination host does).

    `add(fragment)` returns the whole datagram once every fragment of it has arrived, else
    None; a non-fragment comes straight back. Overlapping fragments are taken as they come
    (no RFC 5722-style rejection: this is a test and demo helper, not a host stack).
    `max_datagrams` bounds the memory held for incomplete datagrams (oldest dropped first).
    A fragment whose header lies about its lengths raises `FragmentError`.
    """

    def __init__(self, max_datagrams: int = 1024) -> None:
        self.max_datagrams = max_datagrams
        self._pending: dict[tuple, _Hole] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, fragment: bytes) -> Optional[bytes]:
        if not is_fragment(fragment):
            return fragment
        ihl = (fragment[0] & 0x0F) * 4
        total = struct.unpack_from("!H", fragment, 2)[0]
        if ihl < 20 or total < ihl or total > len(fragment):      # RFC 791 §3.1
            raise FragmentError("IPv4 fragment with a bad header length or total length")
        flags_off = struct.unpack_from("!H", fragment, 6)[0]
        key = (fragment[12:16], fragment[16:20], fragment[9], fragment[4:6])
        hole = self._pending.get(key)
        if hole is None:
            if len(self._pending) >= self.max_datagrams:
                self._pending.pop(next(iter(self._pending)))
            hole = self._pending[key] = _Hole()
        offset = (flags_off & _OFFSET_MASK) * 8
        data = fragment[ihl:total]
        hole.parts[offset] = data
        if offset == 0:
            hole.first_header = fragment[:ihl]
        if not flags_off & _MF:
            hole.total = offset + len(data)
        if hole.total is None or hole.first_header is None:
            return None
        body = bytearray()
        for off in sorted(hole.parts):
            if off > len(body):
                return None                       # a hole remains
            part = hole.parts[off]
            body[off:off + len(part)] = part
        if len(body) < hole.total:
            return None
        del self._pending[key]
        h = bytearray(hole.first_header)
        struct.pack_into("!H", h, 2, len(h) + hole.total)
        struct.pack_into("!H", h, 6, 0)
        struct.pack_into("!H", h, 10, ipv4_checksum(bytes(h)))
        return bytes(h) + bytes(body[:hole.total])


def icmp_fragmentation_needed(packet: bytes, next_hop_mtu: int, source: str,
                              ttl: int = 64) -> bytes:
    """An IPv4 ICMP "Destination Unreachable, fragmentation needed and DF set" (RFC 792 type 3
    code 4) for `packet`, sent from `source` to the packet's source, with the next-hop MTU in
    the low 16 bits of the second word (RFC 1191 §4). The body quotes the offending packet's IP
    header and the first 64 bits of its data (RFC 792)."""
    ihl = (packet[0] & 0x0F) * 4
    quoted = packet[:ihl + 8]
    icmp = bytearray(struct.pack("!BBHHH", 3, 4, 0, 0, next_hop_mtu & 0xFFFF) + quoted)
    struct.pack_into("!H", icmp, 2, internet_checksum(bytes(icmp)))
    dst = packet[12:16]
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(icmp), 0, 0, ttl, 1,
                                   0, ipaddress.IPv4Address(source).packed, dst))
    struct.pack_into("!H", header, 10, internet_checksum(bytes(header)))
    return bytes(header) + bytes(icmp)


def icmpv6_packet_too_big(packet: bytes, mtu: int, source: str, hop_limit: int = 64) -> bytes:
    """An ICMPv6 "Packet Too Big" (RFC 4443 §3.2: type 2, code 0, 32-bit MTU) for the IPv6
    `packet`, sent from `source` to the packet's source. The body holds as much of the
    invoking packet as fits without the error exceeding the minimum IPv6 MTU (RFC 4443 §2.4
    (c)); the checksum covers the RFC 8200 §8.1 pseudo-header."""
    room = IPV6_MIN_MTU - 40 - 8
    body = packet[:room]
    src = ipaddress.IPv6Address(source).packed
    dst = packet[8:24]
    icmp = bytearray(struct.pack("!BBHI", 2, 0, 0, mtu) + body)
    acc = ones_sum(src + dst) + len(icmp) + 58 + ones_sum(bytes(icmp))
    struct.pack_into("!H", icmp, 2, (~fold(acc) & 0xFFFF) or 0xFFFF)
    header = struct.pack("!IHBB16s16s", 0x60000000, len(icmp), 58, hop_limit, src, dst)
    return header + bytes(icmp)
