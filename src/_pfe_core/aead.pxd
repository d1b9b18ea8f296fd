# AES-GCM seal/open for one SA on the table's crypto backend. The backend is fixed per table
# (per PFE), so the branch goes the same way for every packet.
from libc.stdint cimport uint8_t
from _pfe_core.sa cimport sa_t, sa_table_t, BACKEND_IPSEC_MB
from _pfe_core.gcm cimport gcm_seal_next, gcm_open_wire, GCM_SALT_LEN
from _pfe_core.imb cimport pfe_imb_seal, pfe_imb_open


cdef inline int sa_seal(const sa_table_t *t, sa_t *sa, const uint8_t *nonce, const uint8_t *aad,
                        int aad_len, uint8_t *data, int data_len, uint8_t *icv) noexcept nogil:
    """Encrypt in place and write the ICV: 0, or -1 on a library error. `nonce` is salt ||
    IV; OpenSSL generates that IV itself (gcm_seal_next)."""
    if t.backend == BACKEND_IPSEC_MB:
        pfe_imb_seal(t.imb, sa.imb_key, sa.key_len, nonce, aad, aad_len, data, data_len, icv)
        return 0
    return gcm_seal_next(sa.ctx, nonce, aad, aad_len, data, data_len, icv)


cdef inline int sa_open(const sa_table_t *t, sa_t *sa, const uint8_t *nonce, const uint8_t *aad,
                        int aad_len, uint8_t *data, int data_len, uint8_t *icv) noexcept nogil:
    """Decrypt in place: 1 ICV verified, 0 mismatch, -1 library error."""
    if t.backend == BACKEND_IPSEC_MB:
        return pfe_imb_open(t.imb, sa.imb_key, sa.key_len, nonce, aad, aad_len, data, data_len,
                            icv)
    return gcm_open_wire(sa.ctx, nonce + GCM_SALT_LEN, aad, aad_len, data, data_len, icv)
