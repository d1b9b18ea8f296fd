"""The 5-tuple a security policy matches: addresses, IP protocol, ports or ICMP type/code.

Reads an IPv4 or IPv6 header (RFC 791, RFC 8200) and the first bytes of TCP/UDP/SCTP
(ports, RFC 793 §3.1, RFC 768) or ICMP/ICMPv6 (type and code, RFC 792, RFC 4443 §2.1).
IPv6 extension headers (hop-by-hop, routing, destination options; RFC 8200 §4) are walked,
at most 8 of them. A non-first fragment carries no ports: its ports are None, and it matches
only policies whose applications name no ports. Every length is checked before it is read.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Optional, Union

__all__ = ["FiveTuple", "five_tuple", "session_keys"]

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
_PORTS = (6, 17, 132)          # TCP, UDP, SCTP: source and destination port first
_ICMP = (1, 58)
_V6_EXT = (0, 43, 60)          # hop-by-hop, routing, destination options


@dataclass(frozen=True)
class FiveTuple:
    """What a policy lookup needs of one packet (ports None: unknown, e.g. a fragment)."""

    src: Address
    dst: Address
    protocol: int
    sport: Optional[int] = None
    dport: Optional[int] = None
    icmp_type: Optional[int] = None
    icmp_code: Optional[int] = None
    #: the identifier of an ICMP/ICMPv6 echo request or reply (RFC 792, RFC 4443 §4.1-4.2)
    icmp_id: Optional[int] = None

    @property
    def version(self) -> int:
        return self.src.version


_ECHO = {1: (0, 8), 58: (128, 129)}


def _l4(pkt: bytes, off: int, proto: int, first: bool) -> tuple:
    if not first:
        return None, None, None, None, None
    if proto in _PORTS and len(pkt) >= off + 4:
        return (int.from_bytes(pkt[off:off + 2], "big"),
                int.from_bytes(pkt[off + 2:off + 4], "big"), None, None, None)
    if proto in _ICMP and len(pkt) >= off + 2:
        ident = None
        if pkt[off] in _ECHO[proto] and len(pkt) >= off + 6:
            ident = int.from_bytes(pkt[off + 4:off + 6], "big")
        return None, None, pkt[off], pkt[off + 1], ident
    return None, None, None, None, None


def _headers(pkt: bytes) -> Optional[tuple]:
    """(version, source bytes, destination bytes, protocol, L4 offset, first fragment)."""
    n = len(pkt)
    if n >= 20 and pkt[0] >> 4 == 4:
        ihl = (pkt[0] & 0x0F) * 4
        if ihl < 20 or n < ihl:
            return None
        first = (int.from_bytes(pkt[6:8], "big") & 0x1FFF) == 0
        return 4, pkt[12:16], pkt[16:20], pkt[9], ihl, first
    if n >= 40 and pkt[0] >> 4 == 6:
        nh, off, first = pkt[6], 40, True
        for _ in range(8):
            if nh in _V6_EXT and n >= off + 8:
                nh, off = pkt[off], off + (pkt[off + 1] + 1) * 8
            elif nh == 44 and n >= off + 8:          # fragment header (RFC 8200 §4.5)
                first = (int.from_bytes(pkt[off + 2:off + 4], "big") >> 3) == 0
                nh, off = pkt[off], off + 8
            else:
                break
        return 6, pkt[8:24], pkt[24:40], nh, off, first
    return None


def five_tuple(pkt: bytes) -> Optional[FiveTuple]:
    """The packet's `FiveTuple`, or None if it is not a well-formed IPv4/IPv6 header."""
    h = _headers(pkt)
    if h is None:
        return None
    version, src, dst, proto, off, first = h
    sport, dport, t, c, ident = _l4(pkt, off, proto, first)
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return FiveTuple(cls(src), cls(dst), proto, sport, dport, t, c, ident)


_UNKNOWN = b"\xff\xff\xff\xff\xff"


def session_keys(pkt: bytes) -> Optional[tuple[bytes, bytes]]:
    """(this direction, the reply direction) of the packet's flow as bytes, what the session
    table is keyed by on the per-packet path (no address objects): addresses, protocol, ports
    (an ICMP echo's identifier for both); a flow whose ports are unknown (a non-first fragment)
    keys apart from its first fragment's. None if it is not an IPv4/IPv6 packet."""
    h = _headers(pkt)
    if h is None:
        return None
    _v, src, dst, proto, off, first = h
    p = bytes((proto,))
    if first and proto in _PORTS and len(pkt) >= off + 4:
        sp, dp = pkt[off:off + 2], pkt[off + 2:off + 4]
        return src + dst + p + sp + dp, dst + src + p + dp + sp
    if first and proto in _ICMP and len(pkt) >= off + 6 and pkt[off] in _ECHO[proto]:
        ident = pkt[off + 4:off + 6]
        return src + dst + p + ident + ident, dst + src + p + ident + ident
    return src + dst + p + _UNKNOWN, dst + src + p + _UNKNOWN
