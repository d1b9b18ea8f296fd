# Header field access and Internet checksums for the kernels (RFC 791, RFC 8200, RFC 768,
# RFC 1071). Packet fields are big-endian and unaligned: loads and stores are one unaligned
# move plus a byte swap each (wire_ops.h), checksums are summed 32 bits at a time.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "wire_ops.h" nogil:
    uint16_t wire_load16(const uint8_t *p)
    uint32_t wire_load32(const uint8_t *p)
    uint64_t wire_load64(const uint8_t *p)
    void wire_store16(uint8_t *p, uint16_t v)
    void wire_store32(uint8_t *p, uint32_t v)
    void wire_store64(uint8_t *p, uint64_t v)
    uint32_t wire_raw32(const uint8_t *p)
    uint64_t wire_raw64(const uint8_t *p)
    void wire_put_raw32(uint8_t *p, uint32_t v)
    void wire_put_raw64(uint8_t *p, uint64_t v)
    void wire_copy_hdr(uint8_t *dst, const uint8_t *src, unsigned len)
    uint64_t wire_csum_add(uint64_t acc, const uint8_t *p, size_t n)
    uint16_t wire_fold_host(uint64_t acc)
    bint wire_ipv4_csum_ok(const uint8_t *ip, unsigned hlen)
    bint wire_ipv4_csum_ok_words(uint64_t x0, uint64_t x1, uint32_t x2)
    void wire_ipv4_set_checksum(uint8_t *ip, unsigned hlen)
    bint wire_pad_ok(const uint8_t *p, unsigned pad_len)
    uint32_t wire_be32 "WIRE_BE32"(uint32_t v)
    uint32_t wire_fold32(uint32_t s)
    int wire_trailer_v4_pad(const uint8_t *end)


cdef inline uint16_t load16(const uint8_t *p) noexcept nogil:
    return wire_load16(p)


cdef inline uint32_t load32(const uint8_t *p) noexcept nogil:
    return wire_load32(p)


cdef inline void store16(uint8_t *p, uint16_t v) noexcept nogil:
    wire_store16(p, v)


cdef inline void store32(uint8_t *p, uint32_t v) noexcept nogil:
    wire_store32(p, v)


cdef inline void store64(uint8_t *p, uint64_t v) noexcept nogil:
    wire_store64(p, v)


cdef inline uint64_t csum_add(uint64_t acc, const uint8_t *p, Py_ssize_t n) noexcept nogil:
    """Add `n` bytes, as big-endian 16-bit words, to a ones'-complement accumulator
    (RFC 1071); an odd tail is padded."""
    return wire_csum_add(acc, p, <size_t>n)


cdef inline uint16_t csum_fold_partial(uint64_t acc) noexcept nogil:
    """The accumulator folded to 16 bits, not complemented: a partial sum to add to later."""
    return wire_fold_host(acc)


cdef inline uint16_t csum_fold(uint64_t acc) noexcept nogil:
    """The checksum field value for an accumulator: folded and complemented."""
    return <uint16_t>(~wire_fold_host(acc) & 0xFFFF)


cdef inline void ipv4_set_checksum(uint8_t *ip, uint32_t header_len) noexcept nogil:
    """The header checksum of an IPv4 header of `header_len` bytes: the caller passes the
    length it validated, never the IHL read again from the packet (RFC 791 §3.1)."""
    wire_ipv4_set_checksum(ip, header_len)


cdef inline uint8_t ip_tos(const uint8_t *ip) noexcept nogil:
    """The DS field (DSCP and ECN) of an IPv4 or IPv6 header."""
    if (ip[0] >> 4) == 4:
        return ip[1]
    return <uint8_t>(((ip[0] & 0x0F) << 4) | (ip[1] >> 4))


cdef inline void ip_set_tos(uint8_t *ip, uint8_t tos) noexcept nogil:
    if (ip[0] >> 4) == 4:
        ip[1] = tos
    else:
        ip[0] = <uint8_t>((ip[0] & 0xF0) | (tos >> 4))
        ip[1] = <uint8_t>((ip[1] & 0x0F) | ((tos & 0x0F) << 4))
