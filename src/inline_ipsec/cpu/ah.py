"""AH on the CPU path (RFC 4302), tunnel and transport mode, IPv4 and IPv6.

The AH header (§2): next header, payload length (AH length in 32-bit words minus 2), reserved,
SPI, sequence number, ICV. The ICV field is padded so the AH header is a multiple of 32 bits
over IPv4 and of 64 bits over IPv6 (§2.6, §3.3.3.2.1); the padding (zeros here) is covered by
the ICV. The ICV (§3.3.3) covers the IP header with its mutable fields zeroed (§3.3.3.1:
IPv4 TOS, flags, fragment offset, TTL, header checksum and mutable options, Appendix A.1;
IPv6 traffic class, flow label, hop limit and the data of options marked "may change",
Appendix A.2), the AH header with a zero ICV, and everything after it; with ESN the high 32
bits of the sequence number are appended after the packet, never sent (§2.5.1, §3.3.3.2.2).
"""
from __future__ import annotations

import hmac
import struct

from ..packet.ip import (
    PROTO_AH,
    PROTO_DSTOPTS,
    PROTO_HOPOPT,
    PROTO_IPIP,
    PROTO_IPV6,
    decap_ds_field,
    ipv4_set_checksum,
    ipv4_zero_mutable_options,
    ipv6_walk,
    ipv6_zero_mutable_options,
    set_tos,
)
from .state import (
    ECN_DROP,
    AUTH_FAILED,
    BAD_TRAILER,
    BELOW,
    EXPIRED,
    MALFORMED,
    NO_ROOM,
    OK,
    SEQ_OVERFLOW,
    SaState,
)
from .transforms import Integrity

_H = struct.Struct("!H")
_L = struct.Struct("!L")
_AH = struct.Struct("!BBHLL")
_V4Z = struct.Struct("!BBHHHBBH4s4s")
_V6Z = struct.Struct("!IHBB16s16s")


def ah_length(icv_len: int, ipv6: bool) -> int:
    """The AH header length with its ICV padded to 32 (IPv4) or 64 (IPv6) bits (§3.3.3.2.1)."""
    n = 12 + icv_len
    return n + (-n % (8 if ipv6 else 4))


def zero_mutable(buf: bytearray, ah_at: int) -> None:
    """Zero the mutable fields of the IP header(s) at buf[0:ah_at] (RFC 4302 §3.3.3.1).
    Raises ValueError on a malformed option or extension header."""
    if buf[0] >> 4 == 4:
        ihl = (buf[0] & 0x0F) * 4
        buf[1] = 0                         # TOS (DSCP, ECN)
        buf[6] = buf[7] = 0                # flags, fragment offset
        buf[8] = 0                         # TTL
        buf[10] = buf[11] = 0              # header checksum
        ipv4_zero_mutable_options(buf, 20, ihl)
        return
    buf[0] = 0x60                          # traffic class, flow label
    buf[1] = buf[2] = buf[3] = 0
    buf[7] = 0                             # hop limit
    proto, pos = buf[6], 40
    while pos < ah_at:
        hlen = (buf[pos + 1] + 1) * 8
        if proto in (PROTO_HOPOPT, PROTO_DSTOPTS):
            ipv6_zero_mutable_options(buf, pos, pos + hlen)
        # a routing header is "mutable but predictable": the receiver sees it as it arrives
        proto = buf[pos]
        pos += hlen


