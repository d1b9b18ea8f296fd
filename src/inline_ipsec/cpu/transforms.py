"""ESP transforms and integrity algorithms of the CPU path, on the `cryptography` package.

Each transform is built once per SA at install (key schedule, salt, HMAC key) and then only
seals and opens. Sequence numbers are full 64-bit values; with ESN only the low half is on the
wire and the high half enters the authentication (RFC 4303 §2.2.1, §3.3.2.2.1).

  - AES-GCM (RFC 4106): 8-byte IV = the 64-bit sequence number (unique per key, §3.1; the PFE
    does the same, docs/wire-format.md), nonce = salt || IV (§4), AAD = SPI || seq or
    SPI || seq_hi || seq_lo (§5), 16-byte ICV.
  - AES-GMAC (RFC 4543 §3): no encryption; AAD = SPI || seq [|| ...] || IV || payload ||
    padding || pad length || next header, empty GCM plaintext, the tag is the ICV.
  - ChaCha20-Poly1305 (RFC 7634 §2): 32-byte key || 4-byte salt, nonce = salt || IV, IV = seq,
    AAD as RFC 4106 §5.
  - AES-CBC (RFC 3602) and 3DES-CBC (RFC 2451): an unpredictable IV per packet (RFC 3602
    §3), padding to the block size. One CBC context per SA lives as long as the SA: the IV of
    a packet is the encryption of a fresh random block under the running chain,
    IV = E_K(R xor C_prev), R from os.urandom (NIST SP 800-38A Appendix C: the forward cipher
    applied to a nonce), and the packet's blocks follow on the same chain, so no cipher
    context is created per packet. Decryption feeds IV || ciphertext to a long-lived
    decryptor and drops the first block.
  - AES-CTR (RFC 3686): key || 4-byte nonce, counter block = nonce || IV || counter from 1,
    IV = seq (§3, must never repeat for a key); the key stream comes from one long-lived
    AES-ECB context over the counter blocks.
  - NULL (RFC 2410): no IV, no encryption.
  - HMAC-MD5-96 (RFC 2403), HMAC-SHA1-96 (RFC 2404), HMAC-SHA-256-128 / -384-192 / -512-256
    (RFC 4868): ICV = truncated HMAC over SPI || seq || IV || ciphertext, then seq_hi with ESN.
"""
from __future__ import annotations

import hmac
import os
import struct
from typing import Any, Callable, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hmac import HMAC

from ..sa import INTEGRITY_ALGORITHMS, SaSpec

Buffer = Union[bytes, bytearray, memoryview]

_Q = struct.Struct("!Q")
_L = struct.Struct("!L")

#: hash functions of the integrity algorithms (RFC 2403, RFC 2404, RFC 4868).
_DIGESTS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "hmac-md5-96": hashes.MD5,
    "hmac-sha1-96": hashes.SHA1,
    "hmac-sha256-128": hashes.SHA256,
    "hmac-sha384-192": hashes.SHA384,
    "hmac-sha512-256": hashes.SHA512,
}


class Integrity:
    """A truncated HMAC (the ICV of ESP with a non-combined cipher, and of AH). The keyed HMAC
    state is built once; each packet copies it (no key schedule per packet)."""

    __slots__ = ("_h", "icv_len")

    def __init__(self, name: str, key: bytes) -> None:
        self._h = HMAC(bytes(key), _DIGESTS[name]())
        self.icv_len = INTEGRITY_ALGORITHMS[name][1]

    def mac(self, data: Buffer) -> bytes:
        h = self._h.copy()
        h.update(data)
        return h.finalize()[:self.icv_len]


