# AES-GCM for ESP (RFC 4106) over one EVP_CIPHER_CTX per SA direction. The key schedule is set
# once when the SA is installed; per packet only the nonce changes (EVP_*Init_ex with a NULL
# cipher and key keeps the key), which saves the AES key expansion on every packet.
from libc.stdint cimport uint8_t
from _pfe_core._openssl cimport (
    EVP_CIPHER_CTX, EVP_EncryptInit_ex, EVP_EncryptUpdate, EVP_EncryptFinal_ex,
    EVP_DecryptInit_ex, EVP_DecryptUpdate, EVP_DecryptFinal_ex, EVP_CIPHER_CTX_ctrl,
    EVP_CTRL_AEAD_GET_TAG, EVP_CTRL_AEAD_SET_TAG, ERR_clear_error, EVP_CTRL_GCM_SET_IV_FIXED,
    EVP_CTRL_GCM_IV_GEN, EVP_CTRL_GCM_SET_IV_INV,
)
from libc.string cimport memcmp

cdef enum:
    GCM_ICV_LEN = 16
    GCM_IV_LEN = 8
    GCM_SALT_LEN = 4
    GCM_NONCE_LEN = 12


cdef inline int _seal_keyed(EVP_CIPHER_CTX *ctx, const uint8_t *aad, int aad_len, uint8_t *data,
                            int data_len, uint8_t *icv) noexcept nogil:
    """The sealing after the nonce is set: AAD, data in place, the 16-byte ICV. 0 or -1."""
    cdef int outl
    if EVP_EncryptUpdate(ctx, NULL, &outl, aad, aad_len) != 1:
        ERR_clear_error()
        return -1
    if data_len > 0 and EVP_EncryptUpdate(ctx, data, &outl, data, data_len) != 1:
        ERR_clear_error()
        return -1
    # GCM writes no bytes in Final; the ICV is fetched separately.
    if EVP_EncryptFinal_ex(ctx, icv, &outl) != 1:
        ERR_clear_error()
        return -1
    if EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, GCM_ICV_LEN, icv) != 1:
        ERR_clear_error()
        return -1
    return 0


cdef inline int gcm_seal(EVP_CIPHER_CTX *ctx, const uint8_t *nonce, const uint8_t *aad,
                         int aad_len, uint8_t *data, int data_len, uint8_t *icv) noexcept nogil:
    """Encrypt `data` in place and write the 16-byte ICV. 0 on success, -1 on a library error."""
    if EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1:
        ERR_clear_error()
        return -1
    return _seal_keyed(ctx, aad, aad_len, data, data_len, icv)


cdef inline int gcm_open(EVP_CIPHER_CTX *ctx, const uint8_t *nonce, const uint8_t *aad,
                         int aad_len, uint8_t *data, int data_len, uint8_t *icv) noexcept nogil:
    """Decrypt `data` in place and verify the ICV: 1 verified, 0 ICV mismatch, -1 library error.

    On a mismatch `data` holds unauthenticated plaintext; the caller must not use it."""
    cdef int outl
    if EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1:
        ERR_clear_error()
        return -1
    if EVP_DecryptUpdate(ctx, NULL, &outl, aad, aad_len) != 1:
        ERR_clear_error()
        return -1
    if data_len > 0 and EVP_DecryptUpdate(ctx, data, &outl, data, data_len) != 1:
        ERR_clear_error()
        return -1
    if EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, GCM_ICV_LEN, icv) != 1:
        ERR_clear_error()
        return -1
    if EVP_DecryptFinal_ex(ctx, data + data_len, &outl) != 1:
        ERR_clear_error()
        return 0
    return 1


# The PFE's own per-packet calls (RFC 4106 §3.1: the nonce is a fixed 4-byte salt and an
# 8-byte IV that never repeats). The context holds salt || next IV (`gcm_set_next_iv`, at
# install and whenever the sequence number is set), and on encrypt generates the IV itself
# (EVP_CTRL_GCM_IV_GEN: copy the invocation field out, increment it), so a packet costs no
# re-initialisation of the cipher; on decrypt only the IV from the wire goes in
# (EVP_CTRL_GCM_SET_IV_INV, the salt being fixed at install).

cdef inline int gcm_set_next_iv(EVP_CIPHER_CTX *ctx, const uint8_t *nonce) noexcept nogil:
    """Outbound: the next packet's nonce is `nonce` (salt || IV). 0, or -1 on an error."""
    if EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, -1, <void *>nonce) != 1:
        ERR_clear_error()
        return -1
    return 0


cdef inline int gcm_set_salt(EVP_CIPHER_CTX *ctx, const uint8_t *salt) noexcept nogil:
    """Inbound: fix the salt; each packet then sets only its IV. 0, or -1 on an error."""
    if EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, GCM_SALT_LEN, <void *>salt) != 1:
        ERR_clear_error()
        return -1
    return 0


cdef inline int gcm_seal_next(EVP_CIPHER_CTX *ctx, const uint8_t *nonce, const uint8_t *aad,
                              int aad_len, uint8_t *data, int data_len,
                              uint8_t *icv) noexcept nogil:
    """`gcm_seal` with the context's generated IV, which must be the IV of `nonce` (the
    sequence number): if it is not (the context was never told of a new sequence number), it
    is set to it first, so the IV on the wire is always the nonce's. 0, or -1."""
    cdef uint8_t iv[GCM_IV_LEN]
    if EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_IV_GEN, GCM_IV_LEN, iv) != 1 \
            or memcmp(iv, nonce + GCM_SALT_LEN, GCM_IV_LEN) != 0:
        ERR_clear_error()
        if gcm_set_next_iv(ctx, nonce) != 0 \
                or EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_IV_GEN, GCM_IV_LEN, iv) != 1:
            ERR_clear_error()
            return -1
    return _seal_keyed(ctx, aad, aad_len, data, data_len, icv)


cdef inline int gcm_open_wire(EVP_CIPHER_CTX *ctx, const uint8_t *iv, const uint8_t *aad,
                              int aad_len, uint8_t *data, int data_len,
                              uint8_t *icv) noexcept nogil:
    """`gcm_open` with the fixed salt and the 8-byte IV from the wire: 1 verified, 0 ICV
    mismatch, -1 library error."""
    cdef int outl
    if EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_INV, GCM_IV_LEN, <void *>iv) != 1:
        ERR_clear_error()
        return -1
    if EVP_DecryptUpdate(ctx, NULL, &outl, aad, aad_len) != 1:
        ERR_clear_error()
        return -1
    if data_len > 0 and EVP_DecryptUpdate(ctx, data, &outl, data, data_len) != 1:
        ERR_clear_error()
        return -1
    if EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, GCM_ICV_LEN, icv) != 1:
        ERR_clear_error()
        return -1
    if EVP_DecryptFinal_ex(ctx, data + data_len, &outl) != 1:
        ERR_clear_error()
        return 0
    return 1
