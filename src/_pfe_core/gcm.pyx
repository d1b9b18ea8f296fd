# cython: language_level=3
"""The PFE's AES-GCM ESP layer on its own (RFC 4106), for published vectors and tools.

`esp_open` runs the very `gcm_open` the decrypt kernel runs, on one ESP packet of any
mode (tunnel or transport), and returns the decrypted payload with its trailer."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from _pfe_core._openssl cimport (
    EVP_CIPHER_CTX, EVP_CIPHER_CTX_new, EVP_CIPHER_CTX_free, EVP_CIPHER_CTX_ctrl,
    EVP_DecryptInit_ex, EVP_EncryptInit_ex, EVP_aes_128_gcm, EVP_aes_256_gcm, EVP_CTRL_AEAD_SET_IVLEN,
)
from _pfe_core.wire cimport store32


class GcmAuthError(Exception):
    """The ICV did not verify."""


def esp_open(bytes key_material, bytes esp_packet, esn_high=None) -> bytes:
    """Open SPI || seq || IV || ciphertext || ICV with key || salt (20 or 36 bytes).

    With `esn_high` (the upper 32 bits of a 64-bit ESN) the AAD is SPI || seq_hi || seq_lo
    (RFC 4106 §5). Returns the plaintext including padding, pad length and next header."""
    cdef bytearray buf = bytearray(esp_packet)
    cdef uint8_t *p
    cdef uint8_t nonce[12]
    cdef uint8_t aad[12]
    cdef int aad_len, rc
    cdef Py_ssize_t ct_len
    cdef EVP_CIPHER_CTX *ctx
    if len(key_material) not in (20, 36):
        raise ValueError("AES-GCM key material is a 16- or 32-byte key plus a 4-byte salt")
    if len(buf) < 16 + 16:
        raise ValueError("an ESP packet with AES-GCM is at least 32 bytes")
    p = buf
    ct_len = len(buf) - 32
    cdef bytes salt = key_material[len(key_material) - 4:]
    cdef bytes key = key_material[:len(key_material) - 4]
    memcpy(nonce, <const char *>salt, 4)
    memcpy(nonce + 4, p + 8, 8)
    if esn_high is None:
        memcpy(aad, p, 8)
        aad_len = 8
    else:
        memcpy(aad, p, 4)
        store32(aad + 4, <uint32_t>esn_high)
        memcpy(aad + 8, p + 4, 4)
        aad_len = 12
    ctx = EVP_CIPHER_CTX_new()
    if ctx == NULL:
        raise MemoryError()
    try:
        cipher = EVP_aes_128_gcm() if len(key) == 16 else EVP_aes_256_gcm()
        if (EVP_DecryptInit_ex(ctx, cipher, NULL, NULL, NULL) != 1
                or EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1
                or EVP_DecryptInit_ex(ctx, NULL, NULL, <const unsigned char *>key, NULL) != 1):
            raise RuntimeError("OpenSSL refused to set up AES-GCM")
        rc = gcm_open(ctx, nonce, aad, aad_len, p + 16, <int>ct_len, p + 16 + ct_len)
    finally:
        EVP_CIPHER_CTX_free(ctx)
    if rc == 0:
        raise GcmAuthError("ICV verification failed")
    if rc < 0:
        raise RuntimeError("OpenSSL failed while decrypting")
    return bytes(buf[16:16 + ct_len])


def seal(bytes key, bytes nonce, bytes aad, bytes plaintext) -> bytes:
    """`gcm_seal` on its own (the kernels' exact calls): ciphertext || 16-byte tag.
    For the GCM specification's known answers."""
    cdef bytearray buf = bytearray(plaintext) + bytearray(16)
    cdef uint8_t *p = buf
    cdef EVP_CIPHER_CTX *ctx
    cdef int rc
    if len(key) not in (16, 32) or len(nonce) != 12:
        raise ValueError("AES-GCM here takes a 16- or 32-byte key and a 12-byte nonce")
    ctx = EVP_CIPHER_CTX_new()
    if ctx == NULL:
        raise MemoryError()
    try:
        cipher = EVP_aes_128_gcm() if len(key) == 16 else EVP_aes_256_gcm()
        if (EVP_EncryptInit_ex(ctx, cipher, NULL, NULL, NULL) != 1
                or EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1
                or EVP_EncryptInit_ex(ctx, NULL, NULL, <const unsigned char *>key, NULL) != 1):
            raise RuntimeError("OpenSSL refused to set up AES-GCM")
        rc = gcm_seal(ctx, <const uint8_t *><const char *>nonce, <const uint8_t *><const char *>aad,
                      <int>len(aad), p, <int>len(plaintext), p + len(plaintext))
    finally:
        EVP_CIPHER_CTX_free(ctx)
    if rc != 0:
        raise RuntimeError("OpenSSL failed while encrypting")
    return bytes(buf)
