/* The floor of ESP framing: the tightest C loops a programmer would write for ESP tunnel mode
 * over IPv4 with AES-GCM-256 (RFC 4303, RFC 4106) on intel-ipsec-mb, against the raw crypto
 * loop of the same calls, timed inside C on the same packet layout as the PFE's bursts.
 *
 * It answers one question: how close to the raw crypto can ESP get at all on this machine?
 * The loops do only what every ESP implementation must: one SA, known at compile time to be
 * IPv4 without NAT-T or ESN; the inner header checked (version, IHL, total length), padding,
 * sequence number (no wrap), trailer, ESP header, nonce, an outer header from a template
 * with an incremental checksum (RFC 1624); decrypt: the outer header checked (checksum,
 * fragments, protocol), the SPI, the anti-replay window before and after the ICV (RFC 4303
 * §3.4.3), the trailer and the inner header. No handles, no counters per cause, no other
 * families. The PFE's kernels do all of that and more, so their distance to these loops is
 * the price of being general; these loops' distance to the raw crypto is the price of ESP.
 * The raw loops are the PFE's own references (src/_pfe_core/raw_loops.h), and every manager
 * is made as the PFE makes its own (INLINE_IPSEC_IPSEC_MB_ARCH pins the instruction set).
 *
 *   cc -O2 -DINLINE_IPSEC_HAVE_IPSEC_MB -Isrc/_pfe_core -o esp_floor benchmarks/esp_floor.c \
 *      -lIPSec_MB -lcrypto && ./esp_floor [seconds]
 *   ./esp_floor --packet   # one encrypted packet in hex (tests decrypt it with the PFE)
 *
 * Layout as `Burst`: 4 bursts of 32 slots of 2048 bytes, 64-byte aligned, the inner packet
 * at offset 128. Each window restores the bursts (untimed) and times one pass over all four. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <intel-ipsec-mb.h>
#include "raw_loops.h"      /* raw_imb_seal / raw_imb_open, and imb_shim.h's pfe_imb_init */
#include "wire_ops.h"

#define BURST 32
#define BURSTS 4
#define NPKT (BURST * BURSTS)
#define SLOT 2048
#define HEADROOM 128
#define OUTER 20                 /* IPv4 outer header */
#define ESPH 16                  /* SPI, sequence number, 8-byte IV */
#define ICV 16
#define WINDOW_WORDS 32          /* anti-replay window of 1024 packets... */
#define RING 64                  /* ...in a ring of 64-bit words (RFC 6479) */

typedef struct {
    uint64_t seq;                /* outbound: last sent; inbound: highest accepted */
    uint64_t ring[RING];
    uint32_t spi_be;             /* as on the wire */
    uint8_t salt[4];
    uint64_t hdr0, hdr1;         /* outer header template, native order: bytes 0-7, 8-15 */
    uint32_t hdr2;               /* bytes 16-19 */
    uint32_t hdr_sum;            /* ones'-complement sum of the template's constant words */
    uint64_t packets, bytes;
    struct gcm_key_data *key;
} sa_t;

typedef struct {
    uint8_t *data;
    uint32_t len;
    uint64_t seq;
    uint8_t nonce[12];
} work_t;

static IMB_MGR *mgr;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Big-endian loads and the ones'-complement fold, as the kernels have them (wire_ops.h). */
#define ld32 wire_load32
#define ld16 wire_load16
#define fold wire_fold_host

/* Encrypt one burst in place: a pass of framing, then a pass of seals. Returns the packets
 * sealed; st[i] is 0 for each of them, 1 for a packet dropped. */
