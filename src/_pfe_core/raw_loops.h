/* The raw-crypto reference of every benchmark ratio: the tightest loop a C programmer would
 * write over the AES-GCM calls the PFE makes per packet (RFC 4106: 12-byte nonce = salt ||
 * 64-bit counter, 8 bytes of AAD before the data, 16-byte ICV after it), on OpenSSL EVP or
 * intel-ipsec-mb, timed inside C over many bursts in one call: no Python, no buffer views and
 * no timer per burst or packet, only one clock read before the loop and one after.
 *
 * Seal encrypts each packet in place with a new nonce, as the PFE does. Open verifies the tag
 * of each packet with the nonce it was sealed with, writing the plaintext beside it (out of
 * place) so that the ciphertext, and so every tag check, stays valid round after round: the
 * same calls and the same bytes as an in-place open, without restoring anything in the loop.
 * Each loop returns the elapsed nanoseconds and counts the calls that succeeded in *ok.
 *
 * Compiles with or without intel-ipsec-mb (INLINE_IPSEC_HAVE_IPSEC_MB, set by setup.py). */
#ifndef INLINE_IPSEC_RAW_LOOPS_H
#define INLINE_IPSEC_RAW_LOOPS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

typedef struct raw_pkt {
    uint8_t *data;       /* ESP payload; 8 bytes of AAD before it, the 16-byte ICV after it */
    uint32_t len;
    uint8_t nonce[12];   /* open: the nonce the packet was sealed with */
} raw_pkt;

static inline int64_t raw_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void raw_put_counter(uint8_t *nonce, uint64_t counter) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    counter = __builtin_bswap64(counter);
#endif
    memcpy(nonce + 4, &counter, 8);   /* big-endian, one store */
}

/* A cycle counter for timing one kernel call among untimed work (restoring the burst it
 * consumes): the TSC on x86-64 (constant rate on every CPU this runs on, converted to
 * nanoseconds against CLOCK_MONOTONIC over the whole measurement), the monotonic clock
 * elsewhere. */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t raw_ticks(void) { return __rdtsc(); }
#else
static inline uint64_t raw_ticks(void) { return (uint64_t)raw_now_ns(); }
#endif

/* OpenSSL EVP: the key schedule is set once (ctx initialised with the key), per packet only
 * the IV changes, with the calls the PFE makes (gcm.pxd gcm_seal_next / gcm_open_wire): the
 * context holds the salt and generates each IV on a seal (EVP_CTRL_GCM_IV_GEN; call
 * raw_evp_set_next_iv once before), and an open sets only the 8-byte IV
 * (EVP_CTRL_GCM_SET_IV_INV; call raw_evp_set_salt once before). */
static inline int raw_evp_set_next_iv(EVP_CIPHER_CTX *ctx, const uint8_t *salt,
                                      uint64_t counter) {
    uint8_t nonce[12];
    memcpy(nonce, salt, 4);
    raw_put_counter(nonce, counter);
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, -1, nonce) == 1 ? 0 : -1;
}

static inline int raw_evp_set_salt(EVP_CIPHER_CTX *ctx, const uint8_t *salt) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, 4, (void *)salt) == 1 ? 0 : -1;
}

static inline int64_t raw_evp_seal(EVP_CIPHER_CTX *ctx, const raw_pkt *pkts, size_t n,
                                   uint32_t rounds, const uint8_t *salt, uint64_t *counter,
                                   size_t *ok) {
    uint8_t iv[8];
    int outl;
    size_t good = 0;
    (void)salt;
    int64_t t0 = raw_now_ns();
    for (uint32_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = pkts[i].data;
            int len = (int)pkts[i].len;
            ++*counter;
            if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_IV_GEN, 8, iv) != 1
                    || EVP_EncryptUpdate(ctx, NULL, &outl, p - 8, 8) != 1
                    || EVP_EncryptUpdate(ctx, p, &outl, p, len) != 1
                    || EVP_EncryptFinal_ex(ctx, p + len, &outl) != 1
                    || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, p + len) != 1) {
                ERR_clear_error();
                continue;
            }
            good++;
        }
    }
    int64_t elapsed = raw_now_ns() - t0;
    *ok = good;
    return elapsed;
}

static inline int64_t raw_evp_open(EVP_CIPHER_CTX *ctx, const raw_pkt *pkts, size_t n,
                                   uint32_t rounds, uint8_t *out, size_t *ok) {
    int outl;
    size_t good = 0;
    int64_t t0 = raw_now_ns();
    for (uint32_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = pkts[i].data;
            int len = (int)pkts[i].len;
            if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_INV, 8, (void *)(pkts[i].nonce + 4)) != 1
                    || EVP_DecryptUpdate(ctx, NULL, &outl, p - 8, 8) != 1
                    || EVP_DecryptUpdate(ctx, out, &outl, p, len) != 1
                    || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, p + len) != 1
                    || EVP_DecryptFinal_ex(ctx, out + len, &outl) != 1) {
                ERR_clear_error();
                continue;
            }
            good++;
        }
    }
    int64_t elapsed = raw_now_ns() - t0;
    *ok = good;
    return elapsed;
}

#ifdef INLINE_IPSEC_HAVE_IPSEC_MB
#include <intel-ipsec-mb.h>
#include "imb_shim.h"   /* pfe_imb_init: the same instruction set as the PFE's managers */

static const int raw_imb_available = 1;

typedef struct raw_imb {
    IMB_MGR *mgr;
    struct gcm_key_data *key;
    int key_len;
} raw_imb;

static inline void raw_imb_free(raw_imb *m) {
    if (m == NULL)
        return;
    if (m->key != NULL) {
        OPENSSL_cleanse(m->key, sizeof(*m->key));
        free(m->key);
    }
    if (m->mgr != NULL)
        free_mb_mgr(m->mgr);
    free(m);
}

