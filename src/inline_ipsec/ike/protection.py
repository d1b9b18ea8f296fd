"""Diffie-Hellman and SK payload protection (RFC 7296 §3.14, §2.15 of RFC 5282), through
`cryptography` except the finite-field group (`modp.py`).

DH groups: 14 (MODP-2048, RFC 3526 §3; `modp.py`), 19/20/21 (ECP, RFC 5903 §7: KE data is
x || y, the shared secret is x), 31 (Curve25519, RFC 8031 §2). SK ciphers: AES-GCM with 16-byte ICV
(RFC 5282: 8-byte IV, nonce = salt || IV, AAD = IKE header .. SK generic header) and AES-CBC
with HMAC-SHA2 (RFC 7296 §3.14 with RFC 4868 truncation; the ICV covers header .. ciphertext).
"""
from __future__ import annotations

import os
import struct
from typing import Any, Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .constants import DhGroup, IntegId, NotifyType, PayloadType
from .errors import LocalIkeError, RemoteIkeError, syntax_error
from .message import HEADER_LEN, IkeHeader, Message, decode_chain, encode_chain, first_type
from .modp import MODP_2048, ModpKeyPair
from .payloads import EncryptedFragmentPayload, EncryptedPayload, Payload
from .proposals import Suite

#: RFC 3526 §3, 2048-bit MODP group (generator 2).
MODP_2048_P = MODP_2048.p

_CURVES = {DhGroup.ECP_256: (ec.SECP256R1, 32), DhGroup.ECP_384: (ec.SECP384R1, 48),
           DhGroup.ECP_521: (ec.SECP521R1, 66)}
SUPPORTED_GROUPS = (DhGroup.MODP_2048, DhGroup.ECP_256, DhGroup.ECP_384, DhGroup.ECP_521,
                    DhGroup.CURVE25519)


class KeyExchange:
    """One ephemeral DH key pair of `group` (RFC 7296 §1.2, §3.4)."""

    def __init__(self, group: int) -> None:
        self.group = group
        self._priv: Any
        self.public: bytes
        if group == DhGroup.MODP_2048:
            self._priv = ModpKeyPair(MODP_2048)
            self.public = self._priv.public
        elif group in _CURVES:
            curve, size = _CURVES[DhGroup(group)]
            self._priv = ec.generate_private_key(curve())
            nums = self._priv.public_key().public_numbers()
            self.public = nums.x.to_bytes(size, "big") + nums.y.to_bytes(size, "big")
        elif group == DhGroup.CURVE25519:
            self._priv = x25519.X25519PrivateKey.generate()
            self.public = self._priv.public_key().public_bytes_raw()
        else:
            raise ValueError(f"unsupported DH group {group}")

    def shared_secret(self, peer: bytes) -> bytes:
        """g^ir, padded to the group size; an invalid peer value is INVALID_SYNTAX (§3.4)."""
        try:
            if self.group == DhGroup.MODP_2048:
                return self._priv.shared_secret(peer)   # validates the peer's value
            if self.group in _CURVES:
                curve, size = _CURVES[DhGroup(self.group)]
                if len(peer) != 2 * size:
                    raise ValueError(f"ECP public value of {len(peer)} bytes")
                ecpub = ec.EllipticCurvePublicKey.from_encoded_point(curve(), b"\x04" + peer)
                return bytes(self._priv.exchange(ec.ECDH(), ecpub))
            if len(peer) != 32:
                raise ValueError("Curve25519 public value must be 32 bytes")
            xpub = x25519.X25519PublicKey.from_public_bytes(peer)
            return bytes(self._priv.exchange(xpub))  # raises on the all-zero result (RFC 8031 §2.3)
        except ValueError as exc:
            raise syntax_error(f"invalid KE data for group {self.group}: {exc}") from None


def group_supported(group: int) -> bool:
    return group in SUPPORTED_GROUPS


