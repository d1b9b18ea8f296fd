# cython: language_level=3
"""ESP tunnel-mode encapsulation of a burst, in place (RFC 4303 §3.3, RFC 4106, RFC 3948).

Per packet: validate the inner header, take the next sequence number, write the trailer into
the tailroom and the ESP header into the headroom, seal with AES-GCM, then write the optional
UDP header and the outer IP header. The slot's offset/length then describe the outer packet.
A burst runs these steps as three passes over chunks of packets (before the crypto, the crypto,
after it)."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from libc.string cimport memcpy
from _pfe_core.status cimport *
from _pfe_core.sa cimport (
    sa_t, sa_table_t, sa_by_handle, SA_OUTBOUND, ESP_HDR_LEN, DF_SET, DF_COPY,
)
from _pfe_core.gcm cimport GCM_ICV_LEN, GCM_NONCE_LEN
from _pfe_core.aead cimport sa_seal
from _pfe_core.wire cimport (
    load16, store16, store32, csum_add, csum_fold, wire_put_raw32, wire_put_raw64, wire_raw32,
    wire_copy_hdr,
)

cdef extern from "wire_ops.h" nogil:
    uint64_t wire_be64 "WIRE_BE64"(uint64_t v)

cdef enum:
    NH_IPV4 = 4
    NH_IPV6 = 41
    MAX_U32 = 0xFFFFFFFF

# The padding bytes 1, 2, 3, 4 as one native-order 32-bit word (stored with a raw move).
cdef extern from *:
    """
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    #define PFE_PAD_1234 0x01020304u
    #else
    #define PFE_PAD_1234 0x04030201u
    #endif
    """
    const uint32_t PAD_1234 "PFE_PAD_1234"


# What the passes of a burst hand each other per packet.
ctypedef struct outb_work_t:
    sa_t *sa
    uint8_t *inner               # the inner packet, then its ciphertext, in place
    const uint8_t *aad           # the ESP header, or aad_buf with ESN
    uint64_t seq
    uint32_t plain_len           # inner packet + trailer
    uint32_t total               # the outer packet's length
    uint32_t hdr_len             # outer header + ESP header
    uint8_t tos
    uint8_t df
    uint8_t aad_len
    uint8_t nonce[GCM_NONCE_LEN]
    uint8_t aad_buf[12]

# The last handle of a burst and its SA: consecutive packets of one SA (the common case) skip
# the handle check. Valid for one burst only (the table is locked meanwhile).
ctypedef struct sa_cache_t:
    int32_t h
    sa_t *sa

cdef enum:
    OUTB_CHUNK = 32              # packets per pass: the per-packet state stays on the stack


cdef inline Status encrypt_prepare(sa_table_t *t, uint8_t *slot, Py_ssize_t slot_size,
                                   uint32_t off, uint32_t ln, int32_t h,
                                   outb_work_t *w, sa_cache_t *cache) noexcept nogil:
    """Everything before the crypto: SA, inner header, room, sequence number, trailer, ESP
    header, nonce and AAD."""
    cdef sa_t *sa
    cdef uint8_t *inner
    cdef uint8_t *esp
    cdef uint32_t pad, plain_len, total, hdr_len
    cdef uint8_t next_header, tos, v, inner_df
    cdef uint64_t seq, iv

    if cache.sa != NULL and h == cache.h:
        sa = cache.sa                   # the SA of the packet before: checked already
    else:
        sa = sa_by_handle(t, h)         # a stale handle (older generation) names nothing
        if sa == NULL or sa.direction != SA_OUTBOUND:
            t.c.no_sa += 1
            return NO_SA
        cache.h = h
        cache.sa = sa
    if off > slot_size or ln > slot_size - off or ln == 0:
        sa.c.malformed += 1
        return MALFORMED
    inner = slot + off
    v = inner[0]
    if (v >> 4) == 4:
        # RFC 791 §3.1: IHL >= 5 and the header inside the packet; the total length is the
        # packet's. The receiver applies the same rules (esp_inb.pyx).
        if ln < 20 or (v & 0x0F) < 5 or (v & 0x0F) * 4u > ln or load16(inner + 2) != ln:
            sa.c.malformed += 1
            return MALFORMED
        next_header = NH_IPV4
        inner_df = (inner[6] & 0x40) != 0
        tos = inner[1]
    elif (v >> 4) == 6:
        if ln < 40 or 40 + <uint32_t>load16(inner + 4) != ln:
            sa.c.malformed += 1
            return MALFORMED
        next_header = NH_IPV6
        inner_df = 1  # IPv6 is never fragmented in flight
        tos = <uint8_t>(((v & 0x0F) << 4) | (inner[1] >> 4))
    else:
        sa.c.malformed += 1
        return MALFORMED

    # Trailer: payload || padding || pad length || next header is a multiple of 4 (§2.4).
    pad = (4 - ((ln + 2) & 3)) & 3
    plain_len = ln + pad + 2
    hdr_len = sa.outer_len + ESP_HDR_LEN
    total = hdr_len + plain_len + GCM_ICV_LEN
    if off < hdr_len or slot_size - off - ln < pad + 2 + GCM_ICV_LEN:
        sa.c.no_room += 1
        return NO_ROOM
    if (sa.ipv6 and total - 40 > 0xFFFF) or (not sa.ipv6 and total > 0xFFFF):
        sa.c.no_room += 1
        return NO_ROOM

    # Sequence numbers never wrap (RFC 4303 §3.3.3): the last one is 2^32-1 (2^64-1 with ESN).
    if (sa.esn and sa.seq == <uint64_t>0xFFFFFFFFFFFFFFFFULL) or (not sa.esn and sa.seq >= MAX_U32):
        sa.rekey_needed = 1
        sa.c.seq_overflow += 1
        return SEQ_OVERFLOW
    sa.seq += 1
    seq = sa.seq

    # Padding 1, 2, 3 in one 4-byte store (the room check above leaves pad + 18 bytes after
    # the packet; bytes past the trailer are overwritten by the ICV), then the two trailer
    # bytes over it.
    wire_put_raw32(inner + ln, PAD_1234)
    inner[ln + pad] = <uint8_t>pad
    inner[ln + pad + 1] = next_header

    # ESP header and nonce from registers: SPI || seq_lo, then the IV, which is the 64-bit
    # sequence number (RFC 4106 §3.1); the nonce is salt || IV (RFC 4106 §4), built from the
    # same register, never read back from the header just written.
    esp = inner - ESP_HDR_LEN
    iv = wire_be64(seq)
    wire_put_raw32(esp, wire_raw32(sa.spi_wire))
    store32(esp + 4, <uint32_t>seq)
    wire_put_raw64(esp + 8, iv)
    wire_put_raw32(w.nonce, wire_raw32(sa.salt))
    wire_put_raw64(w.nonce + 4, iv)
    if sa.esn:                       # AAD = SPI || seq_hi || seq_lo (RFC 4106 §5)
        wire_put_raw32(w.aad_buf, wire_raw32(sa.spi_wire))
        wire_put_raw64(w.aad_buf + 4, iv)
        w.aad = w.aad_buf
        w.aad_len = 12
    else:                            # AAD = SPI || seq, exactly the ESP header's first 8 bytes
        w.aad = esp
        w.aad_len = 8
    w.sa = sa
    w.inner = inner
    w.seq = seq
    w.plain_len = plain_len
    w.total = total
    w.hdr_len = hdr_len
    w.tos = tos
    w.df = sa.df_mode == DF_SET or (sa.df_mode == DF_COPY and inner_df)
    return OK


cdef inline int encrypt_seal(const sa_table_t *t, outb_work_t *w) noexcept nogil:
    """The crypto of one prepared packet: 0, or -1 on a library error."""
    return sa_seal(t, w.sa, w.nonce, w.aad, w.aad_len, w.inner, w.plain_len,
                   w.inner + w.plain_len)


cdef inline Status encrypt_finish(uint32_t *offset, uint32_t *length, outb_work_t *w,
                                  int rc, uint32_t ln) noexcept nogil:
    """Everything after the crypto: the outer header from the SA's template, counters."""
    cdef sa_t *sa = w.sa
    cdef uint8_t *outer
    cdef uint8_t *udp
    cdef uint32_t total = w.total
    cdef uint8_t tos = w.tos
    cdef uint64_t seq = w.seq
    cdef uint64_t acc
    cdef uint16_t udp_sum
    if rc != 0:
        sa.c.crypto_error += 1
        return CRYPTO_ERROR
    outer = w.inner - w.hdr_len
    wire_copy_hdr(outer, sa.hdr, sa.outer_len)
    if sa.ipv6:
        outer[0] = <uint8_t>(0x60 | (tos >> 4))
        outer[1] = <uint8_t>((tos & 0x0F) << 4)
        store16(outer + 4, <uint16_t>(total - 40))
        if sa.udp_encap:
            udp = outer + 40
            store16(udp + 4, <uint16_t>(total - 40))
            # The UDP checksum is mandatory over IPv6 (RFC 8200 §8.1): pseudo-header + datagram.
            acc = csum_add(0, outer + 8, 32)
            acc += (total - 40) + 17
            acc = csum_add(acc, udp, total - 40)
            udp_sum = csum_fold(acc)
            store16(udp + 6, udp_sum if udp_sum != 0 else 0xFFFF)
    else:
        # The template holds version/IHL, TTL, protocol and addresses, zeros elsewhere; its
        # constant words are summed at install (sa.hdr_sum), so the checksum is that sum plus
        # the four per-packet fields (RFC 1624), no pass over the header.
        outer[1] = tos
        store16(outer + 2, <uint16_t>total)
        store16(outer + 4, <uint16_t>seq)  # identification: low bits of the sequence number
        outer[6] = 0x40 if w.df else 0
        acc = <uint64_t>sa.hdr_sum + tos + total + (seq & 0xFFFF) + (0x4000 if w.df else 0)
        store16(outer + 10, csum_fold(acc))
        if sa.udp_encap:
            store16(outer + 24, <uint16_t>(total - 20))  # UDP length; checksum stays 0 (RFC 3948 §2.1)
    offset[0] = offset[0] - w.hdr_len
    length[0] = total
    sa.c.packets += 1
    sa.c.bytes += ln
    return OK


