"""Key derivation for IKEv2 (RFC 7296 §2.13-§2.18) and PPK mixing (RFC 8784 §3).

All functions are pure: bytes in, bytes out. HMAC comes from `cryptography`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hmac import digest as _hmac_digest

from cryptography.hazmat.primitives import hashes

from .constants import NotifyType, PrfId
from .errors import RemoteIkeError

_PRF_HASH: dict[PrfId, Callable[[], hashes.HashAlgorithm]] = {
    PrfId.PRF_HMAC_SHA1: hashes.SHA1,
    PrfId.PRF_HMAC_SHA2_256: hashes.SHA256,
    PrfId.PRF_HMAC_SHA2_384: hashes.SHA384,
    PrfId.PRF_HMAC_SHA2_512: hashes.SHA512,
}


def prf_hash(prf_id: int) -> hashes.HashAlgorithm:
    try:
        return _PRF_HASH[PrfId(prf_id)]()
    except (KeyError, ValueError):
        raise RemoteIkeError(f"unsupported PRF {prf_id}", NotifyType.NO_PROPOSAL_CHOSEN) from None


#: the PRFs' hashes by OpenSSL name, for the one-shot HMAC (`hmac.digest`)
_PRF_DIGEST = {PrfId.PRF_HMAC_SHA1: "sha1", PrfId.PRF_HMAC_SHA2_256: "sha256",
               PrfId.PRF_HMAC_SHA2_384: "sha384", PrfId.PRF_HMAC_SHA2_512: "sha512"}


def prf(prf_id: int, key: bytes, data: bytes) -> bytes:
    """prf(K, S) of RFC 7296 §2.13 (HMAC with the negotiated hash, RFC 2104 / RFC 4868),
    by OpenSSL's one-shot HMAC: key derivation calls it some thirty times per IKE SA."""
    name = _PRF_DIGEST.get(prf_id)       # type: ignore[call-overload]
    if name is None:
        prf_hash(prf_id)                 # raises the typed error for an unknown PRF
        raise RemoteIkeError(f"unsupported PRF {prf_id}", NotifyType.NO_PROPOSAL_CHOSEN)
    return _hmac_digest(key, data, name)


def prf_len(prf_id: int) -> int:
    """Output length of the PRF; also the length of SK_d, SK_pi, SK_pr (§2.14)."""
    return prf_hash(prf_id).digest_size


def prf_plus(prf_id: int, key: bytes, seed: bytes, length: int) -> bytes:
    """prf+ (RFC 7296 §2.13): T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), n <= 255."""
    out = bytearray()
    t = b""
    n = 1
    while len(out) < length:
        if n > 255:
            raise ValueError("prf+ cannot produce more than 255 blocks")
        t = prf(prf_id, key, t + seed + bytes([n]))
        out += t
        n += 1
    return bytes(out[:length])


@dataclass(frozen=True)
class IkeKeys:
    """The seven IKE SA keys of RFC 7296 §2.14 (SK_e* include the GCM salt, RFC 5282 §7.1)."""

    sk_d: bytes
    sk_ai: bytes
    sk_ar: bytes
    sk_ei: bytes
    sk_er: bytes
    sk_pi: bytes
    sk_pr: bytes


def skeyseed(prf_id: int, nonce_i: bytes, nonce_r: bytes, g_ir: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir) (§2.14). For HMAC PRFs the whole nonce pair is the key."""
    return prf(prf_id, nonce_i + nonce_r, g_ir)


def skeyseed_rekey(prf_id: int, sk_d_old: bytes, g_ir: bytes, nonce_i: bytes,
                   nonce_r: bytes) -> bytes:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) for an IKE SA rekey (§2.18)."""
    return prf(prf_id, sk_d_old, g_ir + nonce_i + nonce_r)


def derive_ike_keys(prf_id: int, seed: bytes, nonce_i: bytes, nonce_r: bytes, spi_i: bytes,
                    spi_r: bytes, encr_key_len: int, integ_key_len: int) -> IkeKeys:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} =
    prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)  (§2.14)."""
    plen = prf_len(prf_id)
    sizes = [plen, integ_key_len, integ_key_len, encr_key_len, encr_key_len, plen, plen]
    stream = prf_plus(prf_id, seed, nonce_i + nonce_r + spi_i + spi_r, sum(sizes))
    parts = []
    pos = 0
    for size in sizes:
        parts.append(stream[pos:pos + size])
        pos += size
    return IkeKeys(*parts)


@dataclass(frozen=True)
class ChildKeys:
    """KEYMAT split per §2.17: initiator-to-responder keys first, then the other direction."""

    encr_i: bytes
    integ_i: bytes
    encr_r: bytes
    integ_r: bytes


def child_keymat(prf_id: int, sk_d: bytes, nonce_i: bytes, nonce_r: bytes, encr_key_len: int,
                 integ_key_len: int, g_ir: bytes = b"") -> ChildKeys:
    """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (§2.17). `nonce_*` are those of the
    exchange that created the child SA (IKE_SA_INIT for the first one)."""
    total = 2 * (encr_key_len + integ_key_len)
    km = prf_plus(prf_id, sk_d, g_ir + nonce_i + nonce_r, total)
    e, a = encr_key_len, integ_key_len
    return ChildKeys(km[:e], km[e:e + a], km[e + a:2 * e + a], km[2 * e + a:])


def ppk_mix(prf_id: int, ppk: bytes, keys: IkeKeys) -> IkeKeys:
    """RFC 8784 §3: SK_d' = prf+(PPK, SK_d), SK_pi' = prf+(PPK, SK_pi), SK_pr' =
    prf+(PPK, SK_pr), each as long as the original. The other keys are unchanged."""
    def mix(k: bytes) -> bytes:
        return prf_plus(prf_id, ppk, k, len(k))
    return IkeKeys(mix(keys.sk_d), keys.sk_ai, keys.sk_ar, keys.sk_ei, keys.sk_er,
                   mix(keys.sk_pi), mix(keys.sk_pr))
