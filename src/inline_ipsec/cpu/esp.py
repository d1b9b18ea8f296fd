"""ESP on the CPU path: one tight loop per group of packets of one SA (RFC 4303).

Outbound (§3.3): validate the inner packet, check room and the sequence space, take the next
sequence number (§3.3.3), append padding 1, 2, 3, ... (§2.4), pad length and next header, seal,
then write ESP (§2.1), the optional NAT-T UDP header (RFC 3948 §2.1) and the outer header into
the slot's headroom. Tunnel mode (§3.1.2) wraps the whole inner packet; transport mode (§3.1.1)
keeps the packet's own IP header and protects what follows it.

Inbound (§3.4): the engine has parsed the outer header and found the SA by SPI; here the
anti-replay check (read-only, with ESN inference, §3.4.3 and Appendix A2), the ICV (§3.4.4),
the anti-replay check again plus the window advance, then the trailer (§2.4, §2.6) and, in
tunnel mode, the DS field of the inner packet (RFC 6040 §4.2). The wire rules shared with the
PFE are in docs/wire-format.md.
"""
from __future__ import annotations

import struct
from typing import Any

from cryptography.exceptions import InvalidTag

from ..packet.ip import (
    PROTO_ESP,
    PROTO_IPIP,
    PROTO_IPV6,
    PROTO_NONE,
    PROTO_UDP,
    decap_ds_field,
    fix_l4_checksum,
    ipv4_set_checksum,
    ipv6_walk,
    set_tos,
    udp6_checksum,
)
from .state import (
    ECN_DROP,
    AUTH_FAILED,
    BAD_TRAILER,
    BELOW,
    DUMMY,
    EXPIRED,
    MALFORMED,
    NO_ROOM,
    OK,
    PADS,
    SEQ_OVERFLOW,
    SaState,
)
from .transforms import AesGcm, ChaChaPoly, make_transform

_H = struct.Struct("!H")
_L = struct.Struct("!L")
_Q = struct.Struct("!Q")
_HDR = struct.Struct("!LL")
_GCM_HDR = struct.Struct("!LLQ")
_ESN_AAD = struct.Struct("!LLL")
_V4_ESP = struct.Struct("!BBHHHBBH4s4sLL")     # outer IPv4 + SPI, seq
_V4_GCM = struct.Struct("!BBHHHBBH4s4sLLQ")    # ... + the 8-byte IV (= seq, RFC 4106 §3.1)


def _trailers(align: int, nh: int) -> tuple[bytes, ...]:
    """Padding || pad length || next header for every payload length modulo `align`."""
    out = []
    for r in range(align):
        pad = (-(r + 2)) % align
        out.append(PADS[pad] + bytes((pad, nh)))
    return tuple(out)


