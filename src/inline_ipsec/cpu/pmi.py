"""PowerMode IPsec (PMI) on the CPU path: the vector loops and their counters.

With `set security flow power-mode-ipsec` the CPU path takes a burst as a vector. Encrypting,
the packets of each SA are one loop with the SA's state in locals, a header template written by
one struct call and the AEAD sealing in place in the burst slot (RFC 4303 §3.3, RFC 4106).
Decrypting (`decrypt_burst`), the outer headers of the whole vector are read by one struct
call, consecutive packets of one SA form runs whose anti-replay window is updated once, and
the inner headers and trailers of a run are read and, when alike, checked at once (§3.4).
Without the statement every packet goes alone through the full per-packet path
(`EspOut.encrypt_group` / `EspIn.decrypt_group` with one packet), as Junos's regular flow path
does.

The vector loops cover tunnel-mode ESP with an AEAD (AES-GCM, ChaCha20-Poly1305) over IPv4,
in UDP (RFC 3948) or not. Anything else in a vector (IPv6 outer headers, AH, transport mode,
CBC/CTR/GMAC, ESN on decryption, fragments, IKE and keepalives on port 4500, malformed
packets) takes the per-packet path and is counted as processed one by one in `show security
flow pmi statistics`; the bytes and statuses are the same either way (tests/cpu/test_pmi.py
compares them).
"""
from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag

from ..packet.ip import PROTO_IPIP, PROTO_NONE
from .state import AUTH_FAILED, BAD_TRAILER, DUMMY, EXPIRED, MALFORMED, PADS

if TYPE_CHECKING:
    from ..packet.burst import Burst
    from .engine import CpuEngine
    from .esp import EspIn, EspOut
    from .qat import QatDevice

_NONCE = struct.Struct("!LQ")        # salt || 64-bit IV (= seq on our side, RFC 4106 §4)
_V4_GCM = struct.Struct("!BBHHHBBH4s4sLLQ")    # outer IPv4 + SPI, seq, IV
_V4_UDP_GCM = struct.Struct("!BBHHHBBH4s4sHHHHLLQ")    # outer IPv4 + UDP + SPI, seq, IV
_AAD = struct.Struct("!LL")
_ESN_AAD = struct.Struct("!LLL")
_INNER = struct.Struct("!BBH2xB")    # version/IHL, DS field, total length, flags byte
#: the outer IPv4 header as three 32-bit words (version/IHL/DS/total length, identification/
#: flags/fragment offset, TTL/protocol/checksum) and the addresses, SPI, sequence number, IV
_OUTER = struct.Struct("!LLL8sLL8s")
#: the same with the UDP header of ESP in UDP (RFC 3948 §2.1) between: its length only
_OUTER_UDP = struct.Struct("!LLL8s2x2xH2xLL8s")


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
    replay_runs: int = 0            # anti-replay windows advanced once for a run of packets

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def encrypt_eligible(sa: "EspOut") -> bool:
    """The SA's packets can take the PMI encrypt loop: tunnel-mode AEAD over IPv4, in UDP
    (RFC 3948) or not."""
    return bool(sa.gcm and sa.tunnel and not sa.ipv6)


def decrypt_eligible(sa: "EspIn") -> bool:
    """The SA's packets can take the PMI decrypt loop: tunnel-mode AEAD without ESN (whose
    high half has to be inferred per packet, RFC 4303 Appendix A2)."""
    return bool(sa.aead and sa.tunnel and not sa.esn)


