# cython: language_level=3
"""ESP tunnel-mode encapsulation of a burst, in place (RFC 4303 §3.3, RFC 4106, RFC 3948).

Per packet: validate the inner header, take the next sequence number, write the trailer into
the tailroom, seal with AES-GCM, then write ESP, the optional UDP header and the outer IP
header into the headroom. The slot's offset/length then describe the outer packet."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from libc.string cimport memcpy
from _pfe_core.status cimport *
from _pfe_core.sa cimport (
    sa_t, sa_table_t, sa_by_handle, SA_OUTBOUND, ESP_HDR_LEN, DF_SET, DF_COPY,
)
from _pfe_core.gcm cimport GCM_ICV_LEN, GCM_NONCE_LEN
from _pfe_core.aead cimport sa_seal
from _pfe_core.wire cimport (
    load16, store16, store32, store64, csum_add, csum_fold, ipv4_set_checksum, ip_tos,
)

cdef enum:
    NH_IPV4 = 4
    NH_IPV6 = 41
    MAX_U32 = 0xFFFFFFFF


cdef inline Status encrypt_one(sa_table_t *t, uint8_t *slot, Py_ssize_t slot_size,
                               uint32_t *offset, uint32_t *length, int32_t h) noexcept nogil:
    cdef sa_t *sa
    cdef uint8_t *inner
    cdef uint8_t *esp
    cdef uint8_t *outer
    cdef uint8_t *udp
    cdef uint8_t nonce[GCM_NONCE_LEN]
    cdef uint8_t aad[12]
    cdef uint32_t off = offset[0]
    cdef uint32_t ln = length[0]
    cdef uint32_t pad, plain_len, total, k, hdr_len
    cdef uint8_t next_header, tos, inner_df
    cdef uint64_t seq, acc
    cdef uint16_t udp_sum

    sa = sa_by_handle(t, h)             # a stale handle (older generation) names nothing
    if sa == NULL or sa.direction != SA_OUTBOUND:
        t.c.no_sa += 1
        return NO_SA
    if off > slot_size or ln > slot_size - off or ln == 0:
        sa.c.malformed += 1
        return MALFORMED
    inner = slot + off
    if (inner[0] >> 4) == 4:
        # RFC 791 §3.1: IHL >= 5 and the header inside the packet; the total length is the
        # packet's. The receiver applies the same rules (esp_inb.pyx).
        if ln < 20 or (inner[0] & 0x0F) < 5 or (inner[0] & 0x0F) * 4u > ln \
                or load16(inner + 2) != ln:
            sa.c.malformed += 1
            return MALFORMED
        next_header = NH_IPV4
        inner_df = (inner[6] & 0x40) != 0
    elif (inner[0] >> 4) == 6:
        if ln < 40 or 40 + <uint32_t>load16(inner + 4) != ln:
            sa.c.malformed += 1
            return MALFORMED
        next_header = NH_IPV6
        inner_df = 1  # IPv6 is never fragmented in flight
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

    for k in range(pad):
        inner[ln + k] = <uint8_t>(k + 1)
    inner[ln + pad] = <uint8_t>pad
    inner[ln + pad + 1] = next_header
    tos = ip_tos(inner)

    esp = inner - ESP_HDR_LEN
    store32(esp, sa.spi)
    store32(esp + 4, <uint32_t>seq)
    store64(esp + 8, seq)            # IV = 64-bit sequence number (RFC 4106 §3.1)
    memcpy(nonce, sa.salt, 4)
    memcpy(nonce + 4, esp + 8, 8)
    if sa.esn:                       # AAD = SPI || seq_hi || seq_lo (RFC 4106 §5)
        memcpy(aad, esp, 4)
        store32(aad + 4, <uint32_t>(seq >> 32))
        memcpy(aad + 8, esp + 4, 4)
        if sa_seal(t, sa, nonce, aad, 12, inner, plain_len, inner + plain_len) != 0:
            sa.c.crypto_error += 1
            return CRYPTO_ERROR
    else:                            # AAD = SPI || seq, exactly the ESP header's first 8 bytes
        if sa_seal(t, sa, nonce, esp, 8, inner, plain_len, inner + plain_len) != 0:
            sa.c.crypto_error += 1
            return CRYPTO_ERROR

    outer = inner - hdr_len
    memcpy(outer, sa.hdr, sa.outer_len)
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
        outer[1] = tos
        store16(outer + 2, <uint16_t>total)
        store16(outer + 4, <uint16_t>seq)  # identification: low bits of the sequence number
        if sa.df_mode == DF_SET or (sa.df_mode == DF_COPY and inner_df):
            outer[6] = 0x40
        else:
            outer[6] = 0
        outer[7] = 0
        ipv4_set_checksum(outer, 20)
        if sa.udp_encap:
            store16(outer + 24, <uint16_t>(total - 20))  # UDP length; checksum stays 0 (RFC 3948 §2.1)
    offset[0] = off - hdr_len
    length[0] = total
    sa.c.packets += 1
    sa.c.bytes += ln
    return OK


cdef Py_ssize_t esp_encrypt_burst(sa_table_t *t, uint8_t *data, Py_ssize_t slot_size,
                                  uint32_t *offset, uint32_t *length, const int32_t *sa_index,
                                  uint8_t *status, Py_ssize_t n) noexcept nogil:
    """Encrypt `n` slots; one status per slot; returns how many are OK."""
    cdef Py_ssize_t i, good = 0
    cdef Status st
    for i in range(n):
        st = encrypt_one(t, data + i * slot_size, slot_size, &offset[i], &length[i], sa_index[i])
        status[i] = st
        if st == OK:
            good += 1
    return good
