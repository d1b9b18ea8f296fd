# cython: language_level=3
"""ESP tunnel-mode decapsulation of a burst, in place (RFC 4303 §3.4, RFC 4106, RFC 3948).

Per packet: bound-check the outer header (every length read is checked before use), demux
NAT-T, look the SPI up, check the anti-replay window (read-only), open with AES-GCM, check the
window again and advance it, then verify the trailer. A burst runs these steps as two passes
over chunks of packets (before the crypto; then per packet the crypto and what follows it).
The slot's offset/length then describe the inner packet; `sa_index` says which inbound SA
opened it (-1 if none). In the first pass, runs of packets with an IPv4 outer header of SAs
without ESN (one tunnel's, or several tunnels' interleaved) go through a short loop of their
own, `decrypt_run_v4`; every other packet, and every packet the short loop declines, through
`decrypt_prepare`, which decides its fate and counts it. After the open, likewise: a verified
packet the window takes (above its top, or overtaken on the way and not yet seen) whose
trailer and inner header need nothing done (padding 1, 2, ...; an IPv4 header without
options; the DS field the outer one's) is finished in the pass's own loop, every other
through `decrypt_finish`. Both short paths are switched with `SaTable.common_runs`, and with
them on and off the kernel's results agree (tests/engine/test_pfe_common_runs.py)."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t, int64_t
from _pfe_core.status cimport *
from _pfe_core.sa cimport sa_t, sa_table_t, sa_lookup_inbound, ESP_HDR_LEN
from _pfe_core.replay cimport (
    replay_infer, replay_check, replay_accept, replay_advance_above,
)
from _pfe_core.gcm cimport GCM_ICV_LEN, GCM_NONCE_LEN
from _pfe_core.aead cimport sa_open
from _pfe_core.wire cimport (
    load16, load32, store32, ipv4_set_checksum, ip_tos, ip_set_tos, csum_add, csum_fold,
    wire_ipv4_csum_ok, wire_pad_ok, wire_put_raw32, wire_put_raw64, wire_raw32, wire_raw64,
    wire_be32, wire_load64, wire_ipv4_csum_ok_words, wire_trailer_v4_pad,
)

cdef enum:
    PROTO_ESP = 50
    PROTO_UDP = 17
    NH_IPV4 = 4
    NH_IPV6 = 41
    NH_NONE = 59
    ECN_MASK = 0x03
    ECN_NOT_ECT = 0x00
    ECN_ECT1 = 0x01
    ECN_ECT0 = 0x02
    ECN_CE = 0x03


# What the passes of a burst hand each other per packet.
ctypedef struct inb_work_t:
    sa_t *sa
    uint8_t *ct                  # ciphertext (then plaintext), in place
    const uint8_t *aad           # the ESP header, or aad_buf with ESN
    uint64_t seq                 # the full (inferred) sequence number
    uint32_t ct_len
    uint8_t outer_tos
    uint8_t aad_len
    uint8_t nonce[GCM_NONCE_LEN]
    uint8_t aad_buf[12]

# The last SPI looked up in a burst and its slot: consecutive packets of one SA (the common
# case) skip the hash chain. Valid for one burst only (the table is locked meanwhile).
ctypedef struct spi_cache_t:
    uint32_t spi
    int32_t idx

cdef enum:
    INB_CHUNK = 32               # packets per pass: the per-packet state stays on the stack
    # The shortest packet decrypt_run_v4 takes: outer header, ESP header and IV, pad length
    # and next header, ICV.
    RUN_MIN = 20 + ESP_HDR_LEN + 2 + GCM_ICV_LEN


cdef inline int decap_ds(uint8_t *inner, uint32_t header_len, uint8_t outer_tos,
                         bint copy_dscp) noexcept nogil:
    """Tunnel egress: the ECN field per RFC 6040 §4.2 (Figure 4), and with Junos
    copy-outer-dscp the outer DSCP too (RFC 2983 §3.2). Fixes the inner IPv4 checksum over
    `header_len` bytes (validated by the caller) when anything changed. Returns -1 when the
    packet must be dropped (outer CE, inner Not-ECT)."""
    cdef uint8_t inner_tos = ip_tos(inner)
    cdef uint8_t ecn = inner_tos & ECN_MASK
    cdef uint8_t outer_ecn = outer_tos & ECN_MASK
    cdef uint8_t tos
    if outer_tos == inner_tos:
        # The common case (the encapsulator copied the inner DS field): every rule below
        # leaves the field as it is, and a Not-ECT inner packet has a Not-ECT outer one.
        return 0
    if ecn == ECN_NOT_ECT:
        if outer_ecn == ECN_CE:
            return -1
    elif outer_ecn == ECN_CE:
        ecn = ECN_CE
    elif outer_ecn == ECN_ECT1 and ecn == ECN_ECT0:
        ecn = ECN_ECT1
    tos = ((outer_tos if copy_dscp else inner_tos) & 0xFC) | ecn
    if tos != inner_tos:
        ip_set_tos(inner, tos)
        if (inner[0] >> 4) == 4:
            ipv4_set_checksum(inner, header_len)
    return 0


cdef inline bint udp6_checksum_ok(const uint8_t *ip6, const uint8_t *udp,
                                  uint32_t ulen) noexcept nogil:
    """RFC 8200 §8.1: over IPv6 the UDP checksum is mandatory; zero is invalid."""
    cdef uint64_t acc
    if udp[6] == 0 and udp[7] == 0:
        return False
    acc = csum_add(0, ip6 + 8, 32)
    acc += ulen + 17
    acc = csum_add(acc, udp, ulen)
    return csum_fold(acc) == 0


cdef inline Status count_replay_drop(sa_t *sa, Status st) noexcept nogil:
    if st == REPLAY_DUPLICATE:
        sa.c.replay_duplicate += 1
    else:
        sa.c.replay_below_window += 1
    return st


cdef inline Status decrypt_prepare(sa_table_t *t, uint8_t *slot, Py_ssize_t slot_size,
                                   uint32_t off, uint32_t ln, int32_t *sa_out,
                                   inb_work_t *w, spi_cache_t *cache) noexcept nogil:
    """Everything before the crypto: outer header, NAT-T demux, SPI lookup, the read-only
    replay check; fills `w` (nonce, AAD, where the ciphertext is) for the open."""
    cdef uint8_t *pkt
    cdef uint8_t *esp
    cdef uint32_t l4, ihl, esp_len, ulen, spi
    cdef uint8_t proto, outer_tos
    cdef int32_t idx
    cdef sa_t *sa
    cdef uint64_t seq
    cdef Status st

    sa_out[0] = -1
    if off > slot_size or ln > slot_size - off or ln == 0:
        t.c.malformed += 1
        return MALFORMED
    pkt = slot + off
    if (pkt[0] >> 4) == 4:
        if ln < 20:
            t.c.malformed += 1
            return MALFORMED
        ihl = (pkt[0] & 0x0F) * 4
        if ihl < 20 or load16(pkt + 2) < ihl or load16(pkt + 2) > ln:
            t.c.malformed += 1
            return MALFORMED
        if not wire_ipv4_csum_ok(pkt, ihl):       # RFC 791 header checksum, word-wise
            t.c.malformed += 1
            return MALFORMED
        ln = load16(pkt + 2)              # ignore link-layer padding beyond the IP packet
        if load16(pkt + 6) & 0x3FFF:      # MF or a fragment offset: the PFE does not reassemble
            t.c.malformed += 1
            return MALFORMED
        proto = pkt[9]
        outer_tos = pkt[1]
        l4 = ihl
    elif (pkt[0] >> 4) == 6:
        if ln < 40 or 40 + <uint32_t>load16(pkt + 4) > ln:
            t.c.malformed += 1
            return MALFORMED
        ln = 40 + load16(pkt + 4)
        proto = pkt[6]
        outer_tos = <uint8_t>(((pkt[0] & 0x0F) << 4) | (pkt[1] >> 4))
        l4 = 40
    else:
        t.c.malformed += 1
        return MALFORMED

    if proto == PROTO_UDP:                 # RFC 3948 §2: UDP-encapsulated ESP, IKE or keepalive
        if ln - l4 < 8:
            t.c.malformed += 1
            return MALFORMED
        ulen = load16(pkt + l4 + 4)
        if ulen < 8 or ulen > ln - l4:
            t.c.malformed += 1
            return MALFORMED
        if l4 == 40 and not udp6_checksum_ok(pkt, pkt + 40, ulen):
            t.c.malformed += 1
            return MALFORMED
        esp_len = ulen - 8
        esp = pkt + l4 + 8
        if esp_len == 1 and esp[0] == 0xFF:
            t.c.keepalive += 1
            return KEEPALIVE
        if esp_len >= 4 and load32(esp) == 0:
            t.c.not_esp += 1
            return NOT_ESP
    elif proto == PROTO_ESP:
        esp_len = ln - l4
        esp = pkt + l4
    else:
        t.c.malformed += 1
        return MALFORMED

    if esp_len < 8:
        t.c.malformed += 1
        return MALFORMED
    spi = load32(esp)
    if spi == cache.spi and cache.idx >= 0:
        idx = cache.idx
    else:
        idx = sa_lookup_inbound(t, spi)
        if idx < 0:
            t.c.unknown_spi += 1
            return UNKNOWN_SPI
        cache.spi = spi
        cache.idx = idx
    sa = &t.sas[idx]
    sa_out[0] = sa.handle                # the handle with its generation, as add() returned it
    # SPI, seq, IV, at least pad length + next header, ICV.
    if esp_len < ESP_HDR_LEN + 2 + GCM_ICV_LEN:
        sa.c.malformed += 1
        return MALFORMED

    if not replay_infer(sa.replay, load32(esp + 4), &seq):
        sa.c.replay_below_window += 1
        return REPLAY_BELOW_WINDOW
    st = replay_check(sa.replay, seq)
    if st != OK:
        return count_replay_drop(sa, st)

    w.sa = sa
    w.seq = seq
    w.outer_tos = outer_tos
    w.ct = esp + ESP_HDR_LEN
    w.ct_len = esp_len - ESP_HDR_LEN - GCM_ICV_LEN
    # The nonce is salt || the IV as it came on the wire (RFC 4106 §4): two moves.
    wire_put_raw32(w.nonce, wire_raw32(sa.salt))
    wire_put_raw64(w.nonce + 4, wire_raw64(esp + 8))
    if sa.esn:                       # AAD = SPI || seq_hi || seq_lo (RFC 4106 §5)
        wire_put_raw32(w.aad_buf, wire_raw32(esp))
        store32(w.aad_buf + 4, <uint32_t>(seq >> 32))
        wire_put_raw32(w.aad_buf + 8, wire_raw32(esp + 4))
        w.aad = w.aad_buf
        w.aad_len = 12
    else:                            # AAD = SPI || seq, the ESP header's first 8 bytes
        w.aad = esp
        w.aad_len = 8
    return OK


cdef Py_ssize_t decrypt_run_v4(sa_table_t *t, uint8_t *data, Py_ssize_t slot_size,
                               const uint32_t *offset, const uint32_t *length,
                               int32_t *sa_index, uint8_t *status, Py_ssize_t i, Py_ssize_t m,
                               inb_work_t *w, spi_cache_t *cache) noexcept nogil:
    """Packets i, i+1, ... while they take the common path of `decrypt_prepare`: an IPv4
    outer header of 20 bytes carrying ESP, unfragmented, its length inside the slot's; an
    inbound SA without ESN (the packet before's, or found by its SPI); a sequence number
    above the window's top, or below it but inside the window and not yet taken (any other
    number goes to `decrypt_prepare`, which counts the drop). The same checks, statuses and
    work records in fewer instructions: the header read as three words, its fields checked
    under masks and its checksum summed from the same words, the SA's fields in registers.
    Returns the index of the first packet it left (to `decrypt_prepare`, which decides and
    counts its fate)."""
    cdef sa_t *sa = &t.sas[cache.idx]
    cdef int32_t handle = sa.handle
    cdef uint32_t spi_raw = wire_be32(cache.spi)
    cdef uint32_t salt_raw = wire_raw32(sa.salt)
    cdef uint64_t top = sa.replay.top
    cdef uint64_t x0, x1, x3
    cdef uint32_t off, ln, total, seq, spi
    cdef int32_t idx
    cdef uint8_t *pkt
    cdef uint8_t *esp
    if sa.esn:
        return i
    while i < m:
        off = offset[i]
        ln = length[i]
        # RUN_MIN..65,535 bytes inside the slot (a longer slot length goes to decrypt_prepare).
        if ln - RUN_MIN > 0xFFFF - RUN_MIN or <uint64_t>off + ln > <uint64_t>slot_size:
            break
        pkt = data + i * slot_size + off
        x0 = wire_load64(pkt)           # version/IHL, DS, total length, ident, flags/offset
        x1 = wire_load64(pkt + 8)       # TTL, protocol, checksum, source
        total = <uint32_t>(x0 >> 32) & 0xFFFF
        # Version 4 with IHL 5, no MF and no fragment offset, ESP, the length inside the
        # slot's and room for an ESP header, two trailer bytes and the ICV.
        if ((x0 & 0xFF00000000003FFFULL) != 0x4500000000000000ULL
                or (x1 & 0x00FF000000000000ULL) != (<uint64_t>PROTO_ESP << 48)
                or total - RUN_MIN > ln - RUN_MIN):
            break
        # RFC 791 §3.1: the header checksum, from the words loaded above
        if not wire_ipv4_csum_ok_words(x0, x1, load32(pkt + 16)):
            break
        esp = pkt + 20
        x3 = wire_raw64(esp)            # SPI, sequence number, as on the wire
        if <uint32_t>x3 != spi_raw:
            # Another tunnel's packet (tunnels interleave in a burst): its SA becomes the
            # run's, unless it needs decrypt_prepare (an unknown SPI, ESN), which counts it.
            spi = wire_be32(<uint32_t>x3)
            idx = sa_lookup_inbound(t, spi)
            if idx < 0 or t.sas[idx].esn:
                break
            cache.spi = spi
            cache.idx = idx
            sa = &t.sas[idx]
            handle = sa.handle
            spi_raw = <uint32_t>x3
            salt_raw = wire_raw32(sa.salt)
            top = sa.replay.top
        seq = wire_be32(<uint32_t>(x3 >> 32))
        # At or below the top (a packet overtaken on the way): the read-only window check;
        # one it refuses goes to decrypt_prepare, which counts it.
        if seq <= top and replay_check(sa.replay, seq) != OK:
            break
        sa_index[i] = handle
        status[i] = OK
        w[i].sa = sa
        w[i].seq = seq
        w[i].outer_tos = <uint8_t>(x0 >> 48)
        w[i].ct = esp + ESP_HDR_LEN
        w[i].ct_len = total - 20 - ESP_HDR_LEN - GCM_ICV_LEN
        wire_put_raw32(w[i].nonce, salt_raw)
        wire_put_raw64(w[i].nonce + 4, wire_raw64(esp + 8))
        w[i].aad = esp
        w[i].aad_len = 8
        i += 1
    return i


cdef inline int decrypt_open(const sa_table_t *t, inb_work_t *w) noexcept nogil:
    """The crypto of one prepared packet: 1 verified, 0 ICV mismatch, -1 library error."""
    return sa_open(t, w.sa, w.nonce, w.aad, w.aad_len, w.ct, w.ct_len, w.ct + w.ct_len)


cdef inline Status decrypt_finish(uint8_t *slot, uint32_t *offset, uint32_t *length,
                                  inb_work_t *w, int rc) noexcept nogil:
    """Everything after the crypto: count an ICV failure, check the window again and advance
    it, verify the trailer and the inner header, ECN/DSCP at egress."""
    cdef sa_t *sa = w.sa
    cdef uint64_t seq = w.seq
    cdef Status st
    if rc <= 0:
        # An earlier packet of this burst may have taken this number since the first check:
        # the packet is then a replay, as it would have been had the packets come one burst
        # each (a burst decides as the same packets one at a time; RFC 4303 §3.4.3 checks
        # the window before the ICV).
        st = replay_check(sa.replay, seq)
        if st != OK:
            return count_replay_drop(sa, st)
    if rc == 0:
        sa.c.auth_failed += 1
        return AUTH_FAILED
    if rc < 0:
        sa.c.crypto_error += 1
        return CRYPTO_ERROR

    # Second phase: a packet of the same burst may have taken this number since the first
    # check (duplicates inside one burst both pass it; only this check drops the second).
    st = replay_accept(sa.replay, seq)
    if st != OK:
        return count_replay_drop(sa, st)
    return decrypt_checked(slot, offset, length, w)


cdef inline Status decrypt_checked(uint8_t *slot, uint32_t *offset, uint32_t *length,
                                   inb_work_t *w) noexcept nogil:
    """The rest of `decrypt_finish` once the window has taken the packet: the trailer, the
    inner header, ECN/DSCP at egress, the slot and the counters."""
    cdef sa_t *sa = w.sa
    cdef uint8_t *ct = w.ct
    cdef uint32_t ct_len = w.ct_len
    cdef uint8_t outer_tos = w.outer_tos
    cdef uint32_t pad_len, inner_len, inner_hdr
    cdef uint8_t nh
    pad_len = ct[ct_len - 2]
    nh = ct[ct_len - 1]
    if pad_len + 2 > ct_len:
        sa.c.bad_trailer += 1
        return BAD_TRAILER
    inner_len = ct_len - 2 - pad_len
    if not wire_pad_ok(ct + inner_len, pad_len):   # 1, 2, 3, ... (RFC 4303 §2.4)
        sa.c.bad_trailer += 1
        return BAD_TRAILER
    if nh == NH_NONE:                      # dummy packet: drop without error (RFC 4303 §2.6)
        sa.c.dummy += 1
        return DUMMY
    # The inner header, authenticated but still the sender's word: every field a later step
    # reads is checked first. Its own length strips TFC padding (RFC 4303 §2.7) and must fit;
    # decap_ds rewrites the DS field and sums IHL x 4 bytes for the IPv4 checksum, so IHL must
    # be 5..15 and the header must lie inside the total length (RFC 791 §3.1).
    if nh == NH_IPV4:
        if inner_len < 20 or (ct[0] >> 4) != 4:
            sa.c.bad_trailer += 1
            return BAD_TRAILER
        inner_hdr = (ct[0] & 0x0F) * 4
        if inner_hdr < 20 or load16(ct + 2) < inner_hdr or load16(ct + 2) > inner_len:
            sa.c.malformed += 1
            return MALFORMED
        inner_len = load16(ct + 2)
    elif nh == NH_IPV6:
        if inner_len < 40 or (ct[0] >> 4) != 6:
            sa.c.bad_trailer += 1
            return BAD_TRAILER
        if 40 + <uint32_t>load16(ct + 4) > inner_len:   # RFC 8200 §3: payload length
            sa.c.malformed += 1
            return MALFORMED
        inner_hdr = 40
        inner_len = 40 + load16(ct + 4)
    else:                                  # tunnel mode carries IP only
        sa.c.bad_trailer += 1
        return BAD_TRAILER

    if decap_ds(ct, inner_hdr, outer_tos, sa.copy_outer_dscp) < 0:
        sa.c.ecn_drop += 1
        return ECN_DROP
    offset[0] = <uint32_t>(ct - slot)
    length[0] = inner_len
    sa.c.packets += 1
    sa.c.bytes += inner_len
    return OK


cdef Py_ssize_t esp_decrypt_burst(sa_table_t *t, uint8_t *data, Py_ssize_t slot_size,
                                  uint32_t *offset, uint32_t *length, int32_t *sa_index,
                                  uint8_t *status, Py_ssize_t n) noexcept nogil:
    """Decrypt `n` slots; one status per slot; returns how many are OK.

    In chunks of INB_CHUNK packets and two passes, as DPDK's and VPP's ESP nodes do: every
    packet's checks before the crypto (their nonce and AAD stores are then long done when the
    library reads them), then per packet, in packet order (the window advances in that order),
    the open and the checks after it, while the packet's lines are still in L1."""
    cdef Py_ssize_t base, i, j, m, good = 0
    cdef Status st
    cdef inb_work_t w[INB_CHUNK]
    cdef inb_work_t *wp
    cdef spi_cache_t cache
    cdef sa_t *sa
    cdef sa_t *counted = NULL          # the SA whose packets and bytes are being summed
    cdef uint64_t packets = 0, nbytes = 0
    cdef uint8_t *ct
    cdef uint32_t inner_len, x
    cdef int pad
    cdef int rc
    cdef bint runs = t.common_runs
    cache.spi = 0
    cache.idx = -1
    base = 0
    while base < n:
        m = n - base if n - base < INB_CHUNK else INB_CHUNK
        i = 0
        while i < m:
            if cache.idx >= 0 and runs:
                j = decrypt_run_v4(t, data + base * slot_size, slot_size, offset + base,
                                   length + base, sa_index + base, status + base, i, m, w,
                                   &cache)
                if j > i:
                    i = j
                    continue
            status[base + i] = decrypt_prepare(t, data + (base + i) * slot_size, slot_size,
                                               offset[base + i], length[base + i],
                                               &sa_index[base + i], &w[i], &cache)
            i += 1
        for i in range(m):
            if status[base + i] != OK:
                continue
            wp = &w[i]
            rc = decrypt_open(t, wp)
            sa = wp.sa
            if rc == 1 and runs:
                # The common case of decrypt_finish: a verified packet above the window's
                # top (replay_accept's first branch) or, overtaken on the way, inside the
                # window and not yet taken; then, when its trailer and inner header are what
                # decrypt_checked accepts unchanged (next header 4 after padding 1, 2, ...
                # of at most 6 bytes; an IPv4 header without options, its length inside the
                # payload; the DS field the outer header's), the same slot and counters in
                # fewer instructions.
                if wp.seq > sa.replay.top:
                    replay_advance_above(sa.replay, wp.seq)
                else:
                    st = replay_accept(sa.replay, wp.seq)
                    if st != OK:
                        status[base + i] = count_replay_drop(sa, st)
                        continue
                ct = wp.ct
                # (the 8 bytes it reads before ct + ct_len are inside the ESP packet: the
                # ESP header and IV precede even an empty payload)
                pad = wire_trailer_v4_pad(ct + wp.ct_len)
                x = load32(ct)
                inner_len = (x & 0xFFFF)
                if (pad >= 0 and (x >> 24) == 0x45 and ((x >> 16) & 0xFF) == wp.outer_tos
                        and inner_len >= 20
                        and <int64_t>inner_len <= <int64_t>wp.ct_len - 2 - pad):
                    offset[base + i] = <uint32_t>(ct - (data + (base + i) * slot_size))
                    length[base + i] = inner_len
                    if sa != counted:
                        if counted != NULL:
                            counted.c.packets += packets
                            counted.c.bytes += nbytes
                        counted = sa
                        packets = 0
                        nbytes = 0
                    packets += 1
                    nbytes += inner_len
                    good += 1
                    continue
                st = decrypt_checked(data + (base + i) * slot_size, &offset[base + i],
                                     &length[base + i], wp)
            else:
                st = decrypt_finish(data + (base + i) * slot_size, &offset[base + i],
                                    &length[base + i], wp, rc)
            status[base + i] = st
            if st == OK:
                good += 1
        base += m
    if counted != NULL:
        counted.c.packets += packets
        counted.c.bytes += nbytes
    return good
