"""IPv4/IPv6 header helpers for the CPU path: checksums, DS field, ECN, DF, extension headers.

Everything here works on a mutable buffer (bytearray, memoryview of a `Burst` slot) and an
offset, so the engines never build a Python object per header. References:
  - IPv4 header: RFC 791 §3.1; header checksum RFC 791 + RFC 1071 (ones' complement sum).
  - IPv6 header and extension headers: RFC 8200 §3, §4; UDP checksum over IPv6 RFC 8200 §8.1.
  - DS field (DSCP) copy at tunnel ingress: RFC 2983 §3; ECN at tunnel ingress and egress:
    RFC 6040 §4.1 (normal mode) and §4.2 (decapsulation table, Figure 4).
"""
from __future__ import annotations

import ipaddress
import struct
from typing import Union

Buffer = Union[bytes, bytearray, memoryview]
MutableBuffer = Union[bytearray, memoryview]

PROTO_HOPOPT = 0
PROTO_IPIP = 4
PROTO_UDP = 17
PROTO_IPV6 = 41
PROTO_ROUTING = 43
PROTO_FRAGMENT = 44
PROTO_ESP = 50
PROTO_AH = 51
PROTO_NONE = 59
PROTO_DSTOPTS = 60

#: IPv6 extension headers we walk over (RFC 8200 §4.1 order); a fragment header stops us.
IPV6_EXT_HEADERS = frozenset({PROTO_HOPOPT, PROTO_ROUTING, PROTO_DSTOPTS})

ECN_MASK = 0x03
ECN_NOT_ECT = 0x00
ECN_ECT1 = 0x01
ECN_ECT0 = 0x02
ECN_CE = 0x03

_H = struct.Struct("!H")


# -- checksums (RFC 1071) ---------------------------------------------------------------------