cdef Py_ssize_t esp_encrypt_burst(sa_table_t *t, uint8_t *data, Py_ssize_t slot_size,
                                  uint32_t *offset, uint32_t *length, const int32_t *sa_index,
                                  uint8_t *status, Py_ssize_t n) noexcept nogil:
    """Encrypt `n` slots; one status per slot; returns how many are OK.

    In chunks of OUTB_CHUNK packets and three passes, as the decrypt burst: every packet's
    work before the crypto (sequence numbers are taken in packet order), the crypto of all of
    them back to back, then every packet's outer header and counters."""
    cdef Py_ssize_t base, i, m, good = 0
    cdef Status st
    cdef outb_work_t w[OUTB_CHUNK]
    cdef sa_cache_t cache
    cache.h = -1
    cache.sa = NULL
    cdef int rc[OUTB_CHUNK]
    base = 0
    while base < n:
        m = n - base if n - base < OUTB_CHUNK else OUTB_CHUNK
        for i in range(m):
            status[base + i] = encrypt_prepare(t, data + (base + i) * slot_size, slot_size,
                                               offset[base + i], length[base + i],
                                               sa_index[base + i], &w[i], &cache)
        for i in range(m):
            if status[base + i] == OK:
                rc[i] = encrypt_seal(t, &w[i])
        for i in range(m):
            if status[base + i] == OK:
                st = encrypt_finish(&offset[base + i], &length[base + i], &w[i], rc[i],
                                    length[base + i])
                status[base + i] = st
                if st == OK:
                    good += 1
        base += m
    return good