static int encrypt_burst(uint8_t *slots, uint32_t *off, uint32_t *len, uint8_t *st, sa_t *sa) {
    work_t w[BURST];
    uint64_t seq = sa->seq, packets = 0, bytes = 0;
    int good = 0;
    for (int i = 0; i < BURST; i++) {
        uint32_t o = off[i], l = len[i];
        st[i] = 1;
        if (o > SLOT || l > SLOT - o || l < 20)
            continue;
        uint8_t *in = slots + (size_t)i * SLOT + o;
        uint32_t w0 = ld32(in);
        if ((w0 >> 28) != 4 || ((w0 >> 24) & 15) < 5 || ((w0 >> 24) & 15) * 4u > l
                || (w0 & 0xFFFF) != l)
            continue;
        uint32_t pad = (4 - ((l + 2) & 3)) & 3, plain = l + pad + 2;
        uint32_t total = OUTER + ESPH + plain + ICV;
        if (o < OUTER + ESPH || SLOT - o - l < pad + 2 + ICV || total > 0xFFFF
                || seq >= 0xFFFFFFFFu)
            continue;
        seq++;
        uint64_t trailer = (0x030201ull & ((1ull << (8 * pad)) - 1)) | ((uint64_t)pad << (8 * pad))
                           | (4ull << (8 * pad + 8));           /* next header: IPv4 */
        memcpy(in + l, &trailer, 8);                           /* room checked: pad + 18 */
        uint64_t iv = __builtin_bswap64(seq);
        uint64_t esp0 = ((uint64_t)__builtin_bswap32((uint32_t)seq) << 32) | sa->spi_be;
        memcpy(in - ESPH, &esp0, 8);
        memcpy(in - 8, &iv, 8);
        memcpy(w[i].nonce, sa->salt, 4);
        memcpy(w[i].nonce + 4, &iv, 8);
        uint8_t tos = (uint8_t)(w0 >> 16);
        uint16_t id = (uint16_t)seq;
        uint16_t sum = (uint16_t)~fold((uint64_t)sa->hdr_sum + tos + total + id);
        uint64_t h0 = sa->hdr0 | ((uint64_t)tos << 8) | ((uint64_t)__builtin_bswap16((uint16_t)total) << 16)
                      | ((uint64_t)__builtin_bswap16(id) << 32);
        uint64_t h1 = sa->hdr1 | ((uint64_t)__builtin_bswap16(sum) << 16);
        uint8_t *outer = in - ESPH - OUTER;
        memcpy(outer, &h0, 8);
        memcpy(outer + 8, &h1, 8);
        memcpy(outer + 16, &sa->hdr2, 4);
        off[i] = o - OUTER - ESPH;
        len[i] = total;
        packets++;
        bytes += l;
        w[i].data = in;
        w[i].len = plain;
        st[i] = 0;
    }
    sa->seq = seq;
    for (int i = 0; i < BURST; i++) {
        struct gcm_context_data ctx;
        if (st[i])
            continue;
        IMB_AES256_GCM_ENC(mgr, sa->key, &ctx, w[i].data, w[i].data, w[i].len, w[i].nonce,
                           w[i].data - ESPH, 8, w[i].data + w[i].len, ICV);
        good++;
    }
    sa->packets += packets;
    sa->bytes += bytes;
    return good;
}

static inline int replay_seen(const sa_t *sa, uint64_t seq) {
    if (seq == 0)
        return 1;
    if (seq > sa->seq)
        return 0;
    if (seq + WINDOW_WORDS * 64 <= sa->seq)
        return 1;
    return (sa->ring[(seq >> 6) & (RING - 1)] >> (seq & 63)) & 1;
}

static inline void replay_take(sa_t *sa, uint64_t seq) {
    if (seq > sa->seq) {
        uint64_t k = (sa->seq >> 6) + 1, last = seq >> 6;
        if (last - k >= RING)
            k = last - RING + 1;
        for (; k <= last; k++)
            sa->ring[k & (RING - 1)] = 0;
        sa->seq = seq;
    }
    sa->ring[(seq >> 6) & (RING - 1)] |= 1ull << (seq & 63);
}

/* Decrypt one burst in place: a pass of checks, then per packet the open and what follows.
 * Returns the packets delivered; st[i] as for encrypt_burst. */
