/* Word-wise access to packet fields for the ESP kernels. Packet fields are big-endian and not
 * aligned, so every load and store goes through memcpy of a fixed size, which compilers turn
 * into one (unaligned) move, plus a byte swap: one instruction where a byte loop takes eight.
 * Internet checksums (RFC 1071) are summed 32 bits at a time into a 64-bit accumulator and
 * folded once; ones'-complement addition is independent of the word size and byte order used
 * to sum, as long as the folded result is read in the order it was summed (RFC 1071 §2(B)):
 * sums here are over native-order 32-bit loads, folded, then swapped to network order. */
#ifndef INLINE_IPSEC_WIRE_OPS_H
#define INLINE_IPSEC_WIRE_OPS_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define WIRE_BSWAP16(x) __builtin_bswap16(x)
#define WIRE_BSWAP32(x) __builtin_bswap32(x)
#define WIRE_BSWAP64(x) __builtin_bswap64(x)
#define WIRE_LIKELY(x) __builtin_expect(!!(x), 1)
#define WIRE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#error "the kernels need GCC or Clang builtins"
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define WIRE_BE16(x) (x)
#define WIRE_BE32(x) (x)
#define WIRE_BE64(x) (x)
#else
#define WIRE_BE16(x) WIRE_BSWAP16(x)
#define WIRE_BE32(x) WIRE_BSWAP32(x)
#define WIRE_BE64(x) WIRE_BSWAP64(x)
#endif

static inline uint16_t wire_load16(const uint8_t *p) {
    uint16_t v; memcpy(&v, p, 2); return WIRE_BE16(v);
}
static inline uint32_t wire_load32(const uint8_t *p) {
    uint32_t v; memcpy(&v, p, 4); return WIRE_BE32(v);
}
static inline uint64_t wire_load64(const uint8_t *p) {
    uint64_t v; memcpy(&v, p, 8); return WIRE_BE64(v);
}
static inline void wire_store16(uint8_t *p, uint16_t v) {
    v = WIRE_BE16(v); memcpy(p, &v, 2);
}
static inline void wire_store32(uint8_t *p, uint32_t v) {
    v = WIRE_BE32(v); memcpy(p, &v, 4);
}
static inline void wire_store64(uint8_t *p, uint64_t v) {
    v = WIRE_BE64(v); memcpy(p, &v, 8);
}
/* Native-order (raw) 32- and 64-bit moves, for copying and summing. */
static inline uint32_t wire_raw32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t wire_raw64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void wire_put_raw32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wire_put_raw64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Fixed-size copies of an outer-header template: each size is a constant, so each becomes a
 * few vector moves instead of a call into libc with a length it must dispatch on. */
static inline void wire_copy_hdr(uint8_t *dst, const uint8_t *src, unsigned len) {
    switch (len) {
    case 20: memcpy(dst, src, 20); break;
    case 28: memcpy(dst, src, 28); break;
    case 40: memcpy(dst, src, 40); break;
    case 48: memcpy(dst, src, 48); break;
    default: memcpy(dst, src, len); break;
    }
}

/* Ones'-complement sum of `n4` 32-bit words (native order) into a 64-bit accumulator. */
static inline uint64_t wire_sum32(uint64_t acc, const uint8_t *p, unsigned n4) {
    for (unsigned i = 0; i < n4; i++)
        acc += wire_raw32(p + 4 * i);
    return acc;
}

/* Fold a native-order 64-bit accumulator to 16 bits, still native order (not complemented). */
static inline uint16_t wire_fold_native(uint64_t acc) {
    acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
    acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
    acc = (acc & 0xFFFFu) + (acc >> 16);
    acc = (acc & 0xFFFFu) + (acc >> 16);
    return (uint16_t)acc;
}

/* A ones'-complement sum below 2^32 folded to 16 bits (in the byte order it was summed in):
 * adding the word to itself rotated by 16 adds the two halves in the upper half, with the
 * lower half's carry, which is the end-around carry. */
static inline uint32_t wire_fold32(uint32_t s) {
    return (s + ((s << 16) | (s >> 16))) >> 16;
}

/* The folded native-order sum as a host value in network order (the value load16 would give
 * for a field holding it). */
static inline uint16_t wire_sum_to_host(uint16_t native) {
    return WIRE_BE16(native);
}

/* True when the IPv4 header of `hlen` bytes (a multiple of 4, 20..60) sums to 0xFFFF, i.e.
 * its checksum verifies (RFC 791 §3.1, RFC 1071). */