class AhOut(SaState):
    """The sending direction of an AH SA."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.integ = Integrity(str(self.spec.integrity), self.spec.integrity_key)
        self.icv_len = self.integ.icv_len

    def encrypt_group(self, mv, slot: int, idx, offs, lens, status, now: float) -> None:
        life = self.life
        if not self.unlimited and life.check_time(now):
            for i in idx:
                status[i] = EXPIRED
            self.expired += len(idx)
            return
        for i in idx:
            if life.expired:
                status[i], self.expired = EXPIRED, self.expired + 1
                continue
            off, ln = offs[i], lens[i]
            if off > slot or ln > slot - off or ln == 0:
                status[i], self.malformed = MALFORMED, self.malformed + 1
                continue
            p = i * slot + off
            st = self._one(mv, slot, i, p, off, ln, offs, lens, now)
            status[i] = st
            if st == OK:
                self.packets += 1
                self.bytes += ln
                if self.packets >= life.next_packets or self.bytes >= life.next_bytes:
                    life.crossed(self.packets, self.bytes, now)

    def _next_seq(self, now: float) -> int:
        if self.seq >= self.max_seq:
            self.overflow(now)
            self.seq_overflow += 1
            return 0
        self.seq += 1
        return self.seq

    def _one(self, mv, slot, i, p, off, ln, offs, lens, now) -> int:
        v = mv[p] >> 4
        if v == 4:
            hlen = (mv[p] & 0x0F) * 4
            if ln < 20 or hlen < 20 or hlen > ln or _H.unpack_from(mv, p + 2)[0] != ln:
                self.malformed += 1
                return MALFORMED
        elif v == 6:
            if ln < 40 or 40 + _H.unpack_from(mv, p + 4)[0] != ln:
                self.malformed += 1
                return MALFORMED
        else:
            self.malformed += 1
            return MALFORMED
        if self.tunnel:
            return self._tunnel(mv, slot, i, p, off, ln, v, offs, lens, now)
        return self._transport(mv, slot, i, p, off, ln, v, offs, lens, now)

    def _tunnel(self, mv, slot, i, p, off, ln, v, offs, lens, now) -> int:
        """RFC 4302 §3.1: outer header, AH, the whole inner packet."""
        ah_len = ah_length(self.icv_len, self.ipv6)
        hdr_len = self.ip_len + ah_len
        total = hdr_len + ln
        if off < hdr_len or total - (40 if self.ipv6 else 0) > 0xFFFF:
            self.no_room += 1
            return NO_ROOM
        if v == 4:
            nh, tos = PROTO_IPIP, mv[p + 1]
            df = 0x40 if self.df_mode == "set" or (self.df_mode == "copy"
                                                   and mv[p + 6] & 0x40) else 0
        else:
            nh, tos = PROTO_IPV6, ((mv[p] & 0x0F) << 4) | (mv[p + 1] >> 4)
            df = 0 if self.df_mode == "clear" else 0x40
        seq = self._next_seq(now)
        if not seq:
            return SEQ_OVERFLOW
        q = p - hdr_len
        if self.ipv6:
            zeroed = _V6Z.pack(0x60000000, total - 40, PROTO_AH, 0, self.src, self.dst)
        else:
            zeroed = _V4Z.pack(0x45, 0, total, seq & 0xFFFF, 0, 0, PROTO_AH, 0, self.src,
                               self.dst)
        ah = _AH.pack(nh, ah_len // 4 - 2, 0, self.spi, seq & 0xFFFFFFFF) + bytes(ah_len - 12)
        data = zeroed + ah + mv[p:p + ln].tobytes()
        if self.esn:
            data += _L.pack(seq >> 32)
        icv = self.integ.mac(data)
        a = q + self.ip_len
        mv[a:a + ah_len] = ah
        mv[a + 12:a + 12 + len(icv)] = icv
        if self.ipv6:
            self.outer_ipv6(mv, q, tos, total - 40)
        else:
            self.outer_ipv4(mv, q, tos, total, seq & 0xFFFF, df)
        offs[i] = off - hdr_len
        lens[i] = total
        return OK

    def _transport(self, mv, slot, i, p, off, ln, v, offs, lens, now) -> int:
        """RFC 4302 §3.1.1: AH between the packet's IP header (IPv6: after hop-by-hop,
        routing and destination options headers) and its payload."""
        try:
            if v == 4:
                hlen = (mv[p] & 0x0F) * 4
                if _H.unpack_from(mv, p + 6)[0] & 0x3FFF:
                    raise ValueError("a fragment")    # AH protects whole datagrams (§3.1.1)
                nh, nh_at = mv[p + 9], 9
            else:
                nh, pos, field = ipv6_walk(mv, p, p + ln)
                hlen, nh_at = pos - p, field - p
        except ValueError:
            self.malformed += 1
            return MALFORMED
        ah_len = ah_length(self.icv_len, v == 6)
        total = ln + ah_len
        if off < ah_len or total - (40 if v == 6 else 0) > 0xFFFF:
            self.no_room += 1
            return NO_ROOM
        hdr = bytearray(mv[p:p + hlen])
        hdr[nh_at] = PROTO_AH
        if v == 4:
            _H.pack_into(hdr, 2, total)
        else:
            _H.pack_into(hdr, 4, total - 40)
        zeroed = bytearray(hdr)
        try:
            zero_mutable(zeroed, hlen)
        except (ValueError, IndexError):
            self.malformed += 1
            return MALFORMED
        seq = self._next_seq(now)
        if not seq:
            return SEQ_OVERFLOW
        if v == 4:
            ipv4_set_checksum(hdr, 0)
        ah = _AH.pack(nh, ah_len // 4 - 2, 0, self.spi, seq & 0xFFFFFFFF) + bytes(ah_len - 12)
        payload = mv[p + hlen:p + ln].tobytes()
        data = bytes(zeroed) + ah + payload
        if self.esn:
            data += _L.pack(seq >> 32)
        icv = self.integ.mac(data)
        q = p - ah_len
        mv[q:q + hlen] = hdr
        mv[q + hlen:q + hlen + ah_len] = ah
        mv[q + hlen + 12:q + hlen + 12 + len(icv)] = icv
        offs[i] = off - ah_len
        lens[i] = total
        return OK


class AhIn(SaState):
    """The receiving direction of an AH SA."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.integ = Integrity(str(self.spec.integrity), self.spec.integrity_key)
        self.icv_len = self.integ.icv_len

    def decrypt_group(self, mv, slot: int, items, offs, lens, status, now: float) -> None:
        """`items` as for `EspIn.decrypt_group`; e is the AH header's position."""
        life = self.life
        if not self.unlimited and life.check_time(now):
            for it in items:
                status[it[0]] = EXPIRED
            self.expired += len(items)
            return
        replay = self.replay
        for i, p, ln, l4, nhf, e, elen, outer_tos in items:
            if life.expired:
                status[i], self.expired = EXPIRED, self.expired + 1
                continue
            st, out, n = self._one(mv, p, ln, l4, nhf, e, elen, outer_tos, replay)
            status[i] = st
            if st == OK:
                offs[i] = out - i * slot
                lens[i] = n
                self.packets += 1
                self.bytes += n
                if self.packets >= life.next_packets or self.bytes >= life.next_bytes:
                    life.crossed(self.packets, self.bytes, now)

    def _one(self, mv, p, ln, l4, nhf, e, elen, outer_tos, replay) -> tuple[int, int, int]:
        icv_len = self.icv_len
        ah_len = (mv[e + 1] + 2) * 4
        v6 = mv[p] >> 4 == 6
        if elen < 12 or ah_len < 12 + icv_len or ah_len > elen or (v6 and ah_len % 8):
            self.malformed += 1
            return MALFORMED, 0, 0
        seq = replay.infer(_L.unpack_from(mv, e + 8)[0])
        if seq is None:
            return self.replay_status(BELOW), 0, 0
        st = replay.check(seq)
        if st:
            return self.replay_status(st), 0, 0
        buf = bytearray(mv[p:p + ln])
        a = e - p
        try:
            zero_mutable(buf, a)
        except (ValueError, IndexError):
            self.malformed += 1
            return MALFORMED, 0, 0
        got = bytes(buf[a + 12:a + 12 + icv_len])
        buf[a + 12:a + 12 + icv_len] = bytes(icv_len)
        if self.esn:
            buf += _L.pack(seq >> 32)
        if not hmac.compare_digest(self.integ.mac(buf), got):
            self.auth_failed += 1
            return AUTH_FAILED, 0, 0
        st = replay.check(seq)
        if st:
            return self.replay_status(st), 0, 0
        replay.advance(seq)
        nh = mv[e]
        inner = e + ah_len
        n = p + ln - inner
        # (no "dummy packet" in AH: next header 59 is a packet with no payload, RFC 8200 §4.7)
        if not self.tunnel:
            hdr = bytearray(mv[p:e])
            hdr[nhf - p] = nh
            total = len(hdr) + n
            if hdr[0] >> 4 == 4:
                _H.pack_into(hdr, 2, total)
                ipv4_set_checksum(hdr, 0)
            else:
                _H.pack_into(hdr, 4, total - 40)
            out = inner - len(hdr)
            mv[out:inner] = hdr
            return OK, out, total
        claimed = self.inner_length(mv, inner, n, nh)
        if claimed < 0:
            return -claimed, 0, 0
        if nh == PROTO_IPIP:
            inner_tos = mv[inner + 1]
        else:
            inner_tos = ((mv[inner] & 0x0F) << 4) | (mv[inner + 1] >> 4)
        if inner_tos != outer_tos:
            tos = decap_ds_field(inner_tos, outer_tos, self.copy_dscp)
            if tos is None:               # outer CE over Not-ECT: MUST drop (RFC 6040 §4.2)
                self.ecn_drop += 1
                return ECN_DROP, 0, 0
            if tos != inner_tos:
                set_tos(mv, inner, tos)
                if nh == PROTO_IPIP:
                    ipv4_set_checksum(mv, inner)
        return OK, inner, claimed
