# intel-ipsec-mb AES-GCM (the second crypto backend of the PFE), through imb_shim.h, which
# compiles with or without the library (`pfe_imb_available`).
from libc.stdint cimport uint8_t, uint64_t

cdef extern from "imb_shim.h" nogil:
    const int pfe_imb_available
    const char *PFE_IMB_ARCH_ENV
    enum:
        PFE_IMB_ARCH_OK
        PFE_IMB_ARCH_UNKNOWN
        PFE_IMB_ARCH_UNSUPPORTED
        PFE_IMB_ARCH_FAILED
    int pfe_imb_arch_status()
    ctypedef struct pfe_imb:
        pass
    ctypedef struct pfe_gcm_key:
        pass
    const char *pfe_imb_version()
    const char *pfe_imb_arch_name(const pfe_imb *m)
    pfe_imb *pfe_imb_new()
    void pfe_imb_free(pfe_imb *m)
    pfe_gcm_key *pfe_imb_key_new(pfe_imb *m, const uint8_t *key, int key_len)
    void pfe_imb_key_free(pfe_gcm_key *k)
    void pfe_imb_seal(const pfe_imb *m, const pfe_gcm_key *k, int key_len, const uint8_t *nonce,
                      const uint8_t *aad, uint64_t aad_len, uint8_t *data, uint64_t len,
                      uint8_t *icv)
    int pfe_imb_open(const pfe_imb *m, const pfe_gcm_key *k, int key_len, const uint8_t *nonce,
                     const uint8_t *aad, uint64_t aad_len, uint8_t *data, uint64_t len,
                     const uint8_t *icv)
