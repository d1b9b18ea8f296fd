"""IKEv1 key derivation (RFC 2409 §5, §5.5 and Appendix B), pure functions: bytes in, bytes out.

The PRF is HMAC with the negotiated hash (RFC 2409 §4: "the HMAC version of the negotiated
hash algorithm is used as a pseudo-random function"), from the standard library's OpenSSL
binding (`hmac.digest`), which is the fastest HMAC Python has for these short inputs.

    SKEYID   = prf(pre-shared-key, Ni_b | Nr_b)              (pre-shared keys)
             = prf(Ni_b | Nr_b, g^xy)                        (signatures)
    SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
    SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
    SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
    HASH_I   = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
    HASH_R   = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
    KEYMAT   = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b), expanded (§5.5)

With ECDSA signatures (RFC 4754 §5) HASH_I/HASH_R use HMAC with the hash of the curve
(SHA-256 for P-256, SHA-384 for P-384, SHA-512 for P-521) whatever hash was negotiated, as
strongSwan's keymat_v1.c does; everything else keeps the negotiated hash.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

#: Phase 1 hash names (RFC 2409 Appendix A) -> hashlib / hmac.digest names.
HASHES = ("md5", "sha1", "sha256", "sha384", "sha512")


def prf(hash_name: str, key: bytes, data: bytes) -> bytes:
    """prf(key, data): HMAC (RFC 2104) with `hash_name`."""
    return hmac.digest(key, data, hash_name)


def digest(hash_name: str, data: bytes) -> bytes:
    """The plain hash, as used for IVs (RFC 2409 Appendix B) and NAT-D (RFC 3947 §3.2)."""
    return hashlib.new(hash_name, data).digest()


def skeyid_psk(hash_name: str, psk: bytes, nonce_i: bytes, nonce_r: bytes) -> bytes:
    """SKEYID for pre-shared key authentication (RFC 2409 §5)."""
    return prf(hash_name, psk, nonce_i + nonce_r)


def skeyid_signature(hash_name: str, nonce_i: bytes, nonce_r: bytes, g_xy: bytes) -> bytes:
    """SKEYID for signature authentication (RFC 2409 §5, RFC 4754 §5)."""
    return prf(hash_name, nonce_i + nonce_r, g_xy)


@dataclass(frozen=True)
class Phase1Keys:
    """The keying material of an ISAKMP SA (RFC 2409 §5); `enc_key` is SKEYID_e expanded or
    truncated to the cipher's key length (Appendix B)."""

    skeyid: bytes
    skeyid_d: bytes
    skeyid_a: bytes
    skeyid_e: bytes
    enc_key: bytes


def expand_key(hash_name: str, skeyid_e: bytes, key_len: int) -> bytes:
    """RFC 2409 Appendix B: the first `key_len` bytes of SKEYID_e, or, if it is too short,
    Ka = K1 | K2 | K3 ... with K1 = prf(SKEYID_e, 0), K2 = prf(SKEYID_e, K1), ..."""
    if len(skeyid_e) >= key_len:
        return skeyid_e[:key_len]
    out = b""
    block = b"\x00"
    while len(out) < key_len:
        block = prf(hash_name, skeyid_e, block)
        out += block
    return out[:key_len]


def derive_phase1(hash_name: str, skeyid: bytes, g_xy: bytes, cky_i: bytes, cky_r: bytes,
                  key_len: int) -> Phase1Keys:
    """SKEYID_d, SKEYID_a, SKEYID_e and the encryption key (RFC 2409 §5, Appendix B)."""
    tail = cky_i + cky_r
    d = prf(hash_name, skeyid, g_xy + tail + b"\x00")
    a = prf(hash_name, skeyid, d + g_xy + tail + b"\x01")
    e = prf(hash_name, skeyid, a + g_xy + tail + b"\x02")
    return Phase1Keys(skeyid, d, a, e, expand_key(hash_name, e, key_len))


def hash_i(hash_name: str, skeyid: bytes, g_xi: bytes, g_xr: bytes, cky_i: bytes,
           cky_r: bytes, sai_b: bytes, idii_b: bytes) -> bytes:
    """HASH_I (RFC 2409 §5): what the initiator proves, or signs with signatures."""
    return prf(hash_name, skeyid, g_xi + g_xr + cky_i + cky_r + sai_b + idii_b)


def hash_r(hash_name: str, skeyid: bytes, g_xi: bytes, g_xr: bytes, cky_i: bytes,
           cky_r: bytes, sai_b: bytes, idir_b: bytes) -> bytes:
    """HASH_R (RFC 2409 §5)."""
    return prf(hash_name, skeyid, g_xr + g_xi + cky_r + cky_i + sai_b + idir_b)


def phase1_iv(hash_name: str, g_xi: bytes, g_xr: bytes, block: int) -> bytes:
    """The IV of the first encrypted Phase 1 message: hash(g^xi | g^xr), truncated to the
    cipher's block size (RFC 2409 Appendix B)."""
    return digest(hash_name, g_xi + g_xr)[:block]


def phase2_iv(hash_name: str, last_phase1_block: bytes, message_id: int, block: int) -> bytes:
    """The IV of the first message of a Quick Mode or Informational exchange:
    hash(last Phase 1 CBC output block | M-ID), truncated (RFC 2409 Appendix B)."""
    return digest(hash_name, last_phase1_block + message_id.to_bytes(4, "big"))[:block]


def qm_hash1(hash_name: str, skeyid_a: bytes, message_id: int, after_hash: bytes) -> bytes:
    """HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr ]) (RFC 2409 §5.5):
    M-ID and every payload after HASH, as sent. Also the HASH of Informational exchanges
    (§5.7: prf(SKEYID_a, M-ID | N/D))."""
    return prf(hash_name, skeyid_a, message_id.to_bytes(4, "big") + after_hash)


def qm_hash2(hash_name: str, skeyid_a: bytes, message_id: int, nonce_i: bytes,
             after_hash: bytes) -> bytes:
    """HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr ]) (§5.5)."""
    return prf(hash_name, skeyid_a, message_id.to_bytes(4, "big") + nonce_i + after_hash)


def qm_hash3(hash_name: str, skeyid_a: bytes, message_id: int, nonce_i: bytes,
             nonce_r: bytes) -> bytes:
    """HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b) (§5.5)."""
    return prf(hash_name, skeyid_a, b"\x00" + message_id.to_bytes(4, "big") + nonce_i + nonce_r)


def keymat(hash_name: str, skeyid_d: bytes, protocol: int, spi: int, nonce_i: bytes,
           nonce_r: bytes, length: int, g_qm: bytes = b"") -> bytes:
    """KEYMAT of one direction of an IPsec SA (RFC 2409 §5.5): `spi` is the SPI of the SA
    (the receiver's choice), `g_qm` the Quick Mode DH secret with PFS. Expanded to `length`
    bytes as K1 = prf(SKEYID_d, seed), K2 = prf(SKEYID_d, K1 | seed), ..."""
    seed = g_qm + bytes([protocol]) + spi.to_bytes(4, "big") + nonce_i + nonce_r
    out = b""
    prev = b""
    while len(out) < length:
        prev = prf(hash_name, skeyid_d, prev + seed)
        out += prev
    return out[:length]