def encrypt_vector(sa: "EspOut", burst: "Burst", idx, offs: list, lens: list, status: list,
                   now: float, qat: "QatDevice | None" = None) -> int:
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
    queued: list[int] = []                         # slots whose request is in the device
    if qat is not None:                            # the crypto device does the AEAD calls
        enc_into = qat.submitter(enc_into)
    salt = int.from_bytes(t.salt, "big")           # type: ignore[attr-defined]
    nonce = _NONCE.pack
    header = _V4_GCM.pack_into
    udp = sa.udp                  # ESP in UDP: the UDP header too, checksum 0 (RFC 3948 §2.1)
    header_udp = _V4_UDP_GCM.pack_into
    sport, dport = sa.spec.udp_sport, sa.spec.udp_dport
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
    mv, slot = burst.cpu_view[0], burst.slot_size
    i0 = idx[0]
    v_off, v_ln = offs[i0], lens[i0]    # the layout whose per-slot views are used
    views: Any = _slot_views_out(burst, v_off, v_ln) \
        if 20 <= v_ln and hdr_len <= v_off and v_off + v_ln + room_after <= slot else None
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
        if udp:
            header_udp(mv, p - hdr_len, 0x45, tos, total, seq & 0xFFFF, df << 8, ttl, proto,
                       ~c & 0xFFFF, src, dst, sport, dport, total - 20, 0, spi, seq_lo, seq)
        else:
            header(mv, p - hdr_len, 0x45, tos, total, seq & 0xFFFF, df << 8, ttl, proto,
                   ~c & 0xFFFF, src, dst, spi, seq_lo, seq)
        if off == v_off and ln == v_ln:
            plain, sealed = views[i]
        else:
            plain, sealed = mv[p:plain_end], mv[p:plain_end + 16]
        enc_into(nonce(salt, seq), plain,
                 esn_aad(spi, seq >> 32, seq_lo) if esn_aad else aad_pack(spi, seq_lo),
                 sealed)
        offs[i] = off - hdr_len
        lens[i] = total
        packets += 1
        nbytes += ln
        done += 1
        if qat is not None:
            queued.append(i)
        if packets >= next_p or nbytes >= next_b:
            life.crossed(packets, nbytes, now)
            next_p, next_b = life.next_packets, life.next_bytes
    sa.seq, sa.packets, sa.bytes = seq, packets, nbytes
    if qat is not None:               # wait for the slots; a refused request is a drop
        for k in qat.drain():
            status[queued[k]] = MALFORMED
            sa.malformed += 1
    return done


