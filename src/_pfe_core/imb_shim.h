/* The intel-ipsec-mb AES-GCM backend of the PFE, behind a small interface that also compiles
 * when the library is absent (then pfe_imb_available is 0 and every call fails cleanly).
 * setup.py defines INLINE_IPSEC_HAVE_IPSEC_MB when a probe against intel-ipsec-mb.h and
 * -lIPSec_MB compiles and links. */
#ifndef INLINE_IPSEC_IMB_SHIM_H
#define INLINE_IPSEC_IMB_SHIM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#ifdef INLINE_IPSEC_HAVE_IPSEC_MB
#include <intel-ipsec-mb.h>

static const int pfe_imb_available = 1;

typedef struct pfe_imb {
    IMB_MGR *mgr;
    IMB_ARCH arch;
} pfe_imb;

typedef struct gcm_key_data pfe_gcm_key;

static inline const char *pfe_imb_version(void) { return imb_get_version_str(); }

static inline const char *pfe_imb_arch_name(const pfe_imb *m) {
    switch (m->arch) {
    case IMB_ARCH_SSE: return "sse";
    case IMB_ARCH_AVX: return "avx";
    case IMB_ARCH_AVX2: return "avx2";
    case IMB_ARCH_AVX512: return "avx512";
    default: return "none";
    }
}

/* A manager per PFE: managers are not shareable between threads. NULL when the CPU has no
 * AES-NI or the library fails to initialise. */
static inline pfe_imb *pfe_imb_new(void) {
    pfe_imb *m = (pfe_imb *)calloc(1, sizeof(pfe_imb));
    if (m == NULL)
        return NULL;
    m->mgr = alloc_mb_mgr(0);
    if (m->mgr == NULL) {
        free(m);
        return NULL;
    }
    init_mb_mgr_auto(m->mgr, &m->arch);
    if (imb_get_errno(m->mgr) != 0 || m->arch == IMB_ARCH_NONE || m->arch == IMB_ARCH_NOAESNI) {
        free_mb_mgr(m->mgr);
        free(m);
        return NULL;
    }
    return m;
}

static inline void pfe_imb_free(pfe_imb *m) {
    if (m != NULL) {
        free_mb_mgr(m->mgr);
        free(m);
    }
}

/* Expanded keys and GHASH tables for one SA direction, 64-byte aligned as the library wants. */
static inline pfe_gcm_key *pfe_imb_key_new(pfe_imb *m, const uint8_t *key, int key_len) {
    pfe_gcm_key *k = NULL;
    if (key_len != 16 && key_len != 32)
        return NULL;
    if (posix_memalign((void **)&k, 64, sizeof(pfe_gcm_key)) != 0)
        return NULL;
    if (key_len == 16)
        IMB_AES128_GCM_PRE(m->mgr, key, k);
    else
        IMB_AES256_GCM_PRE(m->mgr, key, k);
    return k;
}

static inline void pfe_imb_key_free(pfe_gcm_key *k) {
    if (k != NULL) {
        OPENSSL_cleanse(k, sizeof(pfe_gcm_key));
        free(k);
    }
}

/* Encrypt in place and write the 16-byte ICV (RFC 4106): the nonce is salt || IV. */
static inline void pfe_imb_seal(const pfe_imb *m, const pfe_gcm_key *k, int key_len,
                                const uint8_t *nonce, const uint8_t *aad, uint64_t aad_len,
                                uint8_t *data, uint64_t len, uint8_t *icv) {
    struct gcm_context_data ctx;
    if (key_len == 16)
        IMB_AES128_GCM_ENC(m->mgr, k, &ctx, data, data, len, nonce, aad, aad_len, icv, 16);
    else
        IMB_AES256_GCM_ENC(m->mgr, k, &ctx, data, data, len, nonce, aad, aad_len, icv, 16);
}

/* Decrypt in place; 1 when the ICV verifies (constant-time compare), else 0. */
static inline int pfe_imb_open(const pfe_imb *m, const pfe_gcm_key *k, int key_len,
                               const uint8_t *nonce, const uint8_t *aad, uint64_t aad_len,
                               uint8_t *data, uint64_t len, const uint8_t *icv) {
    struct gcm_context_data ctx;
    uint8_t tag[16];
    if (key_len == 16)
        IMB_AES128_GCM_DEC(m->mgr, k, &ctx, data, data, len, nonce, aad, aad_len, tag, 16);
    else
        IMB_AES256_GCM_DEC(m->mgr, k, &ctx, data, data, len, nonce, aad, aad_len, tag, 16);
    return CRYPTO_memcmp(tag, icv, 16) == 0;
}

#else  /* built without intel-ipsec-mb */

static const int pfe_imb_available = 0;
typedef struct pfe_imb { int unused; } pfe_imb;
typedef struct pfe_gcm_key { int unused; } pfe_gcm_key;
static inline const char *pfe_imb_version(void) { return ""; }
static inline const char *pfe_imb_arch_name(const pfe_imb *m) { (void)m; return "none"; }
static inline pfe_imb *pfe_imb_new(void) { return NULL; }
static inline void pfe_imb_free(pfe_imb *m) { (void)m; }
static inline pfe_gcm_key *pfe_imb_key_new(pfe_imb *m, const uint8_t *key, int key_len) {
    (void)m; (void)key; (void)key_len; return NULL;
}
static inline void pfe_imb_key_free(pfe_gcm_key *k) { (void)k; }
static inline void pfe_imb_seal(const pfe_imb *m, const pfe_gcm_key *k, int key_len,
                                const uint8_t *nonce, const uint8_t *aad, uint64_t aad_len,
                                uint8_t *data, uint64_t len, uint8_t *icv) {
    (void)m; (void)k; (void)key_len; (void)nonce; (void)aad; (void)aad_len; (void)data;
    (void)len; (void)icv;
}
static inline int pfe_imb_open(const pfe_imb *m, const pfe_gcm_key *k, int key_len,
                               const uint8_t *nonce, const uint8_t *aad, uint64_t aad_len,
                               uint8_t *data, uint64_t len, const uint8_t *icv) {
    (void)m; (void)k; (void)key_len; (void)nonce; (void)aad; (void)aad_len; (void)data;
    (void)len; (void)icv; return -1;
}
#endif

#endif