static inline int wire_ipv4_csum_ok(const uint8_t *ip, unsigned hlen) {
    uint64_t acc;
    if (WIRE_LIKELY(hlen == 20))
        acc = (uint64_t)wire_raw32(ip) + wire_raw32(ip + 4) + wire_raw32(ip + 8)
              + wire_raw32(ip + 12) + wire_raw32(ip + 16);
    else
        acc = wire_sum32(0, ip, hlen / 4);
    return wire_fold_native(acc) == 0xFFFF;
}

/* `wire_ipv4_csum_ok` for a 20-byte header whose words a caller has loaded already: the
 * first 16 bytes as two big-endian 64-bit words and the last 4 as a big-endian 32-bit one
 * (the sum is the same in any byte order, RFC 1071 §2(B), as long as all words share it). */
static inline int wire_ipv4_csum_ok_words(uint64_t x0, uint64_t x1, uint32_t x2) {
    uint64_t acc = (x0 >> 32) + (x0 & 0xFFFFFFFFu) + (x1 >> 32) + (x1 & 0xFFFFFFFFu) + x2;
    acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
    acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
    return wire_fold32((uint32_t)acc) == 0xFFFF;
}

/* Sum of host-order 16-bit values folded with a template's partial sum (host order). */
static inline uint16_t wire_fold_host(uint64_t acc) {
    acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
    acc = (acc & 0xFFFFu) + (acc >> 16);
    acc = (acc & 0xFFFFu) + (acc >> 16);
    acc = (acc & 0xFFFFu) + (acc >> 16);
    return (uint16_t)acc;
}

/* Add `n` bytes to a host-order accumulator of big-endian 16-bit words (RFC 1071), an odd tail
 * padded with zero: the 4-byte-aligned part is summed natively and swapped once. */
static inline uint64_t wire_csum_add(uint64_t acc, const uint8_t *p, size_t n) {
    uint64_t s = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        s += wire_raw32(p + i);
    acc += WIRE_BE16(wire_fold_native(s));
    if (i + 2 <= n) {
        acc += wire_load16(p + i);
        i += 2;
    }
    if (i < n)
        acc += (uint64_t)p[i] << 8;
    return acc;
}

/* Write the header checksum of an IPv4 header of `hlen` bytes (a multiple of 4). */
static inline void wire_ipv4_set_checksum(uint8_t *ip, unsigned hlen) {
    uint16_t sum;
    ip[10] = 0;
    ip[11] = 0;
    sum = (uint16_t)~wire_fold_native(wire_sum32(0, ip, hlen / 4));
    memcpy(ip + 10, &sum, 2);   /* native-order sum, stored natively: network order */
}

/* Padding must be 1, 2, 3, ... (RFC 4303 §2.4). `p` is the first padding byte; the caller
 * guarantees pad_len + 18 readable bytes from p (pad length, next header and the 16-byte
 * ICV follow the padding), so up to 8 bytes are compared in one load. */
static inline int wire_pad_ok(const uint8_t *p, unsigned pad_len) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (WIRE_LIKELY(pad_len < 8)) {
        uint64_t mask = (((uint64_t)1) << (8 * pad_len)) - 1;
        return (wire_raw64(p) & mask) == (UINT64_C(0x0807060504030201) & mask);
    }
#endif
    for (unsigned k = 0; k < pad_len; k++)
        if (p[k] != (uint8_t)(k + 1))
            return 0;
    return 1;
}

/* The ESP trailer of an IPv4 payload in one load: the 8 bytes that end at the next-header
 * byte `end[-1]` (the caller guarantees 8 readable bytes before `end`). Returns the pad
 * length when the next header is 4 and the padding is 1, 2, ... (RFC 4303 §2.4) with at
 * most 6 pad bytes, else -1 (any other trailer: the caller's full checks decide). */
static const uint64_t wire_trailer_mask[7] = {
    0xFFFFull, 0xFFFFFFull, 0xFFFFFFFFull, 0xFFFFFFFFFFull, 0xFFFFFFFFFFFFull,
    0xFFFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull,
};
static const uint64_t wire_trailer_v4[7] = {     /* ... 1 2 .. p, p, 4, big-endian */
    0x0004ull, 0x010104ull, 0x01020204ull, 0x0102030304ull, 0x010203040404ull,
    0x01020304050504ull, 0x0102030405060604ull,
};
static inline int wire_trailer_v4_pad(const uint8_t *end) {
    uint64_t t = wire_load64(end - 8);
    unsigned pad = (unsigned)(t >> 8) & 0xFF;
    if (WIRE_LIKELY(pad <= 6) && (t & wire_trailer_mask[pad]) == wire_trailer_v4[pad])
        return (int)pad;
    return -1;
}

#endif