def ones_sum(data: Buffer) -> int:
    """The 16-bit ones' complement sum of `data` (an odd tail is padded with a zero byte).

    Uses the identity sum(words) == int(data) mod 0xFFFF (2^16 == 1 mod 2^16-1), so the whole
    sum is one big-integer operation in C instead of a Python loop."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    n = int.from_bytes(data, "big")
    r = n % 0xFFFF
    return 0xFFFF if r == 0 and n else r


def fold(acc: int) -> int:
    """Fold a non-negative sum of 16-bit words into 16 bits with end-around carry."""
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc


def internet_checksum(data: Buffer) -> int:
    """RFC 1071 checksum: the ones' complement of the ones' complement sum."""
    return ~ones_sum(data) & 0xFFFF


def ipv4_set_checksum(buf: MutableBuffer, off: int) -> None:
    """Recompute the header checksum of the IPv4 header at `buf[off]` (RFC 791 §3.1)."""
    ihl = (buf[off] & 0x0F) * 4
    buf[off + 10] = 0
    buf[off + 11] = 0
    _H.pack_into(buf, off + 10, internet_checksum(bytes(buf[off:off + ihl])))


def forwarded(pkt: bytes) -> bytes | None:
    """The IP packet as a router sends it on (RFC 1812 §5.3.1, RFC 8200 §3): IPv4 TTL one
    less with the header checksum updated incrementally (RFC 1624 §3, as Linux's
    ip_decrease_ttl does it), or IPv6 hop limit one less; None when it would reach zero
    (the packet ends here). `pkt` must be a checked IPv4 (>= 20 bytes) or IPv6 (>= 40 bytes)
    packet."""
    if pkt[0] >> 4 == 4:
        ttl = pkt[8]
        if ttl <= 1:
            return None
        out = bytearray(pkt)
        out[8] = ttl - 1
        check = ((pkt[10] << 8) | pkt[11]) + 0x0100     # HC' = HC + m - m' (ones' complement)
        check = (check + (check >= 0xFFFF)) & 0xFFFF
        out[10], out[11] = check >> 8, check & 0xFF
        return bytes(out)
    if pkt[7] <= 1:
        return None
    return pkt[:7] + bytes([pkt[7] - 1]) + pkt[8:]


def ipv4_checksum_ok(buf: Buffer, off: int) -> bool:
    ihl = (buf[off] & 0x0F) * 4
    return ones_sum(bytes(buf[off:off + ihl])) == 0xFFFF


def udp6_checksum(src: bytes, dst: bytes, udp: Buffer) -> int:
    """UDP checksum over IPv6 (RFC 8200 §8.1): pseudo-header + datagram; 0 is sent as 0xFFFF.
    The checksum field inside `udp` must be zero."""
    acc = ones_sum(src + dst) + len(udp) + PROTO_UDP + ones_sum(udp)
    c = ~fold(acc) & 0xFFFF
    return c or 0xFFFF


def fix_l4_checksum(hdr: Buffer, proto: int, segment: bytearray) -> None:
    """Recompute the TCP or UDP checksum of `segment` for the addresses in the IP header
    `hdr` (RFC 793 §3.1, RFC 768; over IPv6 RFC 8200 §8.1). Used after transport-mode NAT-T
    decapsulation (RFC 3948 §3.1.2), where a NAT changed the addresses the sender's checksum
    covered. A zero UDP checksum over IPv4 means "none" and stays zero."""
    at = 16 if proto == 6 else 6
    if len(segment) < (20 if proto == 6 else 8):
        return
    if hdr[0] >> 4 == 4:
        if proto == 17 and segment[6] == 0 and segment[7] == 0:
            return
        addrs = bytes(hdr[12:20])
    else:
        addrs = bytes(hdr[8:40])
    segment[at] = segment[at + 1] = 0
    c = ~fold(ones_sum(addrs) + proto + len(segment) + ones_sum(segment)) & 0xFFFF
    if proto == 17 and c == 0:
        c = 0xFFFF
    _H.pack_into(segment, at, c)


def ipv4_const_sum(src: bytes, dst: bytes, ttl: int, proto: int) -> int:
    """The part of an outer IPv4 header's word sum that never changes for an SA: version/IHL
    0x45, TTL/protocol and both addresses. Per packet only TOS, total length, identification
    and flags are added (an incremental checksum, RFC 1624)."""
    return 0x4500 + ((ttl << 8) | proto) + ones_sum(src + dst)


# -- DS field, ECN, DF ------------------------------------------------------------------------


def get_tos(buf: Buffer, off: int) -> int:
    """The DS field (DSCP << 2 | ECN) of the IPv4 or IPv6 header at `off`."""
    b0 = buf[off]
    if b0 >> 4 == 4:
        return buf[off + 1]
    return ((b0 & 0x0F) << 4) | (buf[off + 1] >> 4)


def set_tos(buf: MutableBuffer, off: int, tos: int) -> None:
    """Write the DS field; the caller recomputes an IPv4 checksum."""
    if buf[off] >> 4 == 4:
        buf[off + 1] = tos
    else:
        buf[off] = (buf[off] & 0xF0) | (tos >> 4)
        buf[off + 1] = (buf[off + 1] & 0x0F) | ((tos & 0x0F) << 4)


def ecn_decapsulate(inner: int, outer: int) -> int | None:
    """RFC 6040 §4.2 Figure 4: the ECN field of the forwarded inner packet, or None when the
    packet MUST be dropped (outer CE over a Not-ECT inner packet)."""
    if inner == ECN_NOT_ECT:
        return None if outer == ECN_CE else ECN_NOT_ECT
    if outer == ECN_CE:
        return ECN_CE
    if inner == ECN_ECT0 and outer == ECN_ECT1:
        return ECN_ECT1
    return inner


def decap_ds_field(inner_tos: int, outer_tos: int, copy_dscp: bool) -> int | None:
    """The inner DS field after decapsulation: the DSCP copied from the outer header when
    `copy_dscp` (Junos copy-outer-dscp, RFC 2983 §3.2), the ECN field per RFC 6040 §4.2;
    None means drop."""
    ecn = ecn_decapsulate(inner_tos & ECN_MASK, outer_tos & ECN_MASK)
    if ecn is None:
        return None
    dscp = (outer_tos if copy_dscp else inner_tos) & 0xFC
    return dscp | ecn


def inner_df(buf: Buffer, off: int) -> bool:
    """The DF bit of an inner packet; an IPv6 packet counts as DF (never fragmented in flight,
    RFC 8200 §5)."""
    if buf[off] >> 4 == 4:
        return bool(buf[off + 6] & 0x40)
    return True


def outer_df(mode: str, inner_is_df: bool) -> int:
    """The outer IPv4 flags byte per the SA's df-bit mode (clear, set, copy) (RFC 4301 §8.1)."""
    if mode == "set" or (mode == "copy" and inner_is_df):
        return 0x40
    return 0


