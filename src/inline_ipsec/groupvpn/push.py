"""GROUPKEY-PUSH protection (RFC 6407 §4): KEK encryption, the key server's signature and
the sequence number.

    HDR*(KEK SPI as cookies, exchange 33, M-ID 0), SEQ, [D,] SA, KD, SIG

- The ISAKMP cookies are the 16-byte KEK SPI (RFC 6407 §4.1, §5.3): a member finds the KEK
  by them and drops any push for another KEK.
- Encryption: the KEK algorithm (AES-CBC, RFC 6407 §5.3.3) over the payload chain padded with
  zeros to whole blocks, with a random IV sent in front of the ciphertext. Each push carries
  its own IV, so a lost push does not break the next one (our choice; RFC 6407 leaves
  the IV to the algorithm's definition).
- SIG: RSASSA-PKCS1-v1_5 (SIG_ALG_RSA) with SIG_HASH_ALGORITHM over "rekey" | HDR | the
  payloads before SIG as they are on the wire, with the header exactly as sent (RFC 6407
  §4.1: the signature covers the string "rekey", the header and the message). The public key
  reached the member in the KEK key packet (SIG_ALGORITHM_KEY) under the Phase 1 SA.
- SEQ: a member accepts only a sequence number above every one it has accepted (RFC 6407
  §4.1, §5.7, §3.3: the GROUPKEY-PULL gave it the current one).

`open_push` checks cookies, decrypts, decodes, verifies the signature and the sequence
number, in that order, and installs nothing: it returns the payloads or raises `PushRejected`
with the reason a member counts.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Callable, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..ike.errors import RemoteIkeError
from ..ike.v1.constants import Flag
from ..ike.v1.isakmp import HEADER_LEN, IsakmpHeader, Payload, SigPayload, parse_header
from .constants import GdoiExchange, GdoiPayload, SigHash
from .payloads import SeqPayload, decode_chain

_HASHES = {SigHash.SHA256: hashes.SHA256, SigHash.SHA384: hashes.SHA384,
           SigHash.SHA512: hashes.SHA512}
JUNOS_SIG_HASH = {"sha-256": SigHash.SHA256, "sha-384": SigHash.SHA384}
BLOCK = 16


class PushRejected(Exception):
    """A GROUPKEY-PUSH a member must not act on; `reason` is the counter name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Kek:
    """One KEK as both ends hold it: SPI (the push cookies), AES key, lifetime, signature
    hash, and the key server's public key (a member) or private key (the server)."""

    spi: bytes
    key: bytes
    expires: float
    sig_hash: int = SigHash.SHA256
    public_key: Optional[rsa.RSAPublicKey] = None
    private_key: Optional[rsa.RSAPrivateKey] = None

    @property
    def public_der(self) -> bytes:
        pub = self.public_key or (self.private_key.public_key() if self.private_key else None)
        assert pub is not None
        return pub.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(der: bytes) -> rsa.RSAPublicKey:
    """The key server's signature key from a KEK key packet; only RSA (Junos: "only RSA keys
    are supported")."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError) as exc:
        raise RemoteIkeError(f"SIG_ALGORITHM_KEY is not a DER public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise RemoteIkeError("SIG_ALGORITHM_KEY is not an RSA key of 2048 bits or more")
    return key


def _chain_with_tail(payloads: list[Payload], tail_type: int) -> bytes:
    out = bytearray()
    for i, p in enumerate(payloads):
        nxt = payloads[i + 1].ptype if i + 1 < len(payloads) else tail_type
        body = p.encode_body()
        out += struct.pack("!BBH", nxt, 0, 4 + len(body)) + body
    return bytes(out)


def seal_push(kek: Kek, seq: int, payloads: list[Payload],
              random: Callable[[int], bytes] = os.urandom) -> bytes:
    """A GROUPKEY-PUSH: SEQ, `payloads` (e.g. [D,] SA, KD), SIG, encrypted with the KEK."""
    assert kek.private_key is not None
    body = [SeqPayload(seq=seq)] + list(payloads)
    chain = _chain_with_tail(body, GdoiPayload.SIG)
    sig_len = kek.private_key.key_size // 8
    plain_len = len(chain) + 4 + sig_len
    padded = plain_len + (-plain_len) % BLOCK
    hdr = IsakmpHeader(kek.spi[:8], kek.spi[8:], GdoiPayload.SEQ, GdoiExchange.GROUPKEY_PUSH,
                       Flag.ENCRYPTION, 0, HEADER_LEN + BLOCK + padded)
    head = hdr.encode()
    sig = kek.private_key.sign(b"rekey" + head + chain, padding.PKCS1v15(),
                               _HASHES[SigHash(kek.sig_hash)]())
    plain = chain + struct.pack("!BBH", 0, 0, 4 + len(sig)) + sig
    plain += bytes(padded - len(plain))
    iv = random(BLOCK)
    enc = Cipher(algorithms.AES(kek.key), modes.CBC(iv)).encryptor()
    return head + iv + enc.update(plain) + enc.finalize()


def push_cookies(data: bytes) -> bytes:
    """The KEK SPI a datagram claims (its two cookies), or b"" if too short."""
    return bytes(data[:16]) if len(data) >= HEADER_LEN else b""


def open_push(kek: Kek, data: bytes, last_seq: int) -> tuple[int, list[Payload]]:
    """Verify a GROUPKEY-PUSH under `kek`; returns (seq, payloads after SEQ, without SIG)."""
    try:
        hdr = parse_header(bytes(data))
    except RemoteIkeError as exc:
        raise PushRejected("malformed", str(exc)) from None
    if hdr.exchange != GdoiExchange.GROUPKEY_PUSH or hdr.cky_i + hdr.cky_r != kek.spi:
        raise PushRejected("unknown-kek")
    if not hdr.encrypted:
        raise PushRejected("unencrypted")
    body = bytes(data[HEADER_LEN:])
    if len(body) < 2 * BLOCK or len(body) % BLOCK:
        raise PushRejected("malformed", f"{len(body)} encrypted bytes")
    dec = Cipher(algorithms.AES(kek.key), modes.CBC(body[:BLOCK])).decryptor()
    plain = dec.update(body[BLOCK:]) + dec.finalize()
    try:
        payloads = decode_chain(hdr.next_payload, plain, allow_padding=True)
    except RemoteIkeError as exc:
        raise PushRejected("malformed", str(exc)) from None
    if len(payloads) < 2 or type(payloads[0]) is not SeqPayload or \
            type(payloads[-1]) is not SigPayload or \
            any(type(p) is SigPayload for p in payloads[:-1]):
        raise PushRejected("malformed", "not SEQ ... SIG")
    signed = plain[:sum(len(p.raw) for p in payloads[:-1])]
    pub = kek.public_key
    if pub is None:
        raise PushRejected("no-signature-key")
    try:
        pub.verify(payloads[-1].data, b"rekey" + bytes(data[:HEADER_LEN]) + signed,
                   padding.PKCS1v15(), _HASHES[SigHash(kek.sig_hash)]())
    except (InvalidSignature, ValueError):
        raise PushRejected("bad-signature") from None
    seq = payloads[0].seq
    if seq <= last_seq:
        raise PushRejected("replayed", f"SEQ {seq} <= {last_seq}")
    return seq, payloads[1:-1]
