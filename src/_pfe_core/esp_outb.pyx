# cython: language_level=3
"""ESP tunnel-mode encapsulation of a burst, in place (RFC 4303 §3.3, RFC 4106, RFC 3948).

Per packet: validate the inner header, take the next sequence number, write the trailer into
the tailroom, the ESP header, the optional UDP header and the outer IP header into the headroom,
then seal with AES-GCM. The slot's offset/length then describe the outer packet. A burst runs
these steps as two passes over chunks of packets (everything but the crypto, then the crypto).
In the first pass, runs of packets of SAs with an IPv4 outer header and neither NAT-T nor ESN
(the common case, one tunnel's packets or several tunnels' interleaved) go through a short
loop of their own, `encrypt_run_v4`; every other packet, and every packet the short loop
declines, through `encrypt_prepare`. The two write the same bytes
(tests/engine/test_pfe_common_runs.py compares them)."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memcpy
from _pfe_core.status cimport *
from _pfe_core.sa cimport (
    sa_t, sa_table_t, sa_by_handle, SA_OUTBOUND, ESP_HDR_LEN, DF_SET, DF_COPY,
    BACKEND_IPSEC_MB,
)
from _pfe_core.gcm cimport GCM_ICV_LEN, GCM_NONCE_LEN
from _pfe_core.aead cimport sa_seal
from _pfe_core.imb cimport pfe_imb_seal
from _pfe_core.wire cimport (
    load16, load32, store16, csum_add, csum_fold, wire_put_raw32, wire_put_raw64, wire_raw32,
    wire_copy_hdr, wire_be32, wire_load64, wire_store64, wire_fold32,
)

cdef extern from "wire_ops.h" nogil:
    uint64_t wire_be64 "WIRE_BE64"(uint64_t v)

cdef enum:
    NH_IPV4 = 4
    NH_IPV6 = 41
    MAX_U32 = 0xFFFFFFFF

# The trailer after the payload, padding 1, 2, 3 (pad bytes of them), the pad length and the
# next header, as the first bytes of a native-order word (stored with a raw 8-byte move); and
# two 32-bit halves as one such word, the first in the lower addresses.
cdef extern from * nogil:
    """
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    static inline uint64_t pfe_trailer(uint32_t pad, uint8_t nh) {
        uint64_t v = (0x0102030000000000ull & ~(0xFFFFFFFFFFFFFFFFull >> (8 * pad)))
                     | ((uint64_t)pad << (56 - 8 * pad)) | ((uint64_t)nh << (48 - 8 * pad));
        return v;
    }
    static inline uint64_t pfe_pair32(uint32_t lo_addr, uint32_t hi_addr) {
        return ((uint64_t)lo_addr << 32) | hi_addr;
    }
    #else
    static inline uint64_t pfe_trailer(uint32_t pad, uint8_t nh) {
        return (0x030201ull & ((1ull << (8 * pad)) - 1)) | ((uint64_t)pad << (8 * pad))
               | ((uint64_t)nh << (8 * pad + 8));
    }
    static inline uint64_t pfe_pair32(uint32_t lo_addr, uint32_t hi_addr) {
        return ((uint64_t)hi_addr << 32) | lo_addr;
    }
    #endif
    """
    uint64_t pfe_trailer(uint32_t pad, uint8_t nh)
    uint64_t pfe_pair32(uint32_t lo_addr, uint32_t hi_addr)


# What the crypto pass needs per packet, and what undoes the prepare pass's writes to the
# slot's offset, length and the SA's counters when the library fails.
ctypedef struct outb_work_t:
    sa_t *sa
    uint8_t *inner               # the inner packet, then its ciphertext, in place
    uint32_t plain_len           # inner packet + trailer
    uint32_t inner_len
    uint8_t nonce[GCM_NONCE_LEN]
    uint8_t aad_buf[12]          # with ESN: SPI || seq_hi || seq_lo

# The SA of the packets being prepared, with the fields every packet reads held in locals:
# stores into the packet (uint8_t *) may alias the SA for the compiler, which would otherwise
# load each field again after every such store. The sequence number and the counters live
# here while a run of the SA's packets is prepared and go back to the SA when the run ends.
# Valid for one burst only (the table is locked meanwhile).
ctypedef struct outb_sa_t:
    sa_t *sa
    int64_t h                    # its handle; NO_HANDLE, outside int32, when none
    const uint8_t *hdr           # the SA's outer header template
    uint32_t outer_len
    uint32_t hdr_len             # outer header + ESP header
    uint32_t max_total           # the longest outer packet its IP length field can describe
    uint64_t seq                 # the last sequence number taken
    uint64_t seq_last            # the last one allowed: 2^32-1, or 2^64-1 with ESN
    uint64_t packets             # counted in this run, not yet added to the SA's counters
    uint64_t bytes
    uint32_t spi_raw             # the SPI as on the wire, native-order word
    uint32_t salt_raw
    uint32_t hdr_sum
    uint8_t esn
    uint8_t df_mode
    uint8_t ipv6
    uint8_t udp_encap
    uint8_t plain_v4             # IPv4 outer, no NAT-T, no ESN: encrypt_run_v4 takes its packets

cdef extern from *:
    """
    #define PFE_NO_HANDLE ((int64_t)1 << 40)
    """
    const int64_t NO_HANDLE "PFE_NO_HANDLE"

cdef enum:
    OUTB_CHUNK = 32              # packets per pass: the per-packet state stays on the stack
    # encrypt_run_v4's bounds: the outer and ESP headers in front, the longest trailer (3
    # bytes of padding, pad length, next header) and the ICV behind; the longest inner
    # packet whose outer packet's length fits 16 bits with any padding; the longest slot it
    # takes (its range checks wrap an offset below RUN_HEAD past any such slot's room).
    RUN_HEAD = 20 + ESP_HDR_LEN
    RUN_TAIL = 3 + 2 + GCM_ICV_LEN
    RUN_MAX_INNER = 0xFFFF - RUN_HEAD - RUN_TAIL
    RUN_MAX_SLOT = 0x40000000

# encrypt_run_v4's trailer words (`pfe_trailer`), by next header (IPv4, IPv6) and pad length.
cdef uint64_t run_trailers[8]
for _pad in range(4):
    run_trailers[_pad] = pfe_trailer(_pad, NH_IPV4)
    run_trailers[4 + _pad] = pfe_trailer(_pad, NH_IPV6)
del _pad


cdef inline void outb_sa_flush(outb_sa_t *c) noexcept nogil:
    if c.sa != NULL:
        c.sa.seq = c.seq
        c.sa.c.packets += c.packets
        c.sa.c.bytes += c.bytes
        c.packets = 0
        c.bytes = 0


cdef inline bint outb_plain_v4(const sa_t *sa) noexcept nogil:
    """Whether `encrypt_run_v4` takes the SA's packets: an IPv4 outer header, no NAT-T, no
    ESN."""
    return not sa.ipv6 and not sa.udp_encap and not sa.esn and sa.outer_len == 20


cdef inline sa_t *outb_sa_switch(sa_table_t *t, int32_t h, outb_sa_t *c) noexcept nogil:
    """The SA of handle `h` made current (the previous one's sequence number and counters
    written back), or NULL (counted) when `h` names no outbound SA."""
    cdef sa_t *sa = sa_by_handle(t, h)     # a stale handle (older generation) names nothing
    if sa == NULL or sa.direction != SA_OUTBOUND:
        t.c.no_sa += 1
        return NULL
    outb_sa_flush(c)
    c.sa = sa
    c.h = h
    c.hdr = sa.hdr
    c.outer_len = sa.outer_len
    c.hdr_len = sa.outer_len + ESP_HDR_LEN
    c.max_total = 0xFFFF + 40 if sa.ipv6 else 0xFFFF   # IPv6 counts the payload only
    c.seq = sa.seq
    c.seq_last = <uint64_t>0xFFFFFFFFFFFFFFFFULL if sa.esn else MAX_U32
    c.spi_raw = wire_raw32(sa.spi_wire)
    c.salt_raw = wire_raw32(sa.salt)
    c.hdr_sum = sa.hdr_sum
    c.esn = sa.esn
    c.df_mode = sa.df_mode
    c.ipv6 = sa.ipv6
    c.udp_encap = sa.udp_encap
    c.plain_v4 = outb_plain_v4(sa)
    return sa


cdef inline Status encrypt_prepare(uint8_t *slot, Py_ssize_t slot_size, uint32_t *offset,
                                   uint32_t *length, outb_work_t *w,
                                   outb_sa_t *c) noexcept nogil:
    """Everything but the crypto, for a packet of the current SA (`c`, made current by
    `outb_sa_switch` in `esp_encrypt_burst`): inner header, room, sequence number, trailer, ESP
    header, nonce, AAD, the outer header (but the IPv6 UDP checksum, which covers the
    ciphertext: `encrypt_udp6_checksum`), the slot's new offset and length, and the
    counters. None of it is read by the crypto pass but the nonce, the AAD and the
    trailer, long written when the crypto loads them."""
    cdef sa_t *sa = c.sa
    cdef uint8_t *inner
    cdef uint8_t *esp
    cdef uint8_t *outer
    cdef uint32_t off = offset[0]
    cdef uint32_t ln = length[0]
    cdef uint32_t pad, plain_len, total, hdr_len, w0
    cdef uint8_t next_header, tos, ihl, df
    cdef uint16_t ident
    cdef uint64_t seq, iv, acc

    # Every valid inner packet has at least 20 bytes (IPv4; IPv6 needs 40), so the first
    # word is read once, in bounds, for version, IHL or traffic class, and total length.
    if off > slot_size or ln > slot_size - off or ln < 20:
        sa.c.malformed += 1
        return MALFORMED
    inner = slot + off
    w0 = load32(inner)
    if (w0 >> 28) == 4:
        # RFC 791 §3.1: IHL >= 5 and the header inside the packet; the total length is the
        # packet's. The receiver applies the same rules (esp_inb.pyx).
        ihl = (w0 >> 24) & 0x0F
        if ihl < 5 or ihl * 4u > ln or (w0 & 0xFFFF) != ln:
            sa.c.malformed += 1
            return MALFORMED
        next_header = NH_IPV4
        df = (inner[6] & 0x40) != 0
        tos = <uint8_t>(w0 >> 16)
    elif (w0 >> 28) == 6:
        if ln < 40 or 40 + <uint32_t>load16(inner + 4) != ln:
            sa.c.malformed += 1
            return MALFORMED
        next_header = NH_IPV6
        df = 1  # IPv6 is never fragmented in flight
        tos = <uint8_t>(w0 >> 20)
    else:
        sa.c.malformed += 1
        return MALFORMED

    # Trailer: payload || padding || pad length || next header is a multiple of 4 (§2.4).
    pad = (4 - ((ln + 2) & 3)) & 3
    plain_len = ln + pad + 2
    hdr_len = c.hdr_len
    total = hdr_len + plain_len + GCM_ICV_LEN
    if off < hdr_len or slot_size - off - ln < pad + 2 + GCM_ICV_LEN or total > c.max_total:
        sa.c.no_room += 1
        return NO_ROOM

    # Sequence numbers never wrap (RFC 4303 §3.3.3): the last one is 2^32-1 (2^64-1 with ESN).
    if c.seq >= c.seq_last:
        sa.rekey_needed = 1
        sa.c.seq_overflow += 1
        return SEQ_OVERFLOW
    c.seq += 1
    seq = c.seq

    # Padding 1, 2, 3, pad length and next header in one 8-byte store: the room check above
    # leaves pad + 18 bytes after the packet, and the bytes past the trailer are overwritten
    # by the ICV.
    wire_put_raw64(inner + ln, pfe_trailer(pad, next_header))

    # ESP header and nonce from registers: SPI || seq_lo, then the IV, which is the 64-bit
    # sequence number (RFC 4106 §3.1); the nonce is salt || IV (RFC 4106 §4), built from the
    # same register, never read back from the header just written.
    esp = inner - ESP_HDR_LEN
    iv = wire_be64(seq)
    wire_put_raw64(esp, pfe_pair32(c.spi_raw, wire_be32(<uint32_t>seq)))
    wire_put_raw64(esp + 8, iv)
    wire_put_raw32(w.nonce, c.salt_raw)
    wire_put_raw64(w.nonce + 4, iv)
    if c.esn:                        # AAD = SPI || seq_hi || seq_lo (RFC 4106 §5)
        wire_put_raw32(w.aad_buf, c.spi_raw)
        wire_put_raw64(w.aad_buf + 4, iv)

    # The outer header from the SA's template, in the headroom before the ESP header.
    df = c.df_mode == DF_SET or (c.df_mode == DF_COPY and df)
    outer = inner - hdr_len
    wire_copy_hdr(outer, c.hdr, c.outer_len)
    if c.ipv6:
        outer[0] = <uint8_t>(0x60 | (tos >> 4))
        outer[1] = <uint8_t>((tos & 0x0F) << 4)
        store16(outer + 4, <uint16_t>(total - 40))
        if c.udp_encap:
            store16(outer + 44, <uint16_t>(total - 40))
    else:
        # The template holds version/IHL, TTL, protocol and addresses, zeros elsewhere; its
        # constant words are summed at install (sa.hdr_sum), so the checksum is that sum plus
        # the four per-packet fields (RFC 1624), no pass over the header, and the header is
        # the template's words with those fields added. The identification is the sequence
        # number's low bits.
        ident = <uint16_t>seq
        outer[1] = tos
        store16(outer + 2, <uint16_t>total)
        store16(outer + 4, ident)
        outer[6] = 0x40 if df else 0
        acc = <uint64_t>c.hdr_sum + tos + total + ident + (0x4000 if df else 0)
        store16(outer + 10, csum_fold(acc))
        if c.udp_encap:
            store16(outer + 24, <uint16_t>(total - 20))  # UDP length; checksum stays 0 (RFC 3948 §2.1)
    offset[0] = off - hdr_len
    length[0] = total
    c.packets += 1
    c.bytes += ln

    w.sa = sa
    w.inner = inner
    w.plain_len = plain_len
    w.inner_len = ln
    return OK


cdef Py_ssize_t encrypt_run_v4(sa_table_t *t, uint8_t *data, Py_ssize_t slot_size,
                               uint32_t *offset, uint32_t *length, const int32_t *sa_index,
                               uint8_t *status, Py_ssize_t i, Py_ssize_t m, outb_work_t *w,
                               outb_sa_t *c) noexcept nogil:
    """Packets i, i+1, ... while they take the common path: an outbound SA with an IPv4
    outer header without NAT-T or ESN (the current one, `c`, or the next packet's, which
    then becomes current: tunnels interleave in a burst); an inner IPv4 packet without
    options or an IPv6 packet, its length its header's; room in front and behind; a
    sequence number left. The same bytes, statuses and counters as `encrypt_prepare`, in
    fewer instructions: every SA field in a register, the checks merged into range checks,
    the trailer from a table, the outer header built in registers and stored as three words.
    Returns the index of the first packet it left (to `encrypt_prepare`, which decides and
    counts its fate)."""
    cdef int64_t h
    cdef sa_t *sa
    cdef sa_t *next_sa
    cdef uint64_t seq, nbytes
    cdef Py_ssize_t first, end
    cdef uint64_t hdr0, hdr1
    cdef uint32_t hdr2, spi_raw, salt_raw, hdr_sum, df_set, df_copy
    # off - RUN_HEAD + ln may reach this: RUN_HEAD bytes of headroom and RUN_TAIL behind.
    cdef uint64_t room = <uint64_t>slot_size - RUN_HEAD - RUN_TAIL
    cdef uint32_t off, ln, pad, plain_len, total, tos, flags, v6, ident
    cdef uint64_t x, iv
    cdef uint8_t *inner
    cdef uint8_t *outer
    cdef bint switch
    if slot_size < RUN_HEAD + RUN_TAIL + 20 or slot_size > RUN_MAX_SLOT:
        return i                        # the range checks below assume neither
    while True:
        h = c.h
        sa = c.sa
        seq = c.seq
        nbytes = 0
        first = i
        end = m
        # The template's constant fields: version/IHL; TTL, protocol, source; destination.
        hdr0 = wire_load64(c.hdr) & 0xFF00000000000000ULL
        hdr1 = wire_load64(c.hdr + 8) & 0xFFFF0000FFFFFFFFULL
        hdr2 = wire_raw32(c.hdr + 16)
        spi_raw = c.spi_raw
        salt_raw = c.salt_raw
        hdr_sum = c.hdr_sum
        df_set = 0x4000 if c.df_mode == DF_SET else 0
        df_copy = 0x4000 if c.df_mode == DF_COPY else 0
        if c.seq_last - seq < <uint64_t>(m - i):     # numbers left for fewer packets
            end = i + <Py_ssize_t>(c.seq_last - seq)
        switch = False
        while i < end:
            if sa_index[i] != h:
                next_sa = sa_by_handle(t, sa_index[i])
                switch = (next_sa != NULL and next_sa.direction == SA_OUTBOUND
                          and outb_plain_v4(next_sa))
                break
            off = offset[i]
            ln = length[i]
            # 20..RUN_MAX_INNER bytes (the outer length then fits 16 bits), RUN_HEAD bytes
            # in front (off - RUN_HEAD wraps past `room` when off is less), RUN_TAIL behind.
            if (ln - 20 > RUN_MAX_INNER - 20
                    or <uint64_t>(off - <uint32_t>RUN_HEAD) + ln > room):
                break
            inner = data + i * slot_size + off
            x = wire_load64(inner)          # version/IHL, DS, total length, ident, flags
            if (x >> 56) == 0x45:
                if ((x >> 32) & 0xFFFF) != ln:
                    break
                v6 = 0
                tos = <uint32_t>(x >> 48) & 0xFF
                flags = <uint32_t>x & 0x4000
            elif (x >> 60) == 6:
                if ((x >> 16) & 0xFFFF) + 40 != ln:
                    break
                v6 = 4
                tos = <uint32_t>(x >> 52) & 0xFF
                flags = 0x4000
            else:
                break
            pad = (2 - ln) & 3
            plain_len = ln + 2 + pad
            total = plain_len + 20 + ESP_HDR_LEN + GCM_ICV_LEN
            seq += 1
            wire_put_raw64(inner + ln, run_trailers[v6 + pad])
            iv = wire_be64(seq)
            wire_put_raw64(inner - ESP_HDR_LEN, pfe_pair32(spi_raw, wire_be32(<uint32_t>seq)))
            wire_put_raw64(inner - 8, iv)
            wire_put_raw32(w[i].nonce, salt_raw)
            wire_put_raw64(w[i].nonce + 4, iv)
            flags = df_set | (flags & df_copy)
            ident = <uint32_t>seq & 0xFFFF
            # RFC 1624, as encrypt_prepare: the template's sum plus the four fields, under
            # 2^18.
            outer = inner - 20 - ESP_HDR_LEN
            wire_store64(outer, hdr0 | (<uint64_t>tos << 48) | (<uint64_t>total << 32)
                         | (<uint64_t>ident << 16) | flags)
            wire_store64(outer + 8, hdr1 | (<uint64_t>(~wire_fold32(hdr_sum + tos + total
                                                                    + ident + flags)
                                                       & 0xFFFF) << 32))
            wire_put_raw32(outer + 16, hdr2)
            offset[i] = off - 20 - ESP_HDR_LEN
            length[i] = total
            status[i] = OK
            nbytes += ln
            w[i].sa = sa
            w[i].inner = inner
            w[i].plain_len = plain_len
            w[i].inner_len = ln
            i += 1
        c.seq = seq
        c.packets += <uint64_t>(i - first)
        c.bytes += nbytes
        if not switch:
            return i
        # Writes the current SA back; cannot fail here. It looks the handle up again: handing
        # it the SA found above compiled to more instructions (951 against 933 per packet,
        # four tunnels interleaved, kernel_instructions.py).
        outb_sa_switch(t, sa_index[i], c)


cdef inline int encrypt_seal(const sa_table_t *t, outb_work_t *w) noexcept nogil:
    """The crypto of one prepared packet: 0, or -1 on a library error. The AAD is SPI ||
    seq, the ESP header's first 8 bytes, or with ESN the record's 12 (RFC 4106 §5)."""
    if w.sa.esn:
        return sa_seal(t, w.sa, w.nonce, w.aad_buf, 12, w.inner, w.plain_len,
                       w.inner + w.plain_len)
    return sa_seal(t, w.sa, w.nonce, w.inner - ESP_HDR_LEN, 8, w.inner, w.plain_len,
                   w.inner + w.plain_len)


cdef inline void encrypt_udp6_checksum(uint8_t *outer, uint32_t total) noexcept nogil:
    """The UDP checksum of an IPv6 outer header, over the pseudo-header and the datagram with
    its ciphertext: mandatory over IPv6 (RFC 8200 §8.1), so computed after the crypto."""
    cdef uint8_t *udp = outer + 40
    cdef uint64_t acc = csum_add(0, outer + 8, 32)
    cdef uint16_t udp_sum
    acc += (total - 40) + 17
    acc = csum_add(acc, udp, total - 40)
    udp_sum = csum_fold(acc)
    store16(udp + 6, udp_sum if udp_sum != 0 else 0xFFFF)


cdef Py_ssize_t esp_encrypt_burst(sa_table_t *t, uint8_t *data, Py_ssize_t slot_size,
                                  uint32_t *offset, uint32_t *length, const int32_t *sa_index,
                                  uint8_t *status, Py_ssize_t n) noexcept nogil:
    """Encrypt `n` slots; one status per slot; returns how many are OK.

    In chunks of OUTB_CHUNK packets and two passes, as DPDK's and VPP's ESP nodes do: every
    packet's work but the crypto (sequence numbers are taken in packet order), then the
    crypto of all of them back to back. Nothing the crypto reads is written just before it
    loads it (a store not yet forwarded to a load that spans it stalls the load), and
    nothing is left to a pass after it but the rare IPv6 UDP checksum."""
    cdef Py_ssize_t base, i, j, m, good = 0, in_runs
    cdef int32_t h
    cdef outb_work_t w[OUTB_CHUNK]
    cdef outb_sa_t c
    cdef sa_t *sa
    c.sa = NULL
    c.h = NO_HANDLE
    c.plain_v4 = 0
    c.packets = 0
    c.bytes = 0
    base = 0
    while base < n:
        m = n - base if n - base < OUTB_CHUNK else OUTB_CHUNK
        i = 0
        in_runs = 0
        while i < m:
            h = sa_index[base + i]
            if h != c.h and outb_sa_switch(t, h, &c) == NULL:
                status[base + i] = NO_SA
                i += 1
                continue
            if c.plain_v4 and t.common_runs:
                j = encrypt_run_v4(t, data + base * slot_size, slot_size, offset + base,
                                   length + base, sa_index + base, status + base, i, m, w, &c)
                if j > i:
                    in_runs += j - i
                    i = j
                    continue
            status[base + i] = encrypt_prepare(data + (base + i) * slot_size, slot_size,
                                               &offset[base + i], &length[base + i], &w[i],
                                               &c)
            i += 1
        outb_sa_flush(&c)
        if in_runs == m and t.backend == BACKEND_IPSEC_MB:
            # Every packet of the chunk came from the short loops: each is OK, without ESN
            # or NAT-T, sealed by intel-ipsec-mb, which cannot fail.
            for i in range(m):
                sa = w[i].sa
                pfe_imb_seal(t.imb, sa.imb_key, sa.key_len, w[i].nonce, w[i].inner - ESP_HDR_LEN,
                             8, w[i].inner, w[i].plain_len, w[i].inner + w[i].plain_len)
            good += m
            base += m
            continue
        for i in range(m):
            if status[base + i] != OK:
                continue
            sa = w[i].sa
            if encrypt_seal(t, &w[i]) != 0:
                status[base + i] = CRYPTO_ERROR
                offset[base + i] += sa.outer_len + ESP_HDR_LEN
                length[base + i] = w[i].inner_len
                sa.c.crypto_error += 1
                sa.c.packets -= 1
                sa.c.bytes -= w[i].inner_len
                continue
            good += 1
            if sa.udp_encap and sa.ipv6:
                encrypt_udp6_checksum(w[i].inner - sa.outer_len - ESP_HDR_LEN, length[base + i])
        base += m
    return good
