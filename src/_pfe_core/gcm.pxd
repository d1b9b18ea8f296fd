# AES-GCM for ESP (RFC 4106) over one EVP_CIPHER_CTX per SA direction. The key schedule is set
# once when the SA is installed; per packet only the nonce changes (EVP_*Init_ex with a NULL
# cipher and key keeps the key), which saves the AES key expansion on every packet.
from libc.stdint cimport uint8_t
from _pfe_core._openssl cimport (
    EVP_CIPHER_CTX, EVP_EncryptInit_ex, EVP_EncryptUpdate, EVP_EncryptFinal_ex,
    EVP_DecryptInit_ex, EVP_DecryptUpdate, EVP_DecryptFinal_ex, EVP_CIPHER_CTX_ctrl,
    EVP_CTRL_AEAD_GET_TAG, EVP_CTRL_AEAD_SET_TAG, ERR_clear_error,
)

cdef enum:
    GCM_ICV_LEN = 16
    GCM_IV_LEN = 8
    GCM_SALT_LEN = 4
    GCM_NONCE_LEN = 12


cdef inline int gcm_seal(EVP_CIPHER_CTX *ctx, const uint8_t *nonce, const uint8_t *aad,
                         int aad_len, uint8_t *data, int data_len, uint8_t *icv) noexcept nogil:
    """Encrypt `data` in place and write the 16-byte ICV. 0 on success, -1 on a library error."""
    cdef int outl
    if EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1:
        ERR_clear_error()
        return -1
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
