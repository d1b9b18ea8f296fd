# cython: language_level=3
"""The crypto limit of each backend: the same AES-GCM calls the kernels make per packet
(nonce, AAD, data, tag), over the same buffers, with no ESP work at all. Benchmarks report the
PFE as a ratio of this loop measured in the same run."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from _pfe_core._openssl cimport (
    EVP_CIPHER_CTX, EVP_CIPHER_CTX_new, EVP_CIPHER_CTX_free, EVP_CIPHER_CTX_ctrl,
    EVP_EncryptInit_ex, EVP_DecryptInit_ex, EVP_aes_128_gcm, EVP_aes_256_gcm,
    EVP_CTRL_AEAD_SET_IVLEN,
)
from _pfe_core.gcm cimport gcm_seal, gcm_open, GCM_NONCE_LEN
from _pfe_core.imb cimport (
    pfe_imb, pfe_gcm_key, pfe_imb_new, pfe_imb_free, pfe_imb_key_new, pfe_imb_key_free,
    pfe_imb_seal, pfe_imb_open,
)
from _pfe_core.wire cimport store64


cdef class RawGcm:
    """One AES-GCM key on one backend, sealing or opening whole bursts of slots."""

    cdef EVP_CIPHER_CTX *ctx
    cdef pfe_imb *imb
    cdef pfe_gcm_key *imb_key
    cdef int key_len
    cdef bint encrypt
    cdef public uint64_t counter
    cdef readonly str backend

    def __cinit__(self, bytes key, bint encrypt=True, str backend="openssl"):
        if len(key) not in (16, 32):
            raise ValueError("AES-GCM key must be 16 or 32 bytes")
        self.encrypt = encrypt
        self.key_len = len(key)
        self.backend = backend
        if backend == "ipsec-mb":
            self.imb = pfe_imb_new()
            if self.imb == NULL:
                raise RuntimeError("the ipsec-mb backend is not available")
            self.imb_key = pfe_imb_key_new(self.imb, <const uint8_t *><const char *>key,
                                           self.key_len)
            if self.imb_key == NULL:
                raise MemoryError()
            return
        if backend != "openssl":
            raise ValueError(f"unknown backend {backend!r}")
        self.ctx = EVP_CIPHER_CTX_new()
        cipher = EVP_aes_128_gcm() if len(key) == 16 else EVP_aes_256_gcm()
        if encrypt:
            EVP_EncryptInit_ex(self.ctx, cipher, NULL, NULL, NULL)
            EVP_CIPHER_CTX_ctrl(self.ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_LEN, NULL)
            EVP_EncryptInit_ex(self.ctx, NULL, NULL, <const unsigned char *>key, NULL)
        else:
            EVP_DecryptInit_ex(self.ctx, cipher, NULL, NULL, NULL)
            EVP_CIPHER_CTX_ctrl(self.ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_LEN, NULL)
            EVP_DecryptInit_ex(self.ctx, NULL, NULL, <const unsigned char *>key, NULL)

    def __dealloc__(self):
        if self.ctx != NULL:
            EVP_CIPHER_CTX_free(self.ctx)
        pfe_imb_key_free(self.imb_key)
        pfe_imb_free(self.imb)

    def run(self, uint8_t[:, ::1] data, uint32_t[::1] offset, uint32_t[::1] length,
            Py_ssize_t n) -> int:
        """Seal (or open) `length[i]` bytes at `offset[i]` of each slot in place, with 8 bytes
        of AAD before them and the 16-byte tag after them. Returns the calls that succeeded
        (for an open: whose tag verified)."""
        cdef Py_ssize_t i, ok = 0
        cdef uint8_t nonce[GCM_NONCE_LEN]
        cdef uint8_t *p
        cdef uint32_t ln
        if n < 0 or n > data.shape[0] or n > offset.shape[0] or n > length.shape[0]:
            raise ValueError("burst does not fit the arrays")
        for i in range(n):
            if offset[i] < 8 or offset[i] + length[i] + 16 > <uint32_t>data.shape[1]:
                raise ValueError("each slot needs 8 bytes before and 16 after the data")
        with nogil:
            nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0x5A
            for i in range(n):
                self.counter += 1
                store64(nonce + 4, self.counter)
                p = &data[i, 0] + offset[i]
                ln = length[i]
                if self.imb != NULL:
                    if self.encrypt:
                        pfe_imb_seal(self.imb, self.imb_key, self.key_len, nonce, p - 8, 8, p,
                                     ln, p + ln)
                        ok += 1
                    elif pfe_imb_open(self.imb, self.imb_key, self.key_len, nonce, p - 8, 8, p,
                                      ln, p + ln) == 1:
                        ok += 1
                elif self.encrypt:
                    if gcm_seal(self.ctx, nonce, p - 8, 8, p, ln, p + ln) == 0:
                        ok += 1
                elif gcm_open(self.ctx, nonce, p - 8, 8, p, ln, p + ln) == 1:
                    ok += 1
        return ok
