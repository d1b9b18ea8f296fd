"""What `then reject` sends back (Junos: the packet is dropped and the source told): a TCP
segment is answered with a TCP reset, a UDP datagram with an ICMP "destination unreachable,
port unreachable"; any other protocol is dropped without a word, as Junos does.

  - TCP RST: RFC 9293 §3.10.7.1 (a segment that opens no connection here): if the offending
    segment has ACK set, the reset is <SEQ=SEG.ACK><CTL=RST>; otherwise <SEQ=0><ACK=SEG.SEQ +
    SEG.LEN><CTL=RST,ACK>, SEG.LEN counting SYN and FIN. Sent from the addresses and ports the
    segment was sent to, so the sender's stack takes it.
  - ICMP: RFC 792 type 3 code 3 quoting the IP header and 64 bits of data; ICMPv6: RFC 4443
    §3.1 type 1 code 4, quoting as much as fits in the minimum MTU (§2.4 (c)).

Only a first fragment (or an unfragmented packet) is answered; never an ICMP error itself."""
from __future__ import annotations

import struct
from typing import Optional

from ..packet.ip import fold, internet_checksum, ones_sum
from .packet import _headers

__all__ = ["reject_reply"]

_TCP, _UDP = 6, 17
_IPV6_MIN_MTU = 1280


def _ip_header(version: int, src: bytes, dst: bytes, proto: int, payload_len: int) -> bytes:
    if version == 4:
        h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0, 64, proto,
                                  0, src, dst))
        struct.pack_into("!H", h, 10, internet_checksum(bytes(h)))
        return bytes(h)
    return struct.pack("!IHBB16s16s", 0x60000000, payload_len, proto, 64, src, dst)


def _l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> int:
    """RFC 9293 §3.1 / RFC 768 / RFC 8200 §8.1 pseudo-header checksum."""
    acc = ones_sum(src + dst) + proto + len(segment) + ones_sum(segment)
    return (~fold(acc)) & 0xFFFF


def _tcp_reset(version: int, src: bytes, dst: bytes, pkt: bytes, off: int) -> Optional[bytes]:
    if len(pkt) < off + 20:
        return None
    sport, dport, seq, ack, data_off, flags = struct.unpack_from("!HHIIBB", pkt, off)
    if flags & 0x04:                                 # never answer a reset
        return None
    if version == 4:
        end = min(len(pkt), int.from_bytes(pkt[2:4], "big"))
    else:
        end = min(len(pkt), 40 + int.from_bytes(pkt[4:6], "big"))
    seg_len = max(0, end - off - (data_off >> 4) * 4) + (flags & 0x02 > 0) + (flags & 0x01)
    if flags & 0x10:                                 # ACK set: <SEQ=SEG.ACK><CTL=RST>
        r_seq, r_ack, r_flags = ack, 0, 0x04
    else:
        r_seq, r_ack, r_flags = 0, (seq + seg_len) & 0xFFFFFFFF, 0x14
    tcp = bytearray(struct.pack("!HHIIBBHHH", dport, sport, r_seq, r_ack, 5 << 4, r_flags, 0,
                                0, 0))
    struct.pack_into("!H", tcp, 16, _l4_checksum(dst, src, _TCP, bytes(tcp)))
    return _ip_header(version, dst, src, _TCP, len(tcp)) + bytes(tcp)


def _port_unreachable(version: int, src: bytes, dst: bytes, pkt: bytes) -> bytes:
    if version == 4:
        ihl = (pkt[0] & 0x0F) * 4
        icmp = bytearray(struct.pack("!BBHI", 3, 3, 0, 0) + pkt[:ihl + 8])
        struct.pack_into("!H", icmp, 2, internet_checksum(bytes(icmp)))
        return _ip_header(4, dst, src, 1, len(icmp)) + bytes(icmp)
    icmp = bytearray(struct.pack("!BBHI", 1, 4, 0, 0) + pkt[:_IPV6_MIN_MTU - 48])
    struct.pack_into("!H", icmp, 2, _l4_checksum(dst, src, 58, bytes(icmp)) or 0xFFFF)
    return _ip_header(6, dst, src, 58, len(icmp)) + bytes(icmp)


def reject_reply(pkt: bytes) -> Optional[bytes]:
    """The packet `then reject` sends back for the rejected `pkt` (module docstring), or
    None when Junos sends nothing (another protocol, a non-first fragment, a reset)."""
    h = _headers(pkt)
    if h is None:
        return None
    version, src, dst, proto, off, first = h
    if not first:
        return None
    if proto == _TCP:
        return _tcp_reset(version, src, dst, pkt, off)
    if proto == _UDP:
        return _port_unreachable(version, src, dst, pkt)
    return None
