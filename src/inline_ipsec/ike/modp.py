"""Finite-field (MODP) Diffie-Hellman with Python integers: IKE groups 2, 5, 14, 15, 16, 24.

The groups are RFC 2409 §6.2 (group 2), RFC 3526 §2-§5 (groups 5, 14, 15, 16) and RFC 5114
§2.3 (group 24: a 2048-bit prime with a 256-bit prime-order subgroup). `cryptography`
deprecates its finite-field DH API, and group 14 is still a common IKE default, so the exchange
is done here: one modular exponentiation per side (`pow`), plus the checks NIST SP 800-56A
Rev. 3 asks for. Both IKE versions use this module; the elliptic-curve groups stay in
`protection.KeyExchange`.

- Private exponents (SP 800-56A §5.6.1.1.4): random, at least twice the group's security
  strength (RFC 3526 §8) and never below 256 bits; for group 24 a random element of [2, q-1].
  Each key pair serves one exchange.
- Peer public values (RFC 7296 §3.4 "MUST be checked", RFC 6989 §2.2; SP 800-56A §5.6.2.3.1
  full validation): exactly the group's length, 2 <= y <= p-2, and y in the prime-order
  subgroup. For the safe primes of RFC 2409/3526 that subgroup is the quadratic residues, so
  Euler's criterion applies and is computed as a Jacobi symbol (far cheaper than y^q); for
  group 24 y^q = 1 (mod p) is checked directly (RFC 5114 §4).
- The shared secret g^xy (RFC 7296 §2.14, RFC 2409 §5) is left-padded to the length of p and
  refused if it is 1 (SP 800-56A §5.7.1.1).

Python's `pow` is not constant-time. Each exponent is ephemeral and used twice (public value,
shared secret), which leaves a timing observer one measurement of each.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Callable, Optional

from .errors import RemoteIkeError

__all__ = ["GROUPS", "MODP_2048", "ModpGroup", "ModpKeyPair", "ModpKeyExchange", "jacobi",
           "validate_public"]

_G2_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF", 16)
_G2_GENERATOR = 2
_G5_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
    "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
    "F1746C08CA237327FFFFFFFFFFFFFFFF", 16)
_G5_GENERATOR = 2
_G14_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
    "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
    "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
    "955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)
_G14_GENERATOR = 2
_G15_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
    "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
    "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
    "955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64"
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D226"
    "1AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF", 16)
_G15_GENERATOR = 2
_G16_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
    "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
    "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
    "955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64"
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D226"
    "1AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D788719A10BDBA5B2699C32718"
    "6AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D"
    "99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA993B4EA98"
    "8D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF", 16)
_G16_GENERATOR = 2
_G24_PRIME = int(
    "87A8E61DB4B6663CFFBBD19C651959998CEEF608660DD0F25D2CEED4435E3B00E00DF8F1D61957D4FAF7DF45"
    "61B2AA3016C3D91134096FAA3BF4296D830E9A7C209E0C6497517ABD5A8A9D306BCF67ED91F9E6725B4758C0"
    "22E0B1EF4275BF7B6C5BFC11D45F9088B941F54EB1E59BB8BC39A0BF12307F5C4FDB70C581B23F76B63ACAE1"
    "CAA6B7902D52526735488A0EF13C6D9A51BFA4AB3AD8347796524D8EF6A167B5A41825D967E144E514056425"
    "1CCACB83E6B486F6B3CA3F7971506026C0B857F689962856DED4010ABD0BE621C3A3960A54E710C375F26375"
    "D7014103A4B54330C198AF126116D2276E11715F693877FAD7EF09CADB094AE91E1A1597", 16)
_G24_GENERATOR = int(
    "3FB32C9B73134D0B2E77506660EDBD484CA7B18F21EF205407F4793A1A0BA12510DBC15077BE463FFF4FED4A"
    "AC0BB555BE3A6C1B0C6B47B1BC3773BF7E8C6F62901228F8C28CBB18A55AE31341000A650196F931C77A57F2"
    "DDF463E5E9EC144B777DE62AAAB8A8628AC376D282D6ED3864E67982428EBC831D14348F6F2F9193B5045AF2"
    "767164E1DFC967C1FB3F2E55A4BD1BFFE83B9C80D052B985D182EA0ADB2A3B7313D3FE14C8484B1E052588B9"
    "B7D2BBD2DF016199ECD06E1557CD0915B3353BBB64E0EC377FD028370DF92B52C7891428CDC67EB6184B523D"
    "1DB246C32F63078490F00EF8D647D148D47954515E2327CFEF98C582664B4C0F6CC41659", 16)
_G24_SUBGROUP = int(
    "8CF83642A709A097B447997640129DA299B1A47D1EB3750BA308B0FE64F5FBD3", 16)


@dataclass(frozen=True)
class ModpGroup:
    """A MODP group: prime p, generator g of a prime-order subgroup of order q."""

    number: int          # IANA Transform Type 4 ID (RFC 7296 §3.3.2)
    p: int
    g: int
    private_bits: int    # N >= 2 x security strength (SP 800-56A §5.6.1.1.4)
    #: the order of g when p is not a safe prime (RFC 5114 groups); None: q = (p - 1) / 2
    subgroup: Optional[int] = None

    @property
    def size(self) -> int:
        """Bytes of a public value or shared secret on the wire (RFC 7296 §3.4)."""
        return (self.p.bit_length() + 7) // 8

    @property
    def q(self) -> int:
        return self.subgroup if self.subgroup is not None else (self.p - 1) // 2


GROUPS: dict[int, ModpGroup] = {grp.number: grp for grp in (
    ModpGroup(2, _G2_PRIME, _G2_GENERATOR, 256),
    ModpGroup(5, _G5_PRIME, _G5_GENERATOR, 256),
    ModpGroup(14, _G14_PRIME, _G14_GENERATOR, 256),
    ModpGroup(15, _G15_PRIME, _G15_GENERATOR, 384),
    ModpGroup(16, _G16_PRIME, _G16_GENERATOR, 512),
    ModpGroup(24, _G24_PRIME, _G24_GENERATOR, 256, _G24_SUBGROUP),
)}
#: RFC 3526 §3: 2048-bit MODP group, generator 2 (IKE DH group 14).
MODP_2048 = GROUPS[14]


def jacobi(a: int, n: int) -> int:
    """The Jacobi symbol (a / n) for odd n > 0: 1, -1, or 0 when gcd(a, n) > 1. For a prime n
    it is the Legendre symbol, a^((n-1)/2) mod n (Euler's criterion)."""
    if n <= 0 or n % 2 == 0:
        raise ValueError("the Jacobi symbol needs an odd positive n")
    a %= n
    result = 1
    while a:
        zeros = (a & -a).bit_length() - 1       # a = 2^zeros x odd
        a >>= zeros
        if zeros % 2 and n % 8 in (3, 5):       # (2 / n) = -1 for n = +-3 mod 8
            result = -result
        if a % 4 == 3 and n % 4 == 3:           # quadratic reciprocity
            result = -result
        a, n = n % a, a
    return result if n == 1 else 0


def validate_public(group: ModpGroup, value: bytes) -> int:
    """The peer's public value as an integer, after SP 800-56A §5.6.2.3.1 full validation;
    `ValueError` saying what is wrong otherwise."""
    if len(value) != group.size:
        raise ValueError(f"MODP public value of {len(value)} bytes, expected {group.size}")
    y = int.from_bytes(value, "big")
    if not 2 <= y <= group.p - 2:
        raise ValueError("MODP public value out of range (2 <= y <= p-2)")
    in_subgroup = jacobi(y, group.p) == 1 if group.subgroup is None \
        else pow(y, group.subgroup, group.p) == 1
    if not in_subgroup:
        raise ValueError("MODP public value is not in the prime-order subgroup")
    return y


class ModpKeyPair:
    """One ephemeral key pair of a MODP group; `public` is g^x, `size` bytes big-endian."""

    def __init__(self, group: ModpGroup = MODP_2048,
                 randbits: Callable[[int], int] = secrets.randbits) -> None:
        self.group = group
        x = 0
        while x < 2:
            x = randbits(group.private_bits)
            if group.subgroup is not None:
                x %= group.subgroup
        self._x = x
        self.public = pow(group.g, x, group.p).to_bytes(group.size, "big")

    def shared_secret(self, peer: bytes) -> bytes:
        """g^xy for the peer's public value (RFC 7296 §2.14), `size` bytes; `ValueError` for
        a public value that fails validation."""
        z = pow(validate_public(self.group, peer), self._x, self.group.p)
        if z == 1:
            raise ValueError("MODP shared secret is 1")
        return z.to_bytes(self.group.size, "big")


class ModpKeyExchange:
    """A `ModpKeyPair` by IANA group number, with `protection.KeyExchange`'s surface: a bad
    peer value is a `RemoteIkeError` carrying the caller's notify hint."""

    def __init__(self, group: int, random: Callable[[int], bytes] = os.urandom,
                 invalid_hint: Optional[int] = None) -> None:
        if group not in GROUPS:
            raise ValueError(f"unsupported MODP group {group}")
        self.group = group
        self._hint = invalid_hint

        def randbits(bits: int) -> int:
            return int.from_bytes(random((bits + 7) // 8), "big") >> (-bits % 8)

        self._pair = ModpKeyPair(GROUPS[group], randbits)
        self.public = self._pair.public

    def shared_secret(self, peer: bytes) -> bytes:
        try:
            return self._pair.shared_secret(peer)
        except ValueError as exc:
            raise RemoteIkeError(f"invalid public value for MODP group {self.group}: {exc}",
                                 self._hint) from None