class EspOut(SaState):
    """The sending direction of an ESP SA."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        t = self.transform = make_transform(self.spec)
        self.iv_len = t.iv_len
        self.icv_len = t.icv_len
        self.align = t.align
        self.trail4 = _trailers(t.align, PROTO_IPIP)
        self.trail6 = _trailers(t.align, PROTO_IPV6)
        self.hdr_len = self.outer_len + 8 + t.iv_len
        # AES-GCM is the hot case (and must match the PFE byte for byte): for it and for
        # ChaCha20-Poly1305 (same framing, RFC 7634 §2) the loop calls the AEAD directly.
        self.gcm = type(t) in (AesGcm, ChaChaPoly)

    # -- tunnel mode ------------------------------------------------------------------------------

    def encrypt_group(self, mv, slot: int, idx, offs, lens, status, now: float) -> None:
        if not self.unlimited and self.life.check_time(now):
            for i in idx:
                status[i] = EXPIRED
            self.expired += len(idx)
            return
        if not self.tunnel:
            return self._encrypt_transport(mv, slot, idx, offs, lens, status, now)
        life = self.life
        seal = self.transform.seal
        gcm = self.gcm
        if gcm:
            t: Any = self.transform
            aead_encrypt, salt = t.aead.encrypt, t.salt
        hdr_len = self.hdr_len
        icv_len = self.icv_len
        align = self.align
        ipv6 = self.ipv6
        udp = self.udp
        v4_plain = not ipv6 and not udp   # one struct write for the IPv4 and ESP headers
        v4_sum, ttl, proto, src, dst = self.v4_sum, self.ttl, self.proto, self.src, self.dst
        df_fixed = {"clear": 0, "set": 0x40}.get(self.df_mode)   # None: copy
        df6 = 0 if self.df_mode == "clear" else 0x40
        spi = self.spi
        esn = self.esn
        max_seq = self.max_seq
        trail4, trail6 = self.trail4, self.trail6
        esp_at = self.outer_len
        seq = self.seq
        packets, nbytes = self.packets, self.bytes
        next_p, next_b = life.next_packets, life.next_bytes
        for i in idx:
            if life.expired:
                status[i] = EXPIRED
                self.expired += 1
                continue
            off = offs[i]
            ln = lens[i]
            if off > slot or ln > slot - off or ln == 0:
                status[i] = MALFORMED
                self.malformed += 1
                continue
            p = i * slot + off
            b0 = mv[p]
            if b0 >> 4 == 4:
                if ln < 20 or (b0 & 0x0F) < 5 or (b0 & 0x0F) * 4 > ln \
                        or _H.unpack_from(mv, p + 2)[0] != ln:       # RFC 791 §3.1
                    status[i] = MALFORMED
                    self.malformed += 1
                    continue
                tos = mv[p + 1]
                trail = trail4[ln % align]
                df = df_fixed if df_fixed is not None else (mv[p + 6] & 0x40)
            elif b0 >> 4 == 6:
                if ln < 40 or 40 + _H.unpack_from(mv, p + 4)[0] != ln:
                    status[i] = MALFORMED
                    self.malformed += 1
                    continue
                tos = ((b0 & 0x0F) << 4) | (mv[p + 1] >> 4)
                trail = trail6[ln % align]
                df = df6                  # IPv6 is never fragmented in flight: DF for copy
            else:
                status[i] = MALFORMED
                self.malformed += 1
                continue
            plain_len = ln + len(trail)
            total = hdr_len + plain_len + icv_len
            if off < hdr_len or slot - off - ln < len(trail) + icv_len:
                status[i] = NO_ROOM
                self.no_room += 1
                continue
            if total - (40 if ipv6 else 0) > 0xFFFF:
                status[i] = NO_ROOM
                self.no_room += 1
                continue
            if seq >= max_seq:
                self.seq = seq
                self.overflow(now)
                status[i] = SEQ_OVERFLOW
                self.seq_overflow += 1
                continue
            seq += 1
            seq_lo = seq & 0xFFFFFFFF
            q = p - hdr_len
            e = q + esp_at
            plain = mv[p:p + ln].tobytes() + trail
            if v4_plain:                  # RFC 791 header, checksum updated incrementally
                c = v4_sum + tos + total + (seq & 0xFFFF) + (df << 8)
                c = (c & 0xFFFF) + (c >> 16)
                c = (c & 0xFFFF) + (c >> 16)
                (_V4_GCM if gcm else _V4_ESP).pack_into(
                    mv, q, 0x45, tos, total, seq & 0xFFFF, df << 8, ttl, proto, ~c & 0xFFFF,
                    src, dst, spi, seq_lo, *((seq,) if gcm else ()))
            elif gcm:
                _GCM_HDR.pack_into(mv, e, spi, seq_lo, seq)
            else:
                _HDR.pack_into(mv, e, spi, seq_lo)
            if gcm:                       # IV = seq; AAD = SPI || [seq_hi ||] seq_lo
                mv[p:p + plain_len + 16] = aead_encrypt(
                    salt + mv[e + 8:e + 16], plain,
                    _ESN_AAD.pack(spi, seq >> 32, seq_lo) if esn else mv[e:e + 8])
            else:
                body = seal(seq, mv[e:e + 8].tobytes(), plain)
                mv[e + 8:e + 8 + len(body)] = body
            if not v4_plain:
                if ipv6:
                    self.outer_ipv6(mv, q, tos, total - 40)
                else:
                    self.outer_ipv4(mv, q, tos, total, seq & 0xFFFF, df)
                if udp:
                    self.udp_header(mv, q, total)
            offs[i] = off - hdr_len
            lens[i] = total
            packets += 1
            nbytes += ln
            if packets >= next_p or nbytes >= next_b:
                life.crossed(packets, nbytes, now)
                next_p, next_b = life.next_packets, life.next_bytes
        self.seq = seq
        self.packets, self.bytes = packets, nbytes

    # -- transport mode ---------------------------------------------------------------------------

    def _encrypt_transport(self, mv, slot, idx, offs, lens, status, now) -> None:
        """RFC 4303 §3.1.1: ESP (and the NAT-T UDP header) go between the packet's IP header
        (IPv6: after hop-by-hop, routing and destination options headers) and its payload."""
        life = self.life
        t = self.transform
        ext = 8 + (8 if self.udp else 0) + self.iv_len
        for i in idx:
            if life.expired:
                status[i] = EXPIRED
                self.expired += 1
                continue
            off, ln = offs[i], lens[i]
            if off > slot or ln > slot - off or ln == 0:
                status[i], self.malformed = MALFORMED, self.malformed + 1
                continue
            p = i * slot + off
            v = mv[p] >> 4
            try:
                if v == 4:
                    hlen = (mv[p] & 0x0F) * 4
                    if ln < 20 or hlen < 20 or hlen > ln or _H.unpack_from(mv, p + 2)[0] != ln \
                            or _H.unpack_from(mv, p + 6)[0] & 0x3FFF:
                        raise ValueError("bad IPv4 header or a fragment")
                    nh, nh_at = mv[p + 9], 9
                elif v == 6:
                    if ln < 40 or 40 + _H.unpack_from(mv, p + 4)[0] != ln:
                        raise ValueError("bad IPv6 header")
                    nh, pos, field = ipv6_walk(mv, p, p + ln)
                    hlen, nh_at = pos - p, field - p
                else:
                    raise ValueError("not IP")
            except ValueError:
                status[i], self.malformed = MALFORMED, self.malformed + 1
                continue
            payload = mv[p + hlen:p + ln].tobytes()
            pad = (-(len(payload) + 2)) % self.align
            plain = payload + PADS[pad] + bytes((pad, nh))
            total = ln + ext + pad + 2 + self.icv_len
            if off < ext or slot - off - ln < pad + 2 + self.icv_len or \
                    total - (40 if v == 6 else 0) > 0xFFFF:
                status[i], self.no_room = NO_ROOM, self.no_room + 1
                continue
            if self.seq >= self.max_seq:
                self.overflow(now)
                status[i], self.seq_overflow = SEQ_OVERFLOW, self.seq_overflow + 1
                continue
            self.seq += 1
            seq = self.seq
            hdr = bytearray(mv[p:p + hlen])
            hdr[nh_at] = PROTO_UDP if self.udp else PROTO_ESP
            if v == 4:
                _H.pack_into(hdr, 2, total)
                ipv4_set_checksum(hdr, 0)
            else:
                _H.pack_into(hdr, 4, total - 40)
            q = p - ext
            mv[q:q + hlen] = hdr
            e = q + hlen + (8 if self.udp else 0)
            hdr8 = _HDR.pack(self.spi, seq & 0xFFFFFFFF)
            body = t.seal(seq, hdr8, plain)
            mv[e:e + 8] = hdr8
            mv[e + 8:e + 8 + len(body)] = body
            if self.udp:
                self._transport_udp(mv, q, hlen, total, v == 6)
            offs[i], lens[i], status[i] = off - ext, total, OK
            self._count(ln, now)

    def _transport_udp(self, mv, q, hlen, total, v6) -> None:
        u = q + hlen
        ulen = total - hlen
        struct.pack_into("!HHHH", mv, u, self.spec.udp_sport, self.spec.udp_dport, ulen, 0)
        if v6:
            src = mv[q + 8:q + 24].tobytes()
            dst = mv[q + 24:q + 40].tobytes()
            _H.pack_into(mv, u + 6, udp6_checksum(src, dst, mv[u:q + total].tobytes()))

    def _count(self, nbytes: int, now: float) -> None:
        self.packets += 1
        self.bytes += nbytes
        life = self.life
        if self.packets >= life.next_packets or self.bytes >= life.next_bytes:
            life.crossed(self.packets, self.bytes, now)


class EspIn(SaState):
    """The receiving direction of an ESP SA."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        t = self.transform = make_transform(self.spec)
        self.iv_len = t.iv_len
        self.icv_len = t.icv_len
        self.block = t.block
        self.aead = type(t) in (AesGcm, ChaChaPoly)      # RFC 4106 / RFC 7634 framing
        # SPI, seq, IV, at least pad length + next header (a whole block for CBC), ICV.
        self.min_len = 8 + t.iv_len + max(2, t.block) + t.icv_len

    def decrypt_group(self, mv, slot: int, items, offs, lens, status, now: float) -> None:
        """`items`: (i, p, ln, l4, nh_field, e, esp_len, outer_tos) per packet, from the
        engine's outer-header parse: packet start p, its (trimmed) length, the offset of the
        header after the IP header(s), the next-header byte naming it, the ESP start e."""
        life = self.life
        if not self.unlimited and life.check_time(now):
            for it in items:
                status[it[0]] = EXPIRED
            self.expired += len(items)
            return
        open_ = self.transform.open
        t: Any = self.transform
        aead = type(t) in (AesGcm, ChaChaPoly)      # RFC 4106 / RFC 7634 framing, inlined
        if aead:
            aead_decrypt, salt = t.aead.decrypt, t.salt
        esn = self.esn
        replay = self.replay
        infer, check, advance = replay.infer, replay.check, replay.advance
        iv_len, icv_len, block, min_len = self.iv_len, self.icv_len, self.block, self.min_len
        tunnel = self.tunnel
        for i, p, ln, l4, nhf, e, elen, outer_tos in items:
            if life.expired:
                status[i] = EXPIRED
                self.expired += 1
                continue
            if elen < min_len or (elen - 8 - iv_len - icv_len) % block:
                status[i] = MALFORMED
                self.malformed += 1
                continue
            seq = infer(_L.unpack_from(mv, e + 4)[0])
            if seq is None:
                status[i] = self.replay_status(BELOW)
                continue
            st = check(seq)
            if st:
                status[i] = self.replay_status(st)
                continue
            if aead:
                try:
                    pt = aead_decrypt(salt + mv[e + 8:e + 16], mv[e + 16:e + elen],
                                      mv[e:e + 4].tobytes() + _L.pack(seq >> 32)
                                      + mv[e + 4:e + 8].tobytes() if esn else mv[e:e + 8])
                except InvalidTag:
                    pt = None
            else:
                pt = open_(seq, mv[e:e + elen])
            if pt is None:
                status[i] = AUTH_FAILED
                self.auth_failed += 1
                continue
            st = check(seq)               # a packet of this burst may have taken it meanwhile
            if st:
                status[i] = self.replay_status(st)
                continue
            advance(seq)
            n = len(pt)
            pad_len = pt[n - 2]
            nh = pt[n - 1]
            inner_len = n - 2 - pad_len
            if inner_len < 0 or pt[inner_len:n - 2] != PADS[pad_len]:
                status[i] = BAD_TRAILER
                self.bad_trailer += 1
                continue
            if nh == PROTO_NONE:          # dummy packet (RFC 4303 §2.6)
                status[i] = DUMMY
                self.dummy += 1
                continue
            out = e + 8 + iv_len
            if tunnel:
                st = self._tunnel_inner(mv, pt, inner_len, nh, out, outer_tos)
                if st < 0:
                    status[i] = -st
                    continue
                inner_len = st
                offs[i] = out - (i * slot)
                lens[i] = inner_len
            else:
                inner_len = self._transport_inner(mv, pt, inner_len, nh, out, p, l4, nhf)
                offs[i] = out - l4 - i * slot
                lens[i] = inner_len
            status[i] = OK
            self.packets += 1
            self.bytes += inner_len
            if self.packets >= life.next_packets or self.bytes >= life.next_bytes:
                life.crossed(self.packets, self.bytes, now)

    def _transport_inner(self, mv, pt: bytes, n: int, nh: int, out: int, p: int, hlen: int,
                         nhf: int) -> int:
        """RFC 4303 §3.1.1 transport mode: the packet's own IP header, its next-header
        field set to the ESP next header and its length to what is left, then the payload
        at `out`; returns the packet length. With NAT-T the TCP/UDP checksum is recomputed
        (RFC 3948 §3.1.2: the sender's covered addresses a NAT may have rewritten)."""
        hdr = bytearray(mv[p:p + hlen])
        hdr[nhf - p] = nh
        total = hlen + n
        if hdr[0] >> 4 == 4:
            _H.pack_into(hdr, 2, total)
            ipv4_set_checksum(hdr, 0)
        else:
            _H.pack_into(hdr, 4, total - 40)
        if self.udp and nh in (6, 17):
            payload = bytearray(pt[:n])
            fix_l4_checksum(hdr, nh, payload)
            mv[out:out + n] = payload
        else:
            mv[out:out + n] = pt[:n]
        mv[out - hlen:out] = hdr
        return total

    def _tunnel_inner(self, mv, pt: bytes, inner_len: int, nh: int, out: int,
                      outer_tos: int) -> int:
        """Check the inner packet of a tunnel-mode SA (`inner_length`), write it at `out`,
        apply the DS-field rules; returns its length, or minus a status."""
        claimed = self.inner_length(pt, 0, inner_len, nh)
        if claimed < 0:
            return claimed
        mv[out:out + claimed] = pt[:claimed]
        if nh == PROTO_IPIP:
            inner_tos = pt[1]
        else:
            inner_tos = ((pt[0] & 0x0F) << 4) | (pt[1] >> 4)
        if inner_tos != outer_tos:
            tos = decap_ds_field(inner_tos, outer_tos, self.copy_dscp)
            if tos is None:               # outer CE over Not-ECT: MUST drop (RFC 6040 §4.2)
                self.ecn_drop += 1
                return -ECN_DROP
            if tos != inner_tos:
                set_tos(mv, out, tos)
                if nh == PROTO_IPIP:
                    ipv4_set_checksum(mv, out)
        return claimed

