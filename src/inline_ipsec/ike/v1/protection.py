"""Encryption of ISAKMP messages (RFC 2408 §3.1 E flag, RFC 2409 §5 and Appendix B): CBC with
the Phase 1 cipher over the whole payload chain, zero-padded to the block size, no integrity
check of its own (the HASH payloads authenticate).

The IV chain (Appendix B): the first encrypted Phase 1 message uses hash(g^xi | g^xr); every
further message of the same exchange uses the last ciphertext block of the previous one. Each
Quick Mode and Informational exchange starts from hash(last Phase 1 block | M-ID). A receiver
moves its IV forward only once a message has been verified, so a forged message cannot
desynchronise the chain (`IvChain.candidate` / `commit`).
"""
from __future__ import annotations

from typing import Optional

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .constants import Flag
from .isakmp import (HEADER_LEN, IsakmpHeader, IsakmpMessage, Payload, decode_chain,
                     encode_chain, first_type, malformed)
from .proposals import Phase1Suite


class IvChain:
    """The CBC IV of one exchange (Phase 1 with message ID 0, or one Quick Mode /
    Informational exchange)."""

    __slots__ = ("iv", "candidate")

    def __init__(self, iv: bytes) -> None:
        self.iv = iv
        #: the last block of a received message, adopted by `commit` once it is verified.
        self.candidate: Optional[bytes] = None

    def commit(self) -> None:
        if self.candidate is not None:
            self.iv, self.candidate = self.candidate, None


class MessageCipher:
    """The Phase 1 cipher keyed with the expanded SKEYID_e (AES-CBC or 3DES-CBC)."""

    def __init__(self, suite: Phase1Suite, key: bytes) -> None:
        self.block = suite.block
        self._algo = TripleDES(key) if suite.block == 8 else algorithms.AES(key)

    def seal(self, header: IsakmpHeader, payloads: list[Payload], chain: IvChain) -> bytes:
        """header* | E(payloads | zero padding): sets the E flag, the next payload and the
        length, and moves the chain to the last ciphertext block."""
        plain = encode_chain(payloads)
        plain += bytes(self.block - len(plain) % self.block)   # 1..block zero bytes
        enc = Cipher(self._algo, modes.CBC(chain.iv)).encryptor()
        body = enc.update(plain) + enc.finalize()
        header.flags |= Flag.ENCRYPTION
        header.next_payload = first_type(payloads)
        header.length = HEADER_LEN + len(body)
        chain.iv = body[-self.block:]
        chain.candidate = None
        return header.encode() + body

    def open(self, msg: IsakmpMessage, chain: IvChain) -> list[Payload]:
        """Decrypt and decode the payload chain of `msg` with the chain's IV; the chain's
        candidate becomes the message's last block (commit it once verified). A ciphertext
        that is not whole blocks, or decrypts to a malformed chain, is PAYLOAD-MALFORMED."""
        body = msg.encrypted
        if not body or len(body) % self.block:
            raise malformed(f"encrypted body of {len(body)} bytes is not whole "
                            f"{self.block}-byte blocks")
        dec = Cipher(self._algo, modes.CBC(chain.iv)).decryptor()
        plain = dec.update(body) + dec.finalize()
        payloads = decode_chain(msg.header.next_payload, plain, 0, allow_padding=True)
        chain.candidate = body[-self.block:]
        return payloads