class Transform:
    """What every ESP transform offers. `seal` returns IV || ciphertext || ICV for an ESP
    header `hdr8` (SPI || seq_lo) and a plaintext that already carries the trailer; `open`
    takes the whole ESP packet (SPI .. ICV) and returns the plaintext with its trailer, or None
    when the ICV does not verify."""

    iv_len = 0
    icv_len = 0
    align = 4          # payload || padding || pad length || next header is a multiple of this
    block = 1          # the ciphertext length must be a multiple of this (CBC)

    def seal(self, seq: int, hdr8: bytes, plain: bytes) -> bytes:
        raise NotImplementedError

    def open(self, seq: int, esp: Buffer) -> bytes | None:
        raise NotImplementedError


class AesGcm(Transform):
    """AES-GCM with a 16-byte ICV (RFC 4106)."""

    iv_len = 8
    icv_len = 16

    def __init__(self, keymat: bytes, esn: bool) -> None:
        self.aead: Any = AESGCM(keymat[:-4])
        self.salt = keymat[-4:]
        self.esn = esn

    def aad(self, seq: int, hdr8: Buffer) -> bytes:
        if self.esn:
            return bytes(hdr8[:4]) + _L.pack(seq >> 32) + bytes(hdr8[4:8])
        return bytes(hdr8[:8])

    def seal(self, seq: int, hdr8: bytes, plain: bytes) -> bytes:
        iv = _Q.pack(seq)
        return iv + self.aead.encrypt(self.salt + iv, plain, self.aad(seq, hdr8))

    def open(self, seq: int, esp: Buffer) -> bytes | None:
        try:
            return self.aead.decrypt(self.salt + bytes(esp[8:16]), esp[16:],
                                     self.aad(seq, esp))
        except InvalidTag:
            return None


class AesGmac(AesGcm):
    """AES-GMAC: authentication only (RFC 4543 §3.3: the payload is AAD, plaintext empty)."""

    def seal(self, seq: int, hdr8: bytes, plain: bytes) -> bytes:
        iv = _Q.pack(seq)
        return iv + plain + self.aead.encrypt(self.salt + iv, b"",
                                              self.aad(seq, hdr8) + iv + plain)

    def open(self, seq: int, esp: Buffer) -> bytes | None:
        iv = bytes(esp[8:16])
        payload = bytes(esp[16:-16])
        try:
            self.aead.decrypt(self.salt + iv, esp[-16:], self.aad(seq, esp) + iv + payload)
        except InvalidTag:
            return None
        return payload


class ChaChaPoly(AesGcm):
    """ChaCha20-Poly1305 (RFC 7634): same framing as AES-GCM."""

    def __init__(self, keymat: bytes, esn: bool) -> None:
        self.aead = ChaCha20Poly1305(keymat[:32])
        self.salt = keymat[32:]
        self.esn = esn


class _HmacTransform(Transform):
    """Encryption (or none) followed by an HMAC over SPI || seq || IV || ciphertext
    [|| seq_hi] (RFC 4303 §3.3.2.1; ESN §2.2.1: the high half is appended, not sent)."""

    def __init__(self, integrity: Integrity, esn: bool) -> None:
        self.integ = integrity
        self.icv_len = integrity.icv_len
        self.esn = esn

    def encrypt(self, seq: int, plain: bytes) -> bytes:  # returns IV || ciphertext
        raise NotImplementedError

    def decrypt(self, iv: bytes, ct: bytes) -> bytes:
        raise NotImplementedError

    def seal(self, seq: int, hdr8: bytes, plain: bytes) -> bytes:
        body = self.encrypt(seq, plain)
        data = hdr8 + body
        if self.esn:
            data += _L.pack(seq >> 32)
        return body + self.integ.mac(data)

    def open(self, seq: int, esp: Buffer) -> bytes | None:
        n = len(esp) - self.icv_len
        data = bytes(esp[:n])
        if self.esn:
            data += _L.pack(seq >> 32)
        if not hmac.compare_digest(self.integ.mac(data), bytes(esp[n:])):
            return None
        iv = data[8:8 + self.iv_len]
        return self.decrypt(iv, data[8 + self.iv_len:n])