class IntegrityCheckFailed(RemoteIkeError):
    """ICV or tag mismatch: the message is dropped silently (RFC 7296 §2.21, §3.14)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, None)


_INTEG = {IntegId.AUTH_HMAC_SHA2_256_128: (hashes.SHA256, 16),
          IntegId.AUTH_HMAC_SHA2_384_192: (hashes.SHA384, 24),
          IntegId.AUTH_HMAC_SHA2_512_256: (hashes.SHA512, 32),
          IntegId.AUTH_HMAC_SHA1_96: (hashes.SHA1, 12)}


class SkCipher:
    """Protects messages in one direction of an IKE SA (keys SK_e* and SK_a* of one side)."""

    def __init__(self, suite: Suite, encr_key: bytes, integ_key: bytes = b"",
                 random: Callable[[int], bytes] = os.urandom) -> None:
        self.suite = suite
        self._random = random
        if suite.is_aead:
            self._aead = AESGCM(encr_key[:-4])
            self._salt = encr_key[-4:]
            self.iv_len, self.icv_len, self.block = 8, 16, 1
            self._iv_counter = int.from_bytes(random(4), "big") << 32
        else:
            if suite.integ not in _INTEG:
                raise RemoteIkeError(f"unsupported integrity {suite.integ}",
                                     NotifyType.NO_PROPOSAL_CHOSEN)
            self._key = encr_key
            self._hash, self.icv_len = _INTEG[IntegId(suite.integ)]
            self._integ_key = integ_key
            self.iv_len, self.block = 16, 16

    def _icv(self, data: bytes) -> bytes:
        h = hmac.HMAC(self._integ_key, self._hash())
        h.update(data)
        return h.finalize()[:self.icv_len]

    def _pad(self, plain: bytes) -> bytes:
        """Padding and Pad Length (§3.14): to the cipher block size, none needed for GCM."""
        pad = (-(len(plain) + 1)) % self.block
        return plain + bytes(pad) + bytes([pad])

    def _protect(self, aad: bytes, plain: bytes) -> bytes:
        """IV || ciphertext || ICV for a message whose bytes before the IV are `aad`."""
        if self.suite.is_aead:
            self._iv_counter = (self._iv_counter + 1) & 0xFFFFFFFFFFFFFFFF
            iv = self._iv_counter.to_bytes(8, "big")
            return iv + self._aead.encrypt(self._salt + iv, plain, aad)
        iv = self._random(16)
        enc = Cipher(algorithms.AES(self._key), modes.CBC(iv)).encryptor()
        body = iv + enc.update(plain) + enc.finalize()
        return body + self._icv(aad + body)

    def seal(self, header: IkeHeader, inner: Sequence[Payload]) -> bytes:
        """Build a complete protected message: header || SK{inner} (§3.14)."""
        plain = self._pad(encode_chain(inner))
        sk_len = 4 + self.iv_len + len(plain) + self.icv_len
        header.next_payload = PayloadType.SK
        header.length = HEADER_LEN + sk_len
        aad = header.encode() + struct.pack("!BBH", first_type(inner), 0, sk_len)
        return aad + self._protect(aad, plain)

    def seal_fragments(self, header: IkeHeader, inner: Sequence[Payload],
                       max_size: int) -> list[bytes]:
        """RFC 7383 §2.5: one SK message if it fits in `max_size` bytes, otherwise SKF
        fragments, each encrypted on its own; AAD/ICV cover Fragment Number and Total."""
        plain = encode_chain(inner)
        whole = HEADER_LEN + 4 + self.iv_len + len(self._pad(plain)) + self.icv_len
        if whole <= max_size:
            return [self.seal(header, inner)]
        overhead = HEADER_LEN + 8 + self.iv_len + self.icv_len + self.block
        chunk = max_size - overhead
        if chunk < 16:
            raise LocalIkeError(f"fragment size {max_size} too small for this cipher")
        pieces = [plain[i:i + chunk] for i in range(0, len(plain), chunk)]
        out = []
        for number, piece in enumerate(pieces, 1):
            padded = self._pad(piece)
            skf_len = 8 + self.iv_len + len(padded) + self.icv_len
            hdr = IkeHeader(header.spi_i, header.spi_r, PayloadType.SKF, header.exchange,
                            header.flags, header.message_id, HEADER_LEN + skf_len)
            nxt = first_type(inner) if number == 1 else PayloadType.NONE
            aad = hdr.encode() + struct.pack("!BBHHH", nxt, 0, skf_len, number, len(pieces))
            out.append(aad + self._protect(aad, padded))
        return out

    def _unprotect(self, raw: bytes, aad_end: int, body: bytes) -> bytes:
        """Verify and decrypt IV || ciphertext || ICV; returns the plaintext without padding."""
        if len(body) < self.iv_len + self.icv_len + 1:
            raise syntax_error("Encrypted payload too short")
        iv, ct = body[:self.iv_len], body[self.iv_len:]
        if self.suite.is_aead:
            try:
                plain = self._aead.decrypt(self._salt + iv, ct, raw[:aad_end])
            except InvalidTag:
                raise IntegrityCheckFailed("AES-GCM tag mismatch") from None
        else:
            icv = raw[-self.icv_len:]
            if not constant_time.bytes_eq(icv, self._icv(raw[:-self.icv_len])):
                raise IntegrityCheckFailed("HMAC ICV mismatch")
            ct = ct[:-self.icv_len]
            if len(ct) % 16:
                raise syntax_error("CBC ciphertext is not a multiple of the block size")
            dec = Cipher(algorithms.AES(self._key), modes.CBC(iv)).decryptor()
            plain = dec.update(ct) + dec.finalize()
        pad = plain[-1] if plain else 0
        if pad + 1 > len(plain):
            raise syntax_error("SK pad length exceeds the plaintext")
        return plain[:len(plain) - pad - 1]

    def open(self, msg: Message) -> list[Payload]:
        """Verify and decrypt the SK payload of `msg`; returns the inner payloads.

        Raises IntegrityCheckFailed (drop silently) or RemoteIkeError(INVALID_SYNTAX)."""
        sk = msg.payloads[-1] if msg.payloads else None
        if not isinstance(sk, EncryptedPayload):
            raise syntax_error("protected exchange without an Encrypted payload")
        plain = self._unprotect(msg.raw, sk.offset + 4, sk.data)
        return decode_chain(sk.first_inner, plain)

    def open_fragment(self, msg: Message) -> tuple[EncryptedFragmentPayload, bytes]:
        """Verify and decrypt one SKF fragment (RFC 7383 §2.6): (fragment, plaintext)."""
        skf = msg.payloads[-1] if msg.payloads else None
        if not isinstance(skf, EncryptedFragmentPayload):
            raise syntax_error("not an Encrypted Fragment payload")
        return skf, self._unprotect(msg.raw, skf.offset + 8, skf.data)
