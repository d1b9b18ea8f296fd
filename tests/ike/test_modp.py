"""DH group 14 (RFC 3526 §3) without `cryptography`'s deprecated finite-field API: agreement
with an independent implementation, SP 800-56A public-value validation, no warnings."""
from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec.ike.constants import DhGroup, NotifyType
from inline_ipsec.ike.errors import RemoteIkeError
from inline_ipsec.ike.modp import MODP_2048, ModpKeyPair, jacobi, validate_public
from inline_ipsec.ike.protection import KeyExchange

P, Q = MODP_2048.p, MODP_2048.q
SMALL_ODD_PRIMES = [3, 5, 7, 11, 13, 17, 19, 23, 101, 103, 107, 1009, 65537]


def _bytes(y: int) -> bytes:
    return y.to_bytes(256, "big")


def test_the_group_is_rfc_3526_group_14() -> None:
    assert MODP_2048.number == DhGroup.MODP_2048 == 14
    assert P.bit_length() == 2048 and MODP_2048.size == 256 and MODP_2048.g == 2
    assert P % 8 == 7                      # so 2 is a quadratic residue: g generates order q
    assert pow(2, Q, P) == 1


@pytest.mark.parametrize("n", SMALL_ODD_PRIMES)
def test_jacobi_is_eulers_criterion_for_small_primes(n: int) -> None:
    for a in range(0, 3 * n):
        expected = pow(a, (n - 1) // 2, n)
        assert jacobi(a, n) == {1: 1, 0: 0, n - 1: -1}[expected], (a, n)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=2, max_value=P - 2))
def test_jacobi_is_eulers_criterion_for_the_group_prime(y: int) -> None:
    legendre = pow(y, Q, P)
    assert legendre in (1, P - 1)
    assert jacobi(y, P) == (1 if legendre == 1 else -1)


def test_jacobi_needs_an_odd_positive_modulus() -> None:
    for n in (0, -3, 10):
        with pytest.raises(ValueError):
            jacobi(3, n)


def test_agreement_and_sizes() -> None:
    a, b = ModpKeyPair(), ModpKeyPair()
    assert len(a.public) == len(b.public) == 256 and a.public != b.public
    secret = a.shared_secret(b.public)
    assert secret == b.shared_secret(a.public) and len(secret) == 256


def test_agreement_with_cryptography_as_an_independent_implementation() -> None:
    """Our public value and OpenSSL's (through `cryptography`), both directions."""
    from cryptography.hazmat.primitives.asymmetric import dh
    with warnings.catch_warnings():   # the reference implementation is the deprecated API
        warnings.simplefilter("ignore")
        params = dh.DHParameterNumbers(P, 2).parameters()
        theirs = params.generate_private_key()
        their_public = _bytes(theirs.public_key().public_numbers().y)
        ours = ModpKeyPair()
        our_public = dh.DHPublicNumbers(int.from_bytes(ours.public, "big"),
                                        params.parameter_numbers()).public_key()
        expected = theirs.exchange(our_public).rjust(256, b"\0")
    assert ours.shared_secret(their_public) == expected


def test_private_keys_are_256_bit_and_never_zero() -> None:
    asked: list[int] = []
    draws = iter([0, 0, 5])

    def randbits(n: int) -> int:
        asked.append(n)
        return next(draws)

    pair = ModpKeyPair(randbits=randbits)
    assert asked == [256, 256, 256]
    assert pair.public == _bytes(pow(2, 5, P))


def _non_residue() -> int:
    y = 3
    while pow(y, Q, P) == 1:
        y += 1
    return y


@pytest.mark.parametrize("value, why", [
    (_bytes(0), "out of range"), (_bytes(1), "out of range"), (_bytes(P - 1), "out of range"),
    (_bytes(P), "out of range"), (b"\xff" * 256, "out of range"),
    (_bytes(2)[1:], "of 255 bytes"), (b"\0" + _bytes(2), "of 257 bytes"), (b"", "of 0 bytes"),
    (_bytes(_non_residue()), "not in the prime-order subgroup"),
], ids=["0", "1", "p-1", "p", "all-ones", "short", "long", "empty", "non-residue"])
def test_invalid_public_values_are_refused(value: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        validate_public(MODP_2048, value)
    with pytest.raises(RemoteIkeError) as exc:
        KeyExchange(DhGroup.MODP_2048).shared_secret(value)
    assert exc.value.notify_hint == NotifyType.INVALID_SYNTAX


def test_valid_edge_values_are_accepted() -> None:
    assert validate_public(MODP_2048, _bytes(2)) == 2        # g itself
    assert validate_public(MODP_2048, _bytes(4)) == 4


def test_group_14_raises_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, b = KeyExchange(DhGroup.MODP_2048), KeyExchange(DhGroup.MODP_2048)
        assert a.shared_secret(b.public) == b.shared_secret(a.public)