static int decrypt_burst(uint8_t *slots, uint32_t *off, uint32_t *len, uint8_t *st, sa_t *sa) {
    work_t w[BURST];
    uint64_t packets = 0, bytes = 0;
    int good = 0;
    for (int i = 0; i < BURST; i++) {
        uint32_t o = off[i], l = len[i];
        st[i] = 1;
        if (o > SLOT || l > SLOT - o || l < OUTER + ESPH + 2 + ICV)
            continue;
        uint8_t *ip = slots + (size_t)i * SLOT + o;
        uint64_t a = (uint64_t)ld32(ip) + ld32(ip + 4) + ld32(ip + 8) + ld32(ip + 12) + ld32(ip + 16);
        uint32_t total = ld16(ip + 2);
        if (ip[0] != 0x45 || total > l || total < OUTER + ESPH + 2 + ICV || fold(a) != 0xFFFF
                || (ld16(ip + 6) & 0x3FFF) || ip[9] != 50)
            continue;
        uint8_t *esp = ip + OUTER;
        uint32_t spi_be;
        memcpy(&spi_be, esp, 4);
        uint64_t seq = ld32(esp + 4);
        if (spi_be != sa->spi_be || replay_seen(sa, seq))
            continue;
        w[i].data = esp + ESPH;
        w[i].len = total - OUTER - ESPH - ICV;
        w[i].seq = seq;
        memcpy(w[i].nonce, sa->salt, 4);
        memcpy(w[i].nonce + 4, esp + 8, 8);
        st[i] = 0;
    }
    for (int i = 0; i < BURST; i++) {
        struct gcm_context_data ctx;
        uint8_t tag[ICV];
        if (st[i])
            continue;
        uint8_t *p = w[i].data;
        uint32_t n = w[i].len;
        IMB_AES256_GCM_DEC(mgr, sa->key, &ctx, p, p, n, w[i].nonce, p - ESPH, 8, tag, ICV);
        st[i] = 1;
        if (memcmp(tag, p + n, ICV) != 0 || replay_seen(sa, w[i].seq))
            continue;
        replay_take(sa, w[i].seq);
        uint32_t pad = p[n - 2];
        uint64_t pads;
        if (pad + 2 > n || pad >= 8 || p[n - 1] != 4)   /* up to 7 bytes of padding here */
            continue;
        memcpy(&pads, p + n - 2 - pad, 8);     /* ends inside the ICV after the trailer */
        if ((pads & ((1ull << (8 * pad)) - 1)) != (0x0807060504030201ull & ((1ull << (8 * pad)) - 1)))
            continue;
        uint32_t inner = n - 2 - pad, ihl = (p[0] & 15) * 4u, tl = ld16(p + 2);
        if (inner < 20 || (p[0] >> 4) != 4 || ihl < 20 || tl < ihl || tl > inner)
            continue;
        off[i] = (uint32_t)(p - (slots + (size_t)i * SLOT));
        len[i] = tl;
        packets++;
        bytes += tl;
        st[i] = 0;
        good++;
    }
    sa->packets += packets;
    sa->bytes += bytes;
    return good;
}

static uint8_t *slots_new(void) {
    uint8_t *p = aligned_alloc(64, (size_t)NPKT * SLOT);
    if (p == NULL) {
        perror("aligned_alloc");
        exit(2);
    }
    memset(p, 0, (size_t)NPKT * SLOT);
    return p;
}

/* Inner IPv4/UDP packets of `size` bytes, 10.1.0.1 -> 10.2.0.1, the header checksum set. */
static void fill_inner(uint8_t *slots, uint32_t size) {
    for (int i = 0; i < NPKT; i++) {
        uint8_t *p = slots + (size_t)i * SLOT + HEADROOM;
        uint8_t h[28] = {0x45, 0, (uint8_t)(size >> 8), (uint8_t)size, 0, (uint8_t)i, 0x40, 0, 64, 17, 0, 0,
                         10, 1, 0, 1, 10, 2, 0, 1, 0x04, 0x00, 0x13, 0x89,
                         (uint8_t)((size - 20) >> 8), (uint8_t)(size - 20), 0, 0};
        memcpy(p, h, 28);
        memset(p + 28, i, size - 28);
        uint64_t a = 0;
        for (int k = 0; k < 20; k += 2)
            a += ld16(p + k);
        uint16_t s = (uint16_t)~fold(a);
        p[10] = (uint8_t)(s >> 8);
        p[11] = (uint8_t)s;
    }
}

