"""PowerMode IPsec (PMI) on the CPU path: the vector loops and their counters.

With `set security flow power-mode-ipsec` the CPU path takes a burst as a vector: the outer
headers of the whole burst are parsed first, packets are grouped by SA, each group's
anti-replay check is done once for the vector when its sequence numbers allow it (all above
the window and unique: the common case of an in-order stream), and each packet then costs
one struct call for its headers and one AEAD call that encrypts or decrypts in place in the
burst slot (RFC 4303 §3.3, §3.4; RFC 4106). Without the statement every packet goes alone
through the full per-packet path (`EspOut.encrypt_group` / `EspIn.decrypt_group` with one
packet), as Junos's regular flow path does.

The vector loops cover what PMI covers on an SRX: tunnel-mode ESP with an AEAD (AES-GCM,
ChaCha20-Poly1305) over IPv4 without NAT-T. Anything else in a vector (IPv6 outer headers,
NAT-T, AH, transport mode, CBC/CTR/GMAC, fragments, malformed packets) takes the per-packet
path and is counted as `regular` in `show security flow pmi statistics`; the bytes and
statuses are the same either way (tests/cpu/test_pmi.py compares them).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag

from ..packet.ip import PROTO_IPIP, PROTO_NONE, decap_ds_field, ipv4_set_checksum, set_tos
from .state import (
    AUTH_FAILED,
    BAD_TRAILER,
    BELOW,
    DUMMY,
    DUPLICATE,
    ECN_DROP,
    EXPIRED,
    MALFORMED,
    OK,
    PADS,
)

if TYPE_CHECKING:
    from .esp import EspIn, EspOut

_NONCE = struct.Struct("!LQ")        # salt || 64-bit IV (= seq on our side, RFC 4106 §4)
_V4_GCM = struct.Struct("!BBHHHBBH4s4sLLQ")    # outer IPv4 + SPI, seq, IV
_AAD = struct.Struct("!LL")
_ESN_AAD = struct.Struct("!LLL")
_INNER = struct.Struct("!BBH2xB")    # version/IHL, DS field, total length, flags byte
_INNER_IN = struct.Struct("!BBH")    # version/IHL, DS field, total length
_TAIL = struct.Struct("!HBB")        # the two bytes before pad length, pad length, next header


@dataclass
class PmiCounters:
    """Counters of the CPU path's packet processing, engine-wide (`show security flow pmi
    statistics`). `vector_*` packets went through a PMI vector loop, `regular_*` through the
    per-packet path (PMI off, or a packet PMI does not cover)."""

    vectors: int = 0
    vector_encrypt: int = 0
    vector_decrypt: int = 0
    regular_encrypt: int = 0
    regular_decrypt: int = 0
    replay_vector_checks: int = 0   # groups whose anti-replay check was done once per vector
    replay_packet_checks: int = 0   # groups checked packet by packet (reordering, duplicates)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def encrypt_eligible(sa: "EspOut") -> bool:
    """The SA's packets can take the PMI encrypt loop: tunnel-mode AEAD over IPv4, no NAT-T."""
    return bool(sa.gcm and sa.tunnel and not sa.ipv6 and not sa.udp)


def decrypt_eligible(sa: "EspIn") -> bool:
    """The SA's packets can take the PMI decrypt loop: tunnel-mode AEAD without ESN (whose
    high half has to be inferred per packet, RFC 4303 Appendix A2)."""
    return bool(sa.aead and sa.tunnel and not sa.esn)


def encrypt_vector(sa: "EspOut", mv, slot: int, idx, offs: list, lens: list, status: list,
                   now: float) -> int:
    """Encrypt the packets `idx` of one outbound SA in place (RFC 4303 §3.3, RFC 4106 §3-5);
    returns how many took the vector loop. A packet that needs a decision of the per-packet
    path (malformed, no room, sequence overflow, lifetime) is handed to it with the SA's state
    brought up to date, so the outcome is the same as without PMI."""
    life = sa.life
    if not sa.unlimited and life.check_time(now):
        for i in idx:
            status[i] = EXPIRED
        sa.expired += len(idx)
        return 0
    t = sa.transform
    enc_into = t.aead.encrypt_into                 # type: ignore[attr-defined]
    salt = int.from_bytes(t.salt, "big")           # type: ignore[attr-defined]
    nonce = _NONCE.pack
    header = _V4_GCM.pack_into
    inner = _INNER.unpack_from
    esn_aad = _ESN_AAD.pack if sa.esn else None
    aad_pack = _AAD.pack
    hdr_len, trail4 = sa.hdr_len, sa.trail4
    room_after = 16 + 5            # ICV + the longest trailer of a 4-aligned AEAD
    v4_sum, ttl, proto, src, dst, spi = sa.v4_sum, sa.ttl, sa.proto, sa.src, sa.dst, sa.spi
    df_fixed = {"clear": 0, "set": 0x40}.get(sa.df_mode)   # None: copy the inner DF bit
    max_seq = sa.max_seq
    seq, packets, nbytes = sa.seq, sa.packets, sa.bytes
    next_p, next_b = life.next_packets, life.next_bytes
    done = 0
    for i in idx:
        off = offs[i]
        ln = lens[i]
        p = i * slot + off
        if life.expired or off > slot or ln > slot - off or ln < 20 or off < hdr_len \
                or slot - off - ln < room_after or ln > 0xFF00 or seq >= max_seq:
            fast = False
        else:
            b0, tos, total, flags = inner(mv, p)
            fast = b0 == 0x45 and total == ln
        if not fast:                  # the per-packet path decides, on up-to-date state
            sa.seq, sa.packets, sa.bytes = seq, packets, nbytes
            sa.encrypt_group(mv, slot, (i,), offs, lens, status, now)
            seq, packets, nbytes = sa.seq, sa.packets, sa.bytes
            next_p, next_b = life.next_packets, life.next_bytes
            continue
        seq += 1
        seq_lo = seq & 0xFFFFFFFF
        trail = trail4[ln & 3]
        plain_end = p + ln + len(trail)
        mv[p + ln:plain_end] = trail
        total = hdr_len + ln + len(trail) + 16
        df = df_fixed if df_fixed is not None else flags & 0x40
        c = v4_sum + tos + total + (seq & 0xFFFF) + (df << 8)
        c = (c & 0xFFFF) + (c >> 16)
        c = (c & 0xFFFF) + (c >> 16)
        header(mv, p - hdr_len, 0x45, tos, total, seq & 0xFFFF, df << 8, ttl, proto,
               ~c & 0xFFFF, src, dst, spi, seq_lo, seq)
        enc_into(nonce(salt, seq), mv[p:plain_end],
                 esn_aad(spi, seq >> 32, seq_lo) if esn_aad else aad_pack(spi, seq_lo),
                 mv[p:plain_end + 16])
        offs[i] = off - hdr_len
        lens[i] = total
        packets += 1
        nbytes += ln
        done += 1
        if packets >= next_p or nbytes >= next_b:
            life.crossed(packets, nbytes, now)
            next_p, next_b = life.next_packets, life.next_bytes
    sa.seq, sa.packets, sa.bytes = seq, packets, nbytes
    return done


def decrypt_vector(sa: "EspIn", mv, slot: int, idx: list, hdrs: list, offs: list,
                   lens: list, status: list, now: float, pmi: PmiCounters) -> None:
    """Decrypt one SA's packets of a vector in place (RFC 4303 §3.4). `idx` are the slots of
    IPv4 ESP packets whose outer header the engine checked, `hdrs` those headers as the
    engine unpacked them: ten 16-bit words of the IPv4 header, SPI, sequence number, IV.

    Anti-replay (§3.4.3) once per vector when every number lies above the window and none
    repeats: no packet of the vector can then be a replay of another or of an earlier one,
    and the window advances once, by the numbers whose ICV verified. Otherwise each packet is
    checked before and after its ICV, and the window advances per packet, as without PMI."""
    life = sa.life
    if not sa.unlimited and life.check_time(now):
        for i in idx:
            status[i] = EXPIRED
        sa.expired += len(idx)
        return
    replay = sa.replay
    seqs = [w[11] for w in hdrs]
    vector_replay = min(seqs) > replay.top and (not replay.window
                                                or len(set(seqs)) == len(seqs))
    if vector_replay:
        pmi.replay_vector_checks += 1
    else:
        pmi.replay_packet_checks += 1
    if vector_replay and not life.expired and \
            sa.packets + len(idx) < life.next_packets and min(w[1] for w in hdrs) >= 76 and \
            sa.bytes + sum(w[1] for w in hdrs) < life.next_bytes:
        # no lifetime can be crossed in this vector and every packet can hold an IPv4 one
        _decrypt_quick(sa, mv, slot, idx, hdrs, offs, lens, status)
        return
    check, advance = replay.check, replay.advance
    t = sa.transform
    dec_into = t.aead.decrypt_into                 # type: ignore[attr-defined]
    salt = t.salt                                  # type: ignore[attr-defined]
    aad = _AAD.pack
    tail = _TAIL.unpack_from
    inner_hdr = _INNER_IN.unpack_from
    copy_dscp = sa.copy_dscp
    min_len = sa.min_len + 20
    packets, nbytes = sa.packets, sa.bytes
    next_p, next_b = life.next_packets, life.next_bytes
    accepted = []
    for i, w in zip(idx, hdrs):
        if life.expired:
            status[i] = EXPIRED
            sa.expired += 1
            continue
        total = w[1]
        if total < min_len:
            status[i] = MALFORMED
            sa.malformed += 1
            continue
        seq = w[11]
        if not vector_replay:
            st = check(seq)
            if st:
                status[i] = sa.replay_status(st)
                continue
        p = i * slot + offs[i]
        out = p + 36
        end = p + total - 16
        try:
            dec_into(salt + w[12], mv[out:p + total], aad(w[10], seq), mv[out:end])
        except InvalidTag:
            status[i] = AUTH_FAILED
            sa.auth_failed += 1
            continue
        if vector_replay:
            accepted.append(seq)
        else:
            st = check(seq)           # a packet of this vector may have taken it meanwhile
            if st:
                status[i] = sa.replay_status(st)
                continue
            advance(seq)
        # pad bytes 1, 2, ... (RFC 4303 §2.4), pad length, next header: one word read
        pads, pad_len, nh = tail(mv, end - 4)
        inner_end = end - 2 - pad_len
        if inner_end < out or (pad_len and (
                pads & 0xFF != 1 if pad_len == 1 else pads != 0x0102 if pad_len == 2
                else mv[inner_end:end - 2] != PADS[pad_len])):
            status[i] = BAD_TRAILER
            sa.bad_trailer += 1
            continue
        if nh == PROTO_IPIP and inner_end - out >= 20:
            b0, inner_tos, n = inner_hdr(mv, out)
            if b0 >> 4 != 4:
                status[i] = BAD_TRAILER
                sa.bad_trailer += 1
                continue
            if b0 & 0x0F < 5 or n < (b0 & 0x0F) * 4 or n > inner_end - out:
                status[i] = MALFORMED
                sa.malformed += 1
                continue
            outer_tos = w[0] & 0xFF
            if inner_tos != outer_tos:
                tos = decap_ds_field(inner_tos, outer_tos, copy_dscp)
                if tos is None:       # outer CE over Not-ECT: MUST drop (RFC 6040 §4.2)
                    status[i] = ECN_DROP
                    sa.ecn_drop += 1
                    continue
                if tos != inner_tos:
                    set_tos(mv, out, tos)
                    ipv4_set_checksum(mv, out)
        elif nh == PROTO_NONE:        # dummy packet (RFC 4303 §2.6)
            status[i] = DUMMY
            sa.dummy += 1
            continue
        else:                         # IPv6 inner packets and short ones: the shared check
            n = sa._tunnel_inner(mv, mv[out:inner_end].tobytes(), inner_end - out, nh, out,
                                 w[0] & 0xFF)
            if n < 0:
                status[i] = -n
                continue
        offs[i] = out - i * slot
        lens[i] = n
        packets += 1
        nbytes += n
        if packets >= next_p or nbytes >= next_b:
            life.crossed(packets, nbytes, now)
            next_p, next_b = life.next_packets, life.next_bytes
    sa.packets, sa.bytes = packets, nbytes
    if accepted:
        _advance_all(replay, accepted)


def _decrypt_quick(sa: "EspIn", mv, slot: int, idx: list, hdrs: list, offs: list,
                   lens: list, status: list) -> None:
    """`decrypt_vector` for the common vector: anti-replay decided for the vector, no
    lifetime reachable, every packet long enough for an inner IPv4 header. Per packet: the
    AEAD call, and one struct call that reads the inner header's first word and the trailer
    (pad bytes, pad length, next header) at once."""
    t = sa.transform
    dec_into = t.aead.decrypt_into                 # type: ignore[attr-defined]
    salt = t.salt                                  # type: ignore[attr-defined]
    copy_dscp = sa.copy_dscp
    split = _split_struct
    accepted = []
    nbytes = good = 0
    for i, w in zip(idx, hdrs):
        off = offs[i]
        p = i * slot + off
        out = p + 36
        total = w[1]
        end = p + total - 16
        try:
            dec_into(salt + w[12], mv[out:p + total], mv[p + 20:p + 28], mv[out:end])
        except InvalidTag:
            status[i] = AUTH_FAILED
            sa.auth_failed += 1
            continue
        accepted.append(w[11])
        b0, inner_tos, n, pads, pad_len, nh = split(total - 52)(mv, out)
        inner_end = end - 2 - pad_len
        if pad_len and (pads & 0xFF != 1 if pad_len == 1 else pads != 0x0102 if pad_len == 2
                        else inner_end < out or mv[inner_end:end - 2] != PADS[pad_len]):
            status[i] = BAD_TRAILER
            sa.bad_trailer += 1
            continue
        if nh != PROTO_IPIP or b0 != 0x45 or n > inner_end - out or n < 20 or \
                inner_tos != w[0] & 0xFF:
            # IPv6 or IPv4 with options inside, dummy, malformed, ECN/DSCP to apply: the
            # per-packet rules
            if nh == PROTO_NONE:
                status[i] = DUMMY
                sa.dummy += 1
                continue
            n = sa._tunnel_inner(mv, mv[out:inner_end].tobytes(), inner_end - out, nh, out,
                                 w[0] & 0xFF)
            if n < 0:
                status[i] = -n
                continue
        offs[i] = off + 36
        lens[i] = n
        nbytes += n
        good += 1
    sa.packets += good
    sa.bytes += nbytes
    if accepted:
        _advance_all(sa.replay, accepted)


_SPLITS: dict[int, Any] = {}


def _split_struct(plen: int):
    """unpack_from for a plaintext of `plen` bytes (>= 24): the inner header's first word
    (version/IHL, DS field, total length) and the trailer's last four bytes."""
    f = _SPLITS.get(plen)
    if f is None:
        if len(_SPLITS) >= 4096:      # packet lengths are few; bound the cache anyway
            _SPLITS.clear()
        f = _SPLITS[plen] = struct.Struct(f"!BBH{plen - 8}xHBB").unpack_from
    return f


def _advance_all(replay, accepted: list) -> None:
    """Record every number of `accepted` (unique, all above the window's top) at once: the
    window slides to the highest and gets a bit for each (RFC 4303 §3.4.3)."""
    top = replay.top
    new_top = max(accepted)
    window = replay.window
    if window:
        shift = new_top - top
        bits = replay.bits << shift if shift < window else 0
        lowest = min(accepted)
        if new_top - lowest == len(accepted) - 1:    # one run of consecutive numbers
            bits |= (1 << len(accepted)) - 1
        else:
            for s in accepted:
                bits |= 1 << (new_top - s)
        if bits.bit_length() > replay._trim:
            bits &= (1 << window) - 1
        replay.bits = bits
    replay.top = new_top


__all__ = ["PmiCounters", "decrypt_eligible", "decrypt_vector", "encrypt_eligible",
           "encrypt_vector", "BELOW", "DUPLICATE"]