/* Its own manager (on the instruction set of the PFE's, pfe_imb_init) and expanded key;
 * NULL when the library cannot run here. */
static inline raw_imb *raw_imb_new(const uint8_t *key, int key_len) {
    IMB_ARCH arch;
    raw_imb *m;
    if (key_len != 16 && key_len != 32)
        return NULL;
    m = (raw_imb *)calloc(1, sizeof(raw_imb));
    if (m == NULL)
        return NULL;
    m->key_len = key_len;
    m->mgr = alloc_mb_mgr(0);
    if (m->mgr == NULL || posix_memalign((void **)&m->key, 64, sizeof(*m->key)) != 0) {
        m->key = NULL;
        raw_imb_free(m);
        return NULL;
    }
    if (pfe_imb_init(m->mgr, &arch) != PFE_IMB_ARCH_OK) {
        raw_imb_free(m);
        return NULL;
    }
    if (key_len == 16)
        IMB_AES128_GCM_PRE(m->mgr, key, m->key);
    else
        IMB_AES256_GCM_PRE(m->mgr, key, m->key);
    return m;
}

/* The key size is fixed per loop, so its branch sits outside the packet loop. The nonces of
 * up to RAW_NONCE_BATCH packets are written in a pass of their own before their seals: a
 * nonce stored just before the call that loads it costs a failed store-to-load forwarding
 * (an 8-byte store read back by a 16-byte load) of about 13 ns per packet at 64 B on AMD
 * Zen, a third of the seal. The PFE's kernels do the same (a pass before the crypto). */
#define RAW_NONCE_BATCH 32
static inline int64_t raw_imb_seal(const raw_imb *m, const raw_pkt *pkts, size_t n,
                                   uint32_t rounds, const uint8_t *salt, uint64_t *counter,
                                   size_t *ok) {
    struct gcm_context_data ctx;
    uint8_t nonces[RAW_NONCE_BATCH][16];
    for (size_t j = 0; j < RAW_NONCE_BATCH; j++)
        memcpy(nonces[j], salt, 4);
    int64_t t0 = raw_now_ns();
    for (uint32_t r = 0; r < rounds; r++) {
        for (size_t base = 0; base < n; base += RAW_NONCE_BATCH) {
            size_t m_ = n - base < RAW_NONCE_BATCH ? n - base : RAW_NONCE_BATCH;
            for (size_t j = 0; j < m_; j++)
                raw_put_counter(nonces[j], ++*counter);
            if (m->key_len == 16) {
                for (size_t j = 0; j < m_; j++) {
                    const raw_pkt *q = &pkts[base + j];
                    IMB_AES128_GCM_ENC(m->mgr, m->key, &ctx, q->data, q->data, q->len, nonces[j],
                                       q->data - 8, 8, q->data + q->len, 16);
                }
            } else {
                for (size_t j = 0; j < m_; j++) {
                    const raw_pkt *q = &pkts[base + j];
                    IMB_AES256_GCM_ENC(m->mgr, m->key, &ctx, q->data, q->data, q->len, nonces[j],
                                       q->data - 8, 8, q->data + q->len, 16);
                }
            }
        }
    }
    int64_t elapsed = raw_now_ns() - t0;
    *ok = (size_t)rounds * n;
    return elapsed;
}

static inline int64_t raw_imb_open(const raw_imb *m, const raw_pkt *pkts, size_t n,
                                   uint32_t rounds, uint8_t *out, size_t *ok) {
    struct gcm_context_data ctx;
    uint8_t tag[16];
    size_t good = 0;
    int64_t t0 = raw_now_ns();
    if (m->key_len == 16) {
        for (uint32_t r = 0; r < rounds; r++)
            for (size_t i = 0; i < n; i++) {
                uint8_t *p = pkts[i].data;
                IMB_AES128_GCM_DEC(m->mgr, m->key, &ctx, out, p, pkts[i].len, pkts[i].nonce,
                                   p - 8, 8, tag, 16);
                good += pfe_icv16_equal(tag, p + pkts[i].len);
            }
    } else {
        for (uint32_t r = 0; r < rounds; r++)
            for (size_t i = 0; i < n; i++) {
                uint8_t *p = pkts[i].data;
                IMB_AES256_GCM_DEC(m->mgr, m->key, &ctx, out, p, pkts[i].len, pkts[i].nonce,
                                   p - 8, 8, tag, 16);
                good += pfe_icv16_equal(tag, p + pkts[i].len);
            }
    }
    int64_t elapsed = raw_now_ns() - t0;
    *ok = good;
    return elapsed;
}

#else  /* built without intel-ipsec-mb */

static const int raw_imb_available = 0;
typedef struct raw_imb { int unused; } raw_imb;
static inline void raw_imb_free(raw_imb *m) { (void)m; }
static inline raw_imb *raw_imb_new(const uint8_t *key, int key_len) {
    (void)key; (void)key_len; return NULL;
}
static inline int64_t raw_imb_seal(const raw_imb *m, const raw_pkt *pkts, size_t n,
                                   uint32_t rounds, const uint8_t *salt, uint64_t *counter,
                                   size_t *ok) {
    (void)m; (void)pkts; (void)n; (void)rounds; (void)salt; (void)counter; *ok = 0; return -1;
}
static inline int64_t raw_imb_open(const raw_imb *m, const raw_pkt *pkts, size_t n,
                                   uint32_t rounds, uint8_t *out, size_t *ok) {
    (void)m; (void)pkts; (void)n; (void)rounds; (void)out; *ok = 0; return -1;
}
#endif

#endif
