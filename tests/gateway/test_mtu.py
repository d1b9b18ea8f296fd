"""`encapsulated_length` is exactly what the engines emit; `max_inner_length` is the largest
inner packet that fits (RFC 4301 §8)."""
from __future__ import annotations

import pytest

from inline_ipsec.cpu import CpuEngine
from inline_ipsec.gateway.mtu import encapsulated_length, max_inner_length
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.pfe import Pfe
from inline_ipsec.sa import CIPHER_KEY_MATERIAL, INTEGRITY_ALGORITHMS, SaSpec

CASES = [
    ("pfe", "esp", "aes-gcm-128", None, False, False),
    ("pfe", "esp", "aes-gcm-256", None, True, True),
    ("pfe", "esp", "aes-gcm-256", None, False, True),
    ("cpu", "esp", "aes-cbc-256", "hmac-sha256-128", False, False),
    ("cpu", "esp", "aes-cbc-128", "hmac-sha1-96", True, False),
    ("cpu", "esp", "3des-cbc", "hmac-sha512-256", False, False),
    ("cpu", "esp", "aes-ctr-128", "hmac-sha384-192", False, True),
    ("cpu", "esp", "chacha20-poly1305", None, True, False),
    ("cpu", "esp", "aes-gmac-256", None, False, False),
    ("cpu", "esp", "null", "hmac-sha256-128", False, False),
    ("cpu", "ah", "null", "hmac-sha256-128", False, False),
    ("cpu", "ah", "null", "hmac-sha1-96", True, False),
    ("cpu", "ah", "null", "hmac-sha384-192", True, False),
]


def _spec(protocol: str, cipher: str, integrity, outer6: bool, natt: bool) -> SaSpec:
    src, dst = ("2001:db8::1", "2001:db8::2") if outer6 else ("192.0.2.1", "192.0.2.2")
    return SaSpec(spi=0x4000, protocol=protocol, cipher=cipher,
                  key=bytes(CIPHER_KEY_MATERIAL[cipher]), integrity=integrity,
                  integrity_key=bytes(INTEGRITY_ALGORITHMS[integrity][0]) if integrity else b"",
                  tunnel_src=src, tunnel_dst=dst, udp_encap=natt)


@pytest.mark.parametrize("engine,protocol,cipher,integrity,outer6,natt", CASES)
def test_length_matches_the_engine(engine, protocol, cipher, integrity, outer6, natt) -> None:
    spec = _spec(protocol, cipher, integrity, outer6, natt)
    e = Pfe() if engine == "pfe" else CpuEngine()
    h = e.add_outbound(spec)
    for size in range(28, 80):
        inner = udp_packet("10.0.0.1", "10.0.0.2", bytes(size - 28))
        assert len(e.encrypt(h, inner)) == encapsulated_length(spec, size), size


@pytest.mark.parametrize("engine,protocol,cipher,integrity,outer6,natt", CASES)
@pytest.mark.parametrize("mtu", [576, 1280, 1500, 9000])
def test_max_inner_length_is_the_largest_that_fits(engine, protocol, cipher, integrity,
                                                   outer6, natt, mtu) -> None:
    spec = _spec(protocol, cipher, integrity, outer6, natt)
    n = max_inner_length(spec, mtu)
    assert encapsulated_length(spec, n) <= mtu < encapsulated_length(spec, n + 1)