class CbcHmac(_HmacTransform):
    """AES-CBC (RFC 3602) or 3DES-CBC (RFC 2451) with an HMAC; long-lived CBC contexts, an
    unpredictable IV per packet (module docstring)."""

    def __init__(self, cipher: str, key: bytes, integrity: Integrity, esn: bool) -> None:
        super().__init__(integrity, esn)
        algo = TripleDES(key) if cipher == "3des-cbc" else algorithms.AES(key)
        self.iv_len = self.align = self.block = algo.block_size // 8
        self._enc = Cipher(algo, modes.CBC(os.urandom(self.iv_len))).encryptor()
        self._dec = Cipher(algo, modes.CBC(bytes(self.iv_len))).decryptor()

    def encrypt(self, seq: int, plain: bytes) -> bytes:
        # IV = E_K(R xor C_prev): the chain's next block for a random R, then the packet.
        return self._enc.update(os.urandom(self.iv_len) + plain)

    def decrypt(self, iv: bytes, ct: bytes) -> bytes:
        # The IV block only sets the chain; `ct` is a whole number of blocks (checked).
        return self._dec.update(iv + ct)[self.iv_len:]


class CtrHmac(_HmacTransform):
    """AES-CTR (RFC 3686) with an HMAC; IV = the sequence number."""

    iv_len = 8

    def __init__(self, keymat: bytes, integrity: Integrity, esn: bool) -> None:
        super().__init__(integrity, esn)
        self._ecb = Cipher(algorithms.AES(keymat[:-4]), modes.ECB()).encryptor()
        self.nonce = keymat[-4:]

    def _xor(self, iv: bytes, data: bytes) -> bytes:
        # Counter blocks nonce || IV || 1, 2, ... built as one integer sum (no carry: the
        # repeated prefix has zero low words), encrypted in one ECB call, then one XOR.
        n = len(data)
        blocks = (n + 15) >> 4
        counters = (int.from_bytes((self.nonce + iv + _ZERO4) * blocks, "big")
                    + int.from_bytes(_COUNTERS[:16 * blocks], "big"))
        stream = self._ecb.update(counters.to_bytes(16 * blocks, "big"))
        return (int.from_bytes(data, "big") ^ int.from_bytes(stream[:n], "big")).to_bytes(
            n, "big")

    def encrypt(self, seq: int, plain: bytes) -> bytes:
        iv = _Q.pack(seq)
        return iv + self._xor(iv, plain)

    def decrypt(self, iv: bytes, ct: bytes) -> bytes:
        return self._xor(iv, ct)


#: RFC 3686 §4 block counter values 1, 2, ... in the low word of 16-byte blocks (a packet is
#: below 2^16 bytes: at most 4096 blocks)
_COUNTERS = memoryview(b"".join(bytes(12) + k.to_bytes(4, "big") for k in range(1, 4098)))
_ZERO4 = bytes(4)


class NullHmac(_HmacTransform):
    """NULL encryption (RFC 2410) with an HMAC."""

    def encrypt(self, seq: int, plain: bytes) -> bytes:
        return plain

    def decrypt(self, iv: bytes, ct: bytes) -> bytes:
        return ct


def make_transform(spec: SaSpec) -> Transform:
    """The ESP transform of an SA, keyed once (RFC 4303 §3.2)."""
    c = spec.cipher
    if c.startswith("aes-gcm"):
        return AesGcm(spec.key, spec.esn)
    if c.startswith("aes-gmac"):
        return AesGmac(spec.key, spec.esn)
    if c == "chacha20-poly1305":
        return ChaChaPoly(spec.key, spec.esn)
    if spec.integrity is None:
        raise ValueError(f"{c} needs an integrity algorithm")
    integ = Integrity(spec.integrity, spec.integrity_key)
    if c.startswith("aes-cbc") or c == "3des-cbc":
        return CbcHmac(c, spec.key, integ, spec.esn)
    if c.startswith("aes-ctr"):
        return CtrHmac(spec.key, integ, spec.esn)
    if c == "null":
        return NullHmac(integ, spec.esn)
    raise ValueError(f"unknown cipher {c}")