def decrypt_burst(engine: "CpuEngine", burst: "Burst", n: int) -> int:
    """Decrypt a burst as a vector, in place (RFC 4303 §3.4, RFC 4106); the engine's
    `decrypt_burst` with PMI on.

    When the packets start at one offset, one struct call reads the outer headers of the
    whole vector (IPv4 header words, SPI, sequence number, IV), skipping the rest of each
    slot. Then one pass in packet order: consecutive packets of one SA form a run that keeps
    the SA's state in locals; within it anti-replay (§3.4.3) is one comparison with the
    highest number accepted so far, the outer checksum (RFC 791, RFC 1071) is summed from
    the unpacked fields plus the addresses' share, and each packet costs one AEAD call in its
    slot. When a run ends, its inner headers and trailers are read by one struct call too
    and, when they are all alike (one stream of one packet size), checked once
    (`_finish_run`); the window then takes the run's numbers at once. A packet a run cannot
    take (another shape, a reordered or repeated number, a lifetime near) ends the run and
    takes the per-packet path, so every decision is the one the per-packet path makes in
    the same order. The packets of SAs no run takes (no AEAD cipher, ESN, transport mode)
    are gathered per SA and decapsulated by one `decrypt_group` call each after the pass:
    each SA's packets in their order, as that path would."""
    slot = burst.slot_size
    mv, v_off, v_len, _, _ = burst.cpu_view
    offs = v_off[:n].tolist()
    lens = v_len[:n].tolist()
    status = [0] * n
    sa_out = [-1] * n
    now = engine.clock()
    by_spi = engine._by_spi
    pmi = engine._pmi
    qat = engine.qat
    off0 = offs[0]
    layouts: dict[int, list] = {}     # total length -> per-slot views (packets at off0)
    views: Any = None
    v_total = -1                  # the total length `views` are for (-1: slice per packet)
    # ESP in UDP (RFC 3948) when the first packet is UDP: 8 more header bytes, and the UDP
    # length must be the IP payload's (anything else takes the per-packet path)
    natt = off0 <= slot - 10 and mv[off0 + 9] == 17
    hl = 44 if natt else 36       # outer IPv4 [+ UDP] + SPI + sequence number + IV
    if n > 1 and off0 <= slot - hl and offs.count(off0) == n:
        fields = _outer_bulk(slot, n, natt)(mv, off0)
        hdrs: Any = zip(*[iter(fields)] * (8 if natt else 7))
    else:
        unpack = (_OUTER_UDP if natt else _OUTER).unpack_from
        hdrs = (unpack(mv, i * slot + off) if off <= slot - hl else None
                for i, off in enumerate(offs))
    min_total = hl + 40           # room for an inner IPv4 header, the trailer and the ICV
    proto = 17 if natt else 50
    cur: Any = None               # the SA of the current run, its state in locals below
    cur_spi = -1
    top = _NEVER                  # the highest number accepted in the run (none: no run)
    handle = last_addrs = -1
    addr_sum = start = 0
    roomy = False
    run: list[int] = []           # the run's sequence numbers whose ICV verified (or queued)
    vts: list[int] = []           # the first word of those packets' outer headers
    fails: list[int] = []         # the run's packets whose ICV failed
    dec_into = salt = None
    regular = 0
    groups: dict[Any, list] = {}  # SAs no run takes -> their packets' items, in order
    for i, off, ln, h in zip(range(n), offs, lens, hdrs):
        if min_total <= ln <= slot - off:
            if natt:
                vt, idf, tc, addrs, ulen, spi, seq, iv = h
                if ulen + 20 != vt & 0xFFFF:
                    spi = -1          # not the whole IP payload: the per-packet path
            else:
                vt, idf, tc, addrs, spi, seq, iv = h
            if addrs != last_addrs:   # the addresses' share of the header checksum
                addr_sum = int.from_bytes(addrs, "big") % 0xFFFF
                last_addrs = addrs
            if spi != cur_spi:        # a new run: the SA's state into locals
                if cur is not None:
                    _finish_run(cur, handle, mv, slot, offs, lens, status, sa_out, start, i,
                                run, vts, fails, pmi, qat, hl)
                    run, vts, fails = [], [], []
                cur = by_spi.get(spi)
                cur_spi = spi
                start = i
                if cur is None or not cur.vector_in or cur.life.expired or \
                        not cur.unlimited and cur.life.check_time(now):
                    cur, top = None, _NEVER
                else:
                    life = cur.life   # no lifetime can be crossed in this burst
                    roomy = life.next_packets - cur.packets > n + 1 and \
                        life.next_bytes - cur.bytes > n * slot
                    top = cur.replay.top
                    handle = cur.handle
                    t = cur.transform
                    dec_into, salt = t.aead.decrypt_into, t.salt
                    if qat is not None:   # the crypto device does the AEAD calls
                        dec_into = qat.submitter(dec_into)
            total = vt & 0xFFFF
            # 2^16 = 1 modulo 0xFFFF: the 32-bit words sum like the 16-bit ones (RFC 1071)
            fast = vt >> 24 == 0x45 and (tc >> 16) & 0xFF == proto and \
                min_total <= total <= ln and not idf & 0x3FFF and seq > top and roomy and \
                (vt + idf + tc + addr_sum) % 0xFFFF == 0
        else:
            fast = False
        if not fast:                  # the per-packet path, on up-to-date SA state
            if cur is not None:
                _finish_run(cur, handle, mv, slot, offs, lens, status, sa_out, start, i,
                            run, vts, fails, pmi, qat, hl)
                run, vts, fails = [], [], []
                cur, cur_spi, top = None, -1, _NEVER
            regular += 1
            found = engine._inbound_sa(mv, slot, i, offs, lens, status, sa_out)
            if found is None:
                continue
            sa, item = found
            if sa.vector_in:          # a packet a run could not take: now, in packet order
                sa.decrypt_group(mv, slot, [item], offs, lens, status, now)
            else:                     # an SA no run takes (decrypt_eligible): as one group
                group = groups.get(sa)
                if group is None:
                    groups[sa] = [item]
                else:
                    group.append(item)
            continue
        if total != v_total or off != off0:   # another layout than the last packet's
            views = layouts.get(total) if off == off0 else None
            if views is None and off == off0 and len(layouts) < 4:
                views = layouts[total] = _slot_views(burst, off0, total, hl)
            v_total = total if views is not None else -1
        if v_total >= 0:
            src, aad, dst = views[i]
        else:
            p = i * slot + off
            src, aad, dst = mv[p + hl:p + total], mv[p + hl - 16:p + hl - 8], \
                mv[p + hl:p + total - 16]
        try:
            dec_into(salt + iv, src, aad, dst)
        except InvalidTag:
            fails.append(i)
            continue
        top = seq
        run.append(seq)
        vts.append(vt)
    if cur is not None:
        _finish_run(cur, handle, mv, slot, offs, lens, status, sa_out, start, n, run, vts,
                    fails, pmi, qat, hl)
    # Each SA's state is its own, so an SA that no run touches can take its packets of the
    # whole vector in one call, in their order, after the runs of the others.
    for sa, items in groups.items():
        sa.decrypt_group(mv, slot, items, offs, lens, status, now)
    pmi.vectors += 1
    pmi.vector_decrypt += n - regular
    pmi.regular_decrypt += regular
    return _store(burst, n, offs, lens, sa_out, status)


