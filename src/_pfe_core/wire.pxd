# Header field access and Internet checksums for the kernels (RFC 791, RFC 8200, RFC 768,
# RFC 1071). Big-endian loads and stores byte by byte: packet fields are not aligned.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t


cdef inline uint16_t load16(const uint8_t *p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline uint32_t load32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline void store16(uint8_t *p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>v


cdef inline void store32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline void store64(uint8_t *p, uint64_t v) noexcept nogil:
    store32(p, <uint32_t>(v >> 32))
    store32(p + 4, <uint32_t>v)


cdef inline uint64_t csum_add(uint64_t acc, const uint8_t *p, Py_ssize_t n) noexcept nogil:
    """Add `n` bytes to a ones'-complement accumulator (RFC 1071); an odd tail is padded."""
    cdef Py_ssize_t i = 0
    while i + 1 < n:
        acc += (<uint64_t>p[i] << 8) | p[i + 1]
        i += 2
    if i < n:
        acc += <uint64_t>p[i] << 8
    return acc


cdef inline uint16_t csum_fold(uint64_t acc) noexcept nogil:
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return <uint16_t>(~acc & 0xFFFF)


cdef inline void ipv4_set_checksum(uint8_t *ip, uint32_t header_len) noexcept nogil:
    """The header checksum of an IPv4 header of `header_len` bytes: the caller passes the
    length it validated, never the IHL read again from the packet (RFC 791 §3.1)."""
    ip[10] = 0
    ip[11] = 0
    store16(ip + 10, csum_fold(csum_add(0, ip, header_len)))


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
