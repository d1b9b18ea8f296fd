"""Finite-field Diffie-Hellman over the MODP groups of RFC 3526, with Python integers.

`cryptography` deprecates its finite-field DH API, and DH group 14 (2048-bit MODP, RFC 3526
§3) is still Junos' default IKE group, so the exchange is done here: it is one modular
exponentiation per side (`pow`), plus the checks NIST SP 800-56A Rev. 3 asks for.

- Private keys (SP 800-56A §5.6.1.1.4, safe-prime groups): uniformly random in [1, 2^N - 1]
  with N = 2s, s the group's security strength (112 bits for 2048-bit MODP, RFC 3526 §8 /
  SP 800-57 Part 1 Table 2), so N = 256 here; each key pair is used for one exchange only.
- Peer public values (RFC 7296 §3.4 "the KE payload ... MUST be checked", RFC 6989 §2.2; SP
  800-56A §5.6.2.3.1 full validation): exactly the group's length, 2 <= y <= p - 2, and y in
  the subgroup of order q = (p - 1) / 2. The RFC 3526 primes are safe primes, so the subgroup
  is the quadratic residues and y^q = 1 (mod p) is Euler's criterion: the Legendre symbol
  (y / p), computed as a Jacobi symbol, is 1. This costs far less than the exponentiation.
- The shared secret g^xy (RFC 7296 §2.14) is left-padded to the group's length and refused
  if it is 1 (SP 800-56A §5.7.1.1).

Python's `pow` is not constant-time. Each exponent here is ephemeral and used twice (public
value, shared secret), which leaves a timing observer one measurement of each.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable

__all__ = ["MODP_2048", "ModpGroup", "ModpKeyPair", "jacobi", "validate_public"]


@dataclass(frozen=True)
class ModpGroup:
    """A safe-prime MODP group: prime p = 2q + 1, generator g of the order-q subgroup."""

    number: int          # IANA Transform Type 4 ID (RFC 7296 §3.3.2)
    p: int
    g: int
    private_bits: int    # N = 2 × security strength (SP 800-56A §5.6.1.1.4)

    @property
    def size(self) -> int:
        """Bytes of a public value or shared secret on the wire (RFC 7296 §3.4)."""
        return (self.p.bit_length() + 7) // 8

    @property
    def q(self) -> int:
        return (self.p - 1) // 2


#: RFC 3526 §3: 2048-bit MODP group, generator 2 (IKE DH group 14).
MODP_2048 = ModpGroup(14, int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
    "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
    "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
    "955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF", 16), 2, 256)


def jacobi(a: int, n: int) -> int:
    """The Jacobi symbol (a / n) for odd n > 0: 1, -1, or 0 when gcd(a, n) > 1. For a prime n
    it is the Legendre symbol, a^((n-1)/2) mod n (Euler's criterion)."""
    if n <= 0 or n % 2 == 0:
        raise ValueError("the Jacobi symbol needs an odd positive n")
    a %= n
    result = 1
    while a:
        zeros = (a & -a).bit_length() - 1       # a = 2^zeros × odd
        a >>= zeros
        if zeros % 2 and n % 8 in (3, 5):       # (2 / n) = -1 for n = ±3 mod 8
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
    if jacobi(y, group.p) != 1:
        raise ValueError("MODP public value is not in the prime-order subgroup")
    return y


class ModpKeyPair:
    """One ephemeral key pair of a MODP group; `public` is g^x, `size` bytes big-endian."""

    def __init__(self, group: ModpGroup = MODP_2048,
                 randbits: Callable[[int], int] = secrets.randbits) -> None:
        self.group = group
        x = 0
        while x == 0:
            x = randbits(group.private_bits)
        self._x = x
        self.public = pow(group.g, x, group.p).to_bytes(group.size, "big")

    def shared_secret(self, peer: bytes) -> bytes:
        """g^xy for the peer's public value (RFC 7296 §2.14), `size` bytes; `ValueError` for
        a public value that fails validation."""
        z = pow(validate_public(self.group, peer), self._x, self.group.p)
        if z == 1:
            raise ValueError("MODP shared secret is 1")
        return z.to_bytes(self.group.size, "big")