def _finish_run(sa: "EspIn", handle: int, mv, slot: int, offs: list, lens: list,
                status: list, sa_out: list, start: int, end: int, run: list, vts: list,
                fails: list, pmi: PmiCounters, qat: "QatDevice | None", hl: int) -> None:
    """The rest of RFC 4303 §3.4 for the run of slots `start`..`end`-1 of SA `sa`: packets
    whose ICV failed are counted; for the others trailer (§2.4-2.6), inner header and DS
    field (RFC 6040 §4.2); then the SA's counters and its window. With a crypto device the
    run's requests are completed first; those whose ICV failed leave the run (a forged packet
    never moves the window)."""
    if end == start:
        return
    sa_out[start:end] = [handle] * (end - start)
    if qat is not None:
        for k in reversed(qat.drain()):          # ordinals: positions in the run
            fails.append(start + k)
            del run[k], vts[k]
        fails.sort()
    idx: Any = range(start, end)
    if fails:
        for i in fails:
            status[i] = AUTH_FAILED
        sa.auth_failed += len(fails)
        gone = set(fails)
        idx = [i for i in idx if i not in gone]
    good = nbytes = 0
    k = len(vts)
    if k:
        vt = vts[0]
        off = offs[start]
        total = vt & 0xFFFF
        if k > 1 and not fails and vts.count(vt) == k and offs[start:end].count(off) == k:
            # one stream of one packet size: one struct call for every inner header and
            # trailer; when they are all alike, one check serves the run
            plen = total - hl - 16
            out = start * slot + off + hl
            vals = _inner_bulk(plen, slot, k)(mv, out)   # (first word, last word) per packet
            head = _split_struct(plen)(mv, out)
            n_in = _plain_inner(head, plen)
            if n_in and vals == vals[:2] * k and head[1] == (vt >> 16) & 0xFF:
                offs[start:end] = [off + hl] * k
                lens[start:end] = [n_in] * k
                good, nbytes = k, k * n_in
                k = 0
        if k:
            checked: dict[tuple, int] = {}   # inner header word and trailer found good
            for i, vt in zip(idx, vts):
                p = i * slot + offs[i]
                total = vt & 0xFFFF
                tos = (vt >> 16) & 0xFF
                plen = total - hl - 16
                tail = _split_struct(plen)(mv, p + hl)
                n_in = checked.get(tail, 0) if tail[1] == tos else 0
                if not n_in:
                    n_in = _inner_one(sa, mv, p + hl - 36, total - hl + 36, tos, tail, status,
                                      i)
                    if n_in and tail[1] == tos and _plain_inner(tail, plen):
                        checked[tail] = n_in
                if n_in:
                    offs[i] += hl
                    lens[i] = n_in
                    good += 1
                    nbytes += n_in
    sa.packets += good
    sa.bytes += nbytes
    if run:
        _advance_all(sa.replay, run)
        pmi.replay_runs += 1


def _plain_inner(tail: tuple, plen: int) -> int:
    """The inner length when `tail` (inner version/IHL, DS field, total length; pad bytes,
    pad length, next header) is an IPv4 packet without options followed by a correct
    trailer of at most two pad bytes; else 0."""
    b0, _, n_in, pads, pad_len, nh = tail
    if nh != PROTO_IPIP or b0 != 0x45 or n_in < 20 or n_in > plen - 2 - pad_len or \
            pad_len > 2 or pad_len == 1 and pads & 0xFF != 1 or \
            pad_len == 2 and pads != 0x0102:
        return 0
    return n_in


