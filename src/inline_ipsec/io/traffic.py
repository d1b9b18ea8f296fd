"""Test traffic for two linked gateways, derived from their configurations.

`flows(a, b)` finds, for every tunnel both gateways carry, a source and destination host on
each side: from the tunnel's traffic selectors when it has them, otherwise from the static
routes that point into the tunnel on each side (A's route gives the destination of A -> B
traffic, B's route back gives its source). `packets(flow, n, size)` builds UDP packets with
correct checksums for one flow.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Iterator

from ..packet.ip import internet_checksum, ones_sum, fold
from ..dataplane.gateway import Gateway

__all__ = ["Flow", "flows", "packets", "udp_packet"]


@dataclass(frozen=True)
class Flow:
    vpn: str
    sender: str          # "a" or "b"
    src: str
    dst: str

    @property
    def ipv6(self) -> bool:
        return ":" in self.src


def _host(prefix: str, n: int = 10) -> str:
    net = ipaddress.ip_network(prefix, strict=False)
    return str(net[n]) if net.num_addresses > n else str(net.network_address)


def _route_prefixes(gw: Gateway, vpn: str) -> list[str]:
    return [prefix for prefix, names in gw.routes.routes() if vpn in names]


def _one_way(src_gw: Gateway, dst_gw: Gateway, vpn: str, sender: str) -> Iterator[Flow]:
    sels = [s for s in src_gw.selectors(vpn) if s.local and s.remote]
    if sels:
        for s in sels:
            yield Flow(vpn, sender, _host(str(s.local[0])), _host(str(s.remote[0])))
        return
    there = _route_prefixes(src_gw, vpn)
    back = _route_prefixes(dst_gw, vpn)
    for dst in there:
        version = ipaddress.ip_network(dst).version
        for src in back:
            if ipaddress.ip_network(src).version == version:
                yield Flow(vpn, sender, _host(src), _host(dst))
                break


def flows(a: Gateway, b: Gateway) -> list[Flow]:
    """Every (tunnel, direction, address family) that can carry traffic between `a` and `b`."""
    out: list[Flow] = []
    common = [n for n in a.tunnel_names() if n in set(b.tunnel_names())]
    for vpn in common:
        out += list(_one_way(a, b, vpn, "a"))
        out += list(_one_way(b, a, vpn, "b"))
    return out


def udp_packet(src: str, dst: str, payload: bytes, sport: int = 40000, dport: int = 9,
               df: bool = False, ident: int = 0, tos: int = 0) -> bytes:
    """An IPv4 or IPv6 UDP packet with correct header and UDP checksums."""
    s, d = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    length = 8 + len(payload)
    udp = bytearray(struct.pack("!HHHH", sport, dport, length, 0) + payload)
    acc = ones_sum(s + d) + 17 + length + ones_sum(bytes(udp))
    struct.pack_into("!H", udp, 6, (~fold(acc) & 0xFFFF) or 0xFFFF)
    if len(s) == 4:
        hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + length, ident & 0xFFFF,
                                    0x4000 if df else 0, 64, 17, 0, s, d))
        struct.pack_into("!H", hdr, 10, internet_checksum(bytes(hdr)))
        return bytes(hdr) + bytes(udp)
    return struct.pack("!IHBB16s16s", 0x60000000 | (tos << 20), length, 17, 64, s, d) + bytes(udp)


def packets(flow: Flow, n: int, size: int = 200, start: int = 0, df: bool = False
            ) -> list[bytes]:
    """`n` UDP packets of `size` bytes (whole IP packet) for `flow`, numbered from `start`."""
    header = 48 if flow.ipv6 else 28
    out = []
    for i in range(start, start + n):
        body = struct.pack("!I", i) + bytes(max(0, size - header - 4))
        out.append(udp_packet(flow.src, flow.dst, body, sport=40000 + i % 1000, df=df,
                              ident=i))
    return out
