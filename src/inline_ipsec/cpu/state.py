"""Per-SA runtime state shared by the ESP and AH processors of the CPU path.

An `SaState` is built once at install from the cold `SaSpec` (docs/design.md §1): the transform is
keyed, the outer-header template and its constant checksum part are precomputed, and the
counters, anti-replay window and lifetime book-keeping live here. The processors then run one
tight loop per group of packets of this SA (`encrypt_group` / `decrypt_group`).
"""
from __future__ import annotations

import struct
from typing import Callable

from ..engine import Status

from ..engine import SaCounters
from ..packet.ip import (
    PROTO_AH,
    PROTO_ESP,
    PROTO_IPIP,
    PROTO_IPV6,
    PROTO_UDP,
    address_bytes,
    ipv4_const_sum,
    ones_sum,
)
from ..sa import SaSpec
from .lifetimes import LifetimeState, SaEvent
from .replay import ReplayWindow

OK = int(Status.OK)
AUTH_FAILED = int(Status.AUTH_FAILED)
DUPLICATE = int(Status.REPLAY_DUPLICATE)
BELOW = int(Status.REPLAY_BELOW_WINDOW)
MALFORMED = int(Status.MALFORMED)
ECN_DROP = int(Status.ECN_DROP)
BAD_TRAILER = int(Status.BAD_TRAILER)
SEQ_OVERFLOW = int(Status.SEQ_OVERFLOW)
DUMMY = int(Status.DUMMY)
NO_ROOM = int(Status.NO_ROOM)
EXPIRED = int(Status.EXPIRED)

MAX_SEQ_32 = 0xFFFFFFFF
MAX_SEQ_64 = 0xFFFFFFFFFFFFFFFF

OUTBOUND = "outbound"
INBOUND = "inbound"

#: pad bytes 1, 2, 3, ... (RFC 4303 §2.4) by pad length
PADS = tuple(bytes(range(1, n + 1)) for n in range(256))

_H = struct.Struct("!H")
_L = struct.Struct("!L")