def _inner_one(sa: "EspIn", mv, p: int, total: int, outer_tos: int, tail: tuple,
               status: list, i: int) -> int:
    """Trailer and inner header of one decrypted packet at `p`; its inner length, or 0 with
    the status set and counted."""
    plen = total - 52
    out = p + 36
    end = p + total - 16
    n_in = _plain_inner(tail, plen)
    if n_in and tail[1] == outer_tos:
        return n_in
    b0, inner_tos, n_in, pads, pad_len, nh = tail
    if pad_len and (pad_len > plen - 2 or mv[end - 2 - pad_len:end - 2] != PADS[pad_len]):
        status[i] = BAD_TRAILER
        sa.bad_trailer += 1
        return 0
    if nh == PROTO_NONE:              # dummy packet (RFC 4303 §2.6)
        status[i] = DUMMY
        sa.dummy += 1
        return 0
    # IPv6 or IPv4 with options inside, a bad inner header, ECN or DSCP to apply
    n_in = sa._tunnel_inner(mv, mv[out:end - 2 - pad_len].tobytes(), plen - 2 - pad_len, nh,
                            out, outer_tos)
    if n_in < 0:
        status[i] = -n_in
        return 0
    return n_in


def _store(burst: "Burst", n: int, offs: list, lens: list, sa_out: list,
           status: list) -> int:
    """Write a burst call's per-packet results back into the burst; the number of OK."""
    _, v_off, v_len, v_sa, v_status = burst.cpu_view
    v_off[:n] = array("I", offs)
    v_len[:n] = array("I", lens)
    v_sa[:n] = array("i", sa_out)
    v_status[:n] = bytes(status)
    return status.count(0)


_NEVER = 1 << 64                     # above every sequence number: no run
_SPLITS: dict[int, Any] = {}
_BULK: dict[tuple, Any] = {}


def _outer_bulk(slot: int, n: int, natt: bool):
    """unpack_from for the outer headers (`_OUTER`, `_OUTER_UDP`) of `n` packets at one
    offset in slots of `slot` bytes: one call, the bytes between headers skipped."""
    key = ("outer", slot, n, natt)
    f = _BULK.get(key)
    if f is None:
        one, hl = ("LLL8s2x2xH2xLL8s", 44) if natt else ("LLL8sLL8s", 36)
        f = _cache(key, "!" + (one + f"{slot - hl}x") * (n - 1) + one)
    return f


def _inner_bulk(plen: int, slot: int, k: int):
    """unpack_from for the first and the last four bytes (inner header word, trailer) of `k`
    plaintexts of `plen` bytes in consecutive slots, as bytes: comparing them is all a run of
    alike packets needs."""
    key = ("inner", plen, slot, k)
    f = _BULK.get(key)
    if f is None:
        one = f"4s{plen - 8}x4s"
        f = _cache(key, "!" + (one + f"{slot - plen}x") * (k - 1) + one)
    return f


def _slot_views(burst: "Burst", off: int, total: int, hl: int) -> list:
    """Per slot of `burst`, the views a decryption of a `total`-byte IPv4 ESP packet at `off`
    whose ciphertext starts `hl` bytes in takes (ciphertext and ICV, SPI and sequence number,
    plaintext), made once per layout."""
    key = ("decrypt", off, total, hl)
    views = burst.cpu_slices.get(key)
    if views is None:
        if len(burst.cpu_slices) >= 8:    # a few layouts per burst; bound them anyway
            burst.cpu_slices.clear()
        mv, slot = burst.cpu_view[0], burst.slot_size
        views = burst.cpu_slices[key] = [
            (mv[p + hl:p + total], mv[p + hl - 16:p + hl - 8], mv[p + hl:p + total - 16])
            for p in range(off, burst.capacity * slot, slot)]
    return views


def _slot_views_out(burst: "Burst", off: int, ln: int) -> list:
    """Per slot of `burst`, the plaintext (inner packet and trailer) and sealed (plus ICV)
    views of an `ln`-byte inner packet at `off`, made once per layout (4-byte alignment)."""
    key = ("encrypt", off, ln)
    views = burst.cpu_slices.get(key)
    if views is None:
        if len(burst.cpu_slices) >= 8:    # a few layouts per burst; bound them anyway
            burst.cpu_slices.clear()
        mv, slot = burst.cpu_view[0], burst.slot_size
        end = ln + 2 + (-(ln + 2)) % 4
        views = burst.cpu_slices[key] = [(mv[p:p + end], mv[p:p + end + 16])
                                         for p in range(off, burst.capacity * slot, slot)]
    return views


def _cache(key: tuple, fmt: str):
    if len(_BULK) >= 512:             # burst sizes and packet lengths are few; bound it anyway
        _BULK.clear()
    f = _BULK[key] = struct.Struct(fmt).unpack_from
    return f



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


__all__ = ["PmiCounters", "decrypt_burst", "decrypt_eligible", "encrypt_eligible",
           "encrypt_vector"]
