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

/* The instruction set of every manager in the process. The library picks the widest the CPU
 * has; PFE_IMB_ARCH_ENV (sse, avx, avx2, avx512; "auto" or unset: the library's choice) pins
 * one, so that a figure can be measured on the code path a CPU without AVX-512 would run.
 * Read at every manager's creation, so that the PFE's managers and the raw loop's agree.
 * Returns PFE_IMB_ARCH_OK, or why the request cannot be met. */
#define PFE_IMB_ARCH_ENV "INLINE_IPSEC_IPSEC_MB_ARCH"
enum { PFE_IMB_ARCH_OK = 0, PFE_IMB_ARCH_UNKNOWN = 1, PFE_IMB_ARCH_UNSUPPORTED = 2,
       PFE_IMB_ARCH_FAILED = 3 };

static inline int pfe_imb_init(IMB_MGR *mgr, IMB_ARCH *arch) {
    const char *want = getenv(PFE_IMB_ARCH_ENV);
    uint64_t need;
    if (want == NULL || want[0] == '\0' || strcmp(want, "auto") == 0) {
        init_mb_mgr_auto(mgr, arch);
    } else {
        if (strcmp(want, "sse") == 0) {
            need = IMB_CPUFLAGS_SSE;
            *arch = IMB_ARCH_SSE;
        } else if (strcmp(want, "avx") == 0) {
            need = IMB_CPUFLAGS_AVX;
            *arch = IMB_ARCH_AVX;
        } else if (strcmp(want, "avx2") == 0) {
            need = IMB_CPUFLAGS_AVX2;
            *arch = IMB_ARCH_AVX2;
        } else if (strcmp(want, "avx512") == 0) {
            need = IMB_CPUFLAGS_AVX512;
            *arch = IMB_ARCH_AVX512;
        } else {
            return PFE_IMB_ARCH_UNKNOWN;
        }
        /* alloc_mb_mgr detected the CPU's features: an unsupported set would fault. */
        if ((mgr->features & need) != need)
            return PFE_IMB_ARCH_UNSUPPORTED;
        switch (*arch) {
        case IMB_ARCH_SSE: init_mb_mgr_sse(mgr); break;
        case IMB_ARCH_AVX: init_mb_mgr_avx(mgr); break;
        case IMB_ARCH_AVX2: init_mb_mgr_avx2(mgr); break;
        default: init_mb_mgr_avx512(mgr); break;
        }
    }
    if (imb_get_errno(mgr) != 0 || *arch == IMB_ARCH_NONE || *arch == IMB_ARCH_NOAESNI)
        return PFE_IMB_ARCH_FAILED;
    return PFE_IMB_ARCH_OK;
}

/* Whether a manager can be made here as PFE_IMB_ARCH_ENV asks (PFE_IMB_ARCH_OK or why not),
 * for a clear error before any SA is installed. */
static inline int pfe_imb_arch_status(void) {
    IMB_ARCH arch;
    int rc;
    IMB_MGR *mgr = alloc_mb_mgr(0);
    if (mgr == NULL)
        return PFE_IMB_ARCH_FAILED;
    rc = pfe_imb_init(mgr, &arch);
    free_mb_mgr(mgr);
    return rc;
}

/* A manager per PFE: managers are not shareable between threads. NULL when the CPU has no
 * AES-NI, the library fails to initialise, or PFE_IMB_ARCH_ENV asks for what cannot run. */
static inline pfe_imb *pfe_imb_new(void) {
    pfe_imb *m = (pfe_imb *)calloc(1, sizeof(pfe_imb));
    if (m == NULL)
        return NULL;
    m->mgr = alloc_mb_mgr(0);
    if (m->mgr == NULL) {
        free(m);
        return NULL;
    }
    if (pfe_imb_init(m->mgr, &m->arch) != PFE_IMB_ARCH_OK) {
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

/* Whether two 16-byte ICVs are equal, in constant time: both are read whole and combined
 * without a branch, so the time says nothing about where they differ (as CRYPTO_memcmp,
 * without its call). */
static inline int pfe_icv16_equal(const uint8_t *a, const uint8_t *b) {
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
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
    return pfe_icv16_equal(tag, icv);
}

#else  /* built without intel-ipsec-mb */

static const int pfe_imb_available = 0;
#define PFE_IMB_ARCH_ENV "INLINE_IPSEC_IPSEC_MB_ARCH"
enum { PFE_IMB_ARCH_OK = 0, PFE_IMB_ARCH_UNKNOWN = 1, PFE_IMB_ARCH_UNSUPPORTED = 2,
       PFE_IMB_ARCH_FAILED = 3 };
static inline int pfe_imb_arch_status(void) { return PFE_IMB_ARCH_FAILED; }
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
