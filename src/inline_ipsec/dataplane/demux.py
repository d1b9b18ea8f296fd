"""Demultiplexing of what arrives from the peer (RFC 3948 §2, RFC 4303 §3.4.1, RFC 4302 §3.4).

`classify_outer` looks at an outer IPv4/IPv6 packet and says what it is:
  - UDP to or from port 500: IKE (RFC 7296 §2);
  - UDP (port 4500 or another NAT-T port) whose payload is one 0xFF byte: a NAT-T keepalive
    (RFC 3948 §2.3), counted and dropped;
  - UDP whose payload starts with four zero bytes, the non-ESP marker: IKE (RFC 3948 §2.2),
    handed to IKE without the marker;
  - other UDP payloads, IP protocol 50 (ESP) and 51 (AH): IPsec, with the SPI to look up.
Outer IPv4 fragments are reassembled first (RFC 791 §3.2; the peer's network may have
fragmented a large ESP packet); anything else is a bad header.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ..packet.fragment import Reassembler
from .counters import GatewayCounters

__all__ = ["IkeDatagram", "classify_outer", "IKE_PORT"]

IKE_PORT = 500
_H = struct.Struct("!H")


@dataclass(frozen=True)
class IkeDatagram:
    """An IKE message that arrived on the data path: UDP 500, or UDP 4500 behind the non-ESP
    marker (RFC 3948 §2.2; `data` has the marker removed, `natt` says it had one)."""

    data: bytes
    src: str
    dst: str
    sport: int
    dport: int
    natt: bool


def _addr(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def classify_outer(pkt: bytes, reassembler: Reassembler, counters: GatewayCounters):
    """("ipsec", (spi, packet)), ("ike", IkeDatagram), ("keepalive", None),
    ("fragment", None) while an outer IPv4 packet is being reassembled, or ("bad", None)."""
    n = len(pkt)
    if n < 1:
        return "bad", None
    v = pkt[0] >> 4
    if v == 4:
        if n < 20:
            return "bad", None
        ihl = (pkt[0] & 0x0F) * 4
        total = _H.unpack_from(pkt, 2)[0]
        if ihl < 20 or total < ihl or total > n:
            return "bad", None
        if _H.unpack_from(pkt, 6)[0] & 0x3FFF:     # outer fragment: reassemble (RFC 791)
            counters.fragments_received += 1
            whole = reassembler.add(pkt[:total])
            if whole is None:
                return "fragment", None
            pkt, n = whole, len(whole)
            total = n
        proto, l4, end = pkt[9], ihl, total
        src, dst = pkt[12:16], pkt[16:20]
    elif v == 6:
        if n < 40:
            return "bad", None
        end = 40 + _H.unpack_from(pkt, 4)[0]
        if end > n:
            return "bad", None
        proto, l4 = pkt[6], 40
        src, dst = pkt[8:24], pkt[24:40]
    else:
        return "bad", None
    if proto == 17:                                   # RFC 3948 §2
        if end - l4 < 8:
            return "bad", None
        sport, dport, ulen = struct.unpack_from("!HHH", pkt, l4)
        if ulen < 8 or l4 + ulen > end:
            return "bad", None
        payload = pkt[l4 + 8:l4 + ulen]
        if dport == IKE_PORT or sport == IKE_PORT:
            return "ike", IkeDatagram(payload, _addr(src), _addr(dst), sport, dport, False)
        if payload == b"\xff":
            return "keepalive", None
        if payload[:4] == b"\x00\x00\x00\x00":
            return "ike", IkeDatagram(payload[4:], _addr(src), _addr(dst), sport, dport,
                                      True)
        if len(payload) < 8:
            return "bad", None
        return "ipsec", (int.from_bytes(payload[:4], "big"), pkt)
    if proto == 50 and end - l4 >= 8:
        return "ipsec", (int.from_bytes(pkt[l4:l4 + 4], "big"), pkt)
    if proto == 51 and end - l4 >= 12:
        return "ipsec", (int.from_bytes(pkt[l4 + 4:l4 + 8], "big"), pkt)
    return "bad", None