static void sa_init(sa_t *sa, struct gcm_key_data *key) {
    static const uint8_t outer[20] = {0x45, 0, 0, 0, 0, 0, 0, 0, 64, 50, 0, 0,
                                      192, 0, 2, 1, 198, 51, 100, 1};
    uint64_t a = 0;
    memset(sa, 0, sizeof(*sa));
    sa->spi_be = __builtin_bswap32(0x1000);
    memcpy(sa->salt, "\x01\x02\x03\x04", 4);
    memcpy(&sa->hdr0, outer, 8);
    memcpy(&sa->hdr1, outer + 8, 8);
    memcpy(&sa->hdr2, outer + 16, 4);
    for (int k = 0; k < 20; k += 2)
        a += ld16(outer + k);
    sa->hdr_sum = fold(a);
    sa->key = key;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_WINDOWS 200000

/* Interleaved windows of the raw loop and the ESP loop for `seconds`; medians in ns/packet. */
static void measure(uint32_t size, double seconds, struct gcm_key_data *key, const raw_imb *rm) {
    static double raw_enc[MAX_WINDOWS], esp_enc[MAX_WINDOWS], raw_dec[MAX_WINDOWS], esp_dec[MAX_WINDOWS];
    uint8_t *pristine = slots_new(), *work = slots_new(), *sealed = slots_new(), *raw = slots_new();
    uint8_t *scratch_block = aligned_alloc(4096, 4096 + SLOT), *scratch;
    uint32_t off[NPKT], len[NPKT], plain[NPKT], sealed_off[NPKT], sealed_len[NPKT];
    uint8_t st[NPKT];
    raw_pkt seal_pkts[NPKT], open_pkts[NPKT];
    uint64_t counter = 0;
    size_t ok_raw;
    sa_t out, in;
    int n = 0;
    uint32_t pad = (4 - ((size + 2) & 3)) & 3;

    fill_inner(pristine, size);
    sa_init(&out, key);
    sa_init(&in, key);
    /* The raw loop's packets: the ESP payload (inner packet and trailer) at the same offset. */
    memcpy(raw, pristine, (size_t)NPKT * SLOT);
    for (int i = 0; i < NPKT; i++) {
        plain[i] = size + pad + 2;
        seal_pkts[i].data = raw + (size_t)i * SLOT + HEADROOM;
        seal_pkts[i].len = plain[i];
    }
    /* A sealed copy for the decrypt windows, and the raw open's nonces and ciphertexts. */
    memcpy(sealed, pristine, (size_t)NPKT * SLOT);
    for (int i = 0; i < NPKT; i++) {
        sealed_off[i] = HEADROOM;
        sealed_len[i] = size;
    }
    for (int b = 0; b < BURSTS; b++)
        if (encrypt_burst(sealed + (size_t)b * BURST * SLOT, sealed_off + b * BURST,
                          sealed_len + b * BURST, st + b * BURST, &out) != BURST) {
            fprintf(stderr, "encrypt floor dropped packets\n");
            exit(1);
        }
    /* The raw open's packets: the same ciphertexts, their AAD before them, their nonces; its
     * plaintext goes to a scratch buffer clear of the packets modulo 4 KiB (as calibrate.pyx
     * places it: 4K aliasing would slow the reference). */
    uint8_t *raw_sealed = slots_new();
    for (int i = 0; i < NPKT; i++) {
        uint8_t *esp = sealed + (size_t)i * SLOT + sealed_off[i] + OUTER;
        uint8_t *p = raw_sealed + (size_t)i * SLOT + HEADROOM;
        memcpy(p, esp + ESPH, plain[i] + ICV);
        memcpy(p - 8, esp, 8);
        open_pkts[i].data = p;
        open_pkts[i].len = plain[i];
        memcpy(open_pkts[i].nonce, in.salt, 4);
        memcpy(open_pkts[i].nonce + 4, esp + 8, 8);
    }
    scratch = scratch_block + ((((uintptr_t)open_pkts[0].data & 4095) + 1024) & 4095);

    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
    while ((n < 31 || now_ns() < end) && n < MAX_WINDOWS) {
        uint64_t t0, t1;
        /* encrypt: ESP loop, then raw loop, each on freshly restored packets */
        for (int i = 0; i < NPKT; i++) {
            memcpy(work + (size_t)i * SLOT + HEADROOM, pristine + (size_t)i * SLOT + HEADROOM, size);
            off[i] = HEADROOM;
            len[i] = size;
        }
        t0 = now_ns();
        for (int b = 0; b < BURSTS; b++)
            encrypt_burst(work + (size_t)b * BURST * SLOT, off + b * BURST, len + b * BURST,
                          st + b * BURST, &out);
        t1 = now_ns();
        esp_enc[n] = (double)(t1 - t0) / NPKT;
        for (int i = 0; i < NPKT; i++)
            memcpy(raw + (size_t)i * SLOT + HEADROOM, pristine + (size_t)i * SLOT + HEADROOM, size);
        raw_enc[n] = (double)raw_imb_seal(rm, seal_pkts, NPKT, 1, in.salt, &counter, &ok_raw) / NPKT;
        /* decrypt: the sealed packets again, the window emptied */
        for (int i = 0; i < NPKT; i++) {
            memcpy(work + (size_t)i * SLOT + sealed_off[i], sealed + (size_t)i * SLOT + sealed_off[i],
                   sealed_len[i]);
            off[i] = sealed_off[i];
            len[i] = sealed_len[i];
        }
        in.seq = 0;
        memset(in.ring, 0, sizeof(in.ring));
        int ok = 0;
        t0 = now_ns();
        for (int b = 0; b < BURSTS; b++)
            ok += decrypt_burst(work + (size_t)b * BURST * SLOT, off + b * BURST, len + b * BURST,
                                st + b * BURST, &in);
        t1 = now_ns();
        esp_dec[n] = (double)(t1 - t0) / NPKT;
        if (ok != NPKT || memcmp(work + (size_t)5 * SLOT + off[5], pristine + (size_t)5 * SLOT + HEADROOM, size)) {
            fprintf(stderr, "decrypt floor lost packets (%d of %d)\n", ok, NPKT);
            exit(1);
        }
        raw_dec[n] = (double)raw_imb_open(rm, open_pkts, NPKT, 1, scratch, &ok_raw) / NPKT;
        if (ok_raw != NPKT) {
            fprintf(stderr, "raw open failed\n");
            exit(1);
        }
        n++;
    }
    double re = median(raw_enc, n), ee = median(esp_enc, n), rd = median(raw_dec, n), ed = median(esp_dec, n);
    printf("%5u B  encrypt: raw %7.1f  esp %7.1f ns/packet  ratio %.3f   "
           "decrypt: raw %7.1f  esp %7.1f ns/packet  ratio %.3f   (%d windows)\n",
           size, re, ee, re / ee, rd, ed, rd / ed, n);
    free(pristine); free(work); free(sealed); free(raw); free(raw_sealed); free(scratch_block);
}

int main(int argc, char **argv) {
    uint8_t k[32];
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)(0x10 + i);
    /* The managers as the PFE makes them (imb_shim.h): the instruction set the library picks,
     * or the one INLINE_IPSEC_IPSEC_MB_ARCH pins, for the ESP loops and the raw loops alike. */
    pfe_imb *pm = pfe_imb_new();
    raw_imb *rm = raw_imb_new(k, 32);
    struct gcm_key_data *key = pm != NULL ? pfe_imb_key_new(pm, k, 32) : NULL;
    if (pm == NULL || rm == NULL || key == NULL) {
        fprintf(stderr, "intel-ipsec-mb does not run here (no AES-NI), or "
                        "INLINE_IPSEC_IPSEC_MB_ARCH names no instruction set this CPU has\n");
        return 2;
    }
    mgr = pm->mgr;

    if (argc > 1 && strcmp(argv[1], "--packet") == 0) {
        /* key 10 11 .. 2f, salt 01 02 03 04, SPI 0x1000, 192.0.2.1 -> 198.51.100.1 */
        uint8_t *s = slots_new();
        uint32_t off[BURST], len[BURST];
        uint8_t st[BURST];
        sa_t out;
        sa_init(&out, key);
        fill_inner(s, 100);
        for (int i = 0; i < BURST; i++) {
            off[i] = HEADROOM;
            len[i] = 100;
        }
        if (encrypt_burst(s, off, len, st, &out) != BURST)
            return 1;
        for (uint32_t i = 0; i < len[1]; i++)
            printf("%02x", s[SLOT + off[1] + i]);
        printf("\n");
        return 0;
    }
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    printf("ESP floor, AES-GCM-256 on intel-ipsec-mb %s (%s), bursts of %d, medians\n",
           pfe_imb_version(), pfe_imb_arch_name(pm), BURST);
    measure(64, seconds, key, rm);
    measure(1400, seconds, key, rm);
    raw_imb_free(rm);
    pfe_imb_key_free(key);
    pfe_imb_free(pm);
    return 0;
}