class SaState:
    """Counters, lifetime, replay window and outer-header template of one SA direction."""

    #: set at install: the SA's packets can take the PMI vector loops (cpu/pmi.py)
    vector_out = False
    vector_in = False

    def __init__(self, handle: int, spec: SaSpec, direction: str, now: float,
                 sink: Callable[[SaEvent], None]) -> None:
        self.handle = handle
        self.spec = spec
        self.spi = spec.spi
        self.direction = direction
        self.esn = spec.esn
        self.tunnel = spec.mode == "tunnel"
        self.ipv6 = spec.outer_ipv6
        self.udp = spec.udp_encap
        self.df_mode = spec.df_bit
        self.ttl = spec.ttl
        self.copy_dscp = spec.copy_outer_dscp
        self.src = address_bytes(spec.tunnel_src)
        self.dst = address_bytes(spec.tunnel_dst)
        ipsec_proto = PROTO_AH if spec.protocol == "ah" else PROTO_ESP
        self.proto_in = ipsec_proto       # the protocol an inbound packet must carry
        self.proto = PROTO_UDP if spec.udp_encap else ipsec_proto
        self.ip_len = 40 if self.ipv6 else 20
        self.outer_len = self.ip_len + (8 if self.udp else 0)   # outer IP (+UDP) bytes
        # Constant parts of the outer checksums (RFC 1624 incremental update per packet).
        self.v4_sum = ipv4_const_sum(self.src, self.dst, self.ttl, self.proto)
        self.v6_pseudo = ones_sum(self.src + self.dst) + PROTO_UDP
        self.seq = 0                      # outbound: last sequence number sent
        self.max_seq = MAX_SEQ_64 if spec.esn else MAX_SEQ_32
        self.rekey = False                # the sequence space is exhausted
        self.replay = ReplayWindow(spec.replay_window, spec.esn)
        self.life = LifetimeState(handle, spec.spi, direction, spec.lifetime, now, sink)
        self.unlimited = spec.lifetime.is_unlimited
        self._sink = sink
        # One attribute per SaCounters field (the counter catalogue's "sa" counters); the
        # processors count into them directly.
        for name in SaCounters.COUNTERS:  # type: ignore[attr-defined]
            setattr(self, name, 0)

    def counters(self) -> SaCounters:
        return SaCounters(**{name: getattr(self, name)  # type: ignore[call-arg]
                             for name in SaCounters.COUNTERS})  # type: ignore[attr-defined]

    def overflow(self, now: float) -> None:
        """The last sequence number was used (RFC 4303 §3.3.3): no more packets, rekey."""
        if not self.rekey:
            self.rekey = True
            self._sink(SaEvent("rekey-due", self.handle, self.spi, self.direction,
                               "sequence", now))

    def inner_length(self, buf, off: int, avail: int, nh: int) -> int:
        """The inner packet of a tunnel-mode SA at `buf[off]`, `avail` bytes decrypted or
        authenticated: its length, after checking every header field a later step reads, or
        minus a status, counted (the PFE's rules, src/_pfe_core/esp_inb.pyx).

        The next header must name the inner version and the fixed header must fit
        (BAD_TRAILER); over IPv4 IHL >= 5 and IHL x 4 <= total length <= avail (RFC 791
        §3.1), over IPv6 40 + payload length <= avail (RFC 8200 §3), else MALFORMED. The
        length drops TFC padding (RFC 4303 §2.7)."""
        if nh == PROTO_IPIP:
            if avail < 20 or buf[off] >> 4 != 4:
                self.bad_trailer += 1
                return -BAD_TRAILER
            total = (buf[off + 2] << 8) | buf[off + 3]
            if (buf[off] & 0x0F) < 5 or total < (buf[off] & 0x0F) * 4 or total > avail:
                self.malformed += 1
                return -MALFORMED
            return total
        if nh == PROTO_IPV6:
            if avail < 40 or buf[off] >> 4 != 6:
                self.bad_trailer += 1
                return -BAD_TRAILER
            total = 40 + ((buf[off + 4] << 8) | buf[off + 5])
            if total > avail:
                self.malformed += 1
                return -MALFORMED
            return total
        self.bad_trailer += 1             # tunnel mode carries IP only
        return -BAD_TRAILER

    def replay_status(self, st: int) -> int:
        if st == DUPLICATE:
            self.replay_duplicate += 1
        else:
            self.replay_below_window += 1
        return st

    def outer_ipv4(self, buf, q: int, tos: int, total: int, ident: int, flags: int) -> None:
        """Write the outer IPv4 header (RFC 791) for this SA at `buf[q]`."""
        s = self.v4_sum + tos + total + ident + (flags << 8)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        _V4.pack_into(buf, q, 0x45, tos, total, ident, flags << 8, self.ttl, self.proto,
                      ~s & 0xFFFF, self.src, self.dst)

    def outer_ipv6(self, buf, q: int, tos: int, plen: int) -> None:
        """Write the outer IPv6 header (RFC 8200 §3): flow label 0."""
        _V6.pack_into(buf, q, 0x60000000 | (tos << 20), plen, self.proto, self.ttl,
                      self.src, self.dst)

    def udp_header(self, buf, q: int, total: int) -> None:
        """The NAT-T UDP header after the outer IP header at `q` (RFC 3948 §2.1): checksum 0
        over IPv4, computed over IPv6 (RFC 8200 §8.1)."""
        u = q + self.ip_len
        ulen = total - self.ip_len
        _UDP.pack_into(buf, u, self.spec.udp_sport, self.spec.udp_dport, ulen, 0)
        if self.ipv6:
            data = buf[u:q + total]
            acc = self.v6_pseudo + ulen + ones_sum(data)
            while acc >> 16:
                acc = (acc & 0xFFFF) + (acc >> 16)
            _H.pack_into(buf, u + 6, (~acc & 0xFFFF) or 0xFFFF)


_V4 = struct.Struct("!BBHHHBBH4s4s")
_V6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