# -- parsing ----------------------------------------------------------------------------------


def ip_packet_length(buf: Buffer, off: int, avail: int) -> int:
    """The length an IPv4/IPv6 header at `off` claims, or -1 when it is not a sane header
    within `avail` bytes (version, IHL >= 5, total length >= header length)."""
    if avail < 1:
        return -1
    v = buf[off] >> 4
    if v == 4:
        if avail < 20:
            return -1
        ihl = (buf[off] & 0x0F) * 4
        total = _H.unpack_from(buf, off + 2)[0]
        if ihl < 20 or total < ihl or total > avail:
            return -1
        return total
    if v == 6:
        if avail < 40:
            return -1
        total = 40 + _H.unpack_from(buf, off + 4)[0]
        return total if total <= avail else -1
    return -1


def ipv6_walk(buf: Buffer, off: int, end: int,
              stop_at: frozenset = frozenset()) -> tuple[int, int, int]:
    """Walk the extension headers of the IPv6 packet at `off` (RFC 8200 §4).

    Returns (protocol, offset of the upper-layer header, offset of the next-header byte that
    names it). Hop-by-hop, routing and destination options headers are skipped unless their
    number is in `stop_at`; any other value (ESP, AH, UDP, a fragment header ...) ends the walk.
    Raises ValueError when a header runs past `end`."""
    nh_field = off + 6
    proto = buf[nh_field]
    pos = off + 40
    while proto in IPV6_EXT_HEADERS and proto not in stop_at:
        if pos + 8 > end:
            raise ValueError("truncated IPv6 extension header")
        hlen = (buf[pos + 1] + 1) * 8
        if pos + hlen > end:
            raise ValueError("IPv6 extension header runs past the packet")
        nh_field = pos
        proto = buf[pos]
        pos += hlen
    return proto, pos, nh_field


def ipv6_zero_mutable_options(buf: bytearray, start: int, end: int) -> None:
    """Zero the data of every option whose 'may change en route' bit (0x20 of the option type)
    is set, in a hop-by-hop or destination options header at `start` (RFC 8200 §4.2,
    RFC 4302 §3.3.3.1.2.2)."""
    pos = start + 2
    while pos < end:
        otype = buf[pos]
        if otype == 0:                    # Pad1: a single byte
            pos += 1
            continue
        if pos + 2 > end:
            raise ValueError("truncated IPv6 option")
        olen = buf[pos + 1]
        if pos + 2 + olen > end:
            raise ValueError("IPv6 option runs past its header")
        if otype & 0x20:
            buf[pos + 2:pos + 2 + olen] = bytes(olen)
        pos += 2 + olen


#: IPv4 options that AH covers as they are (RFC 4302 Appendix A.1); every other option is
#: mutable and zeroed for the ICV computation.
IPV4_IMMUTABLE_OPTIONS = frozenset({0, 1, 130, 133, 134, 148, 149})


def ipv4_zero_mutable_options(buf: bytearray, start: int, end: int) -> None:
    """Zero the mutable options between `start` and `end` (the IPv4 options area), RFC 4302
    Appendix A.1. Raises ValueError on a malformed option."""
    pos = start
    while pos < end:
        opt = buf[pos]
        if opt == 0:                      # end of option list: the rest is padding
            buf[pos:end] = bytes(end - pos)
            return
        if opt == 1:                      # no operation
            pos += 1
            continue
        if pos + 2 > end or buf[pos + 1] < 2 or pos + buf[pos + 1] > end:
            raise ValueError("malformed IPv4 option")
        olen = buf[pos + 1]
        if opt not in IPV4_IMMUTABLE_OPTIONS:
            buf[pos:pos + olen] = bytes(olen)
        pos += olen


def address_bytes(text: str) -> bytes:
    """The packed form of an IPv4 or IPv6 address."""
    return ipaddress.ip_address(text).packed
