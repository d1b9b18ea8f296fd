"""IKEv1 key derivation (RFC 2409 §5, §5.5, Appendix B) against values strongSwan computed.

`tests/data/ikev1/strongswan-kat.json` was captured from a charon logging at IKE/CHD level 4
while it negotiated with us (`tests/interop/ikev1_vectors.py`): wire inputs (nonces,
cookies, public values), charon's DH results and its derived SKEYID, SKEYID_d/a/e, Ka, IVs,
HASH_I/HASH_R and KEYMAT. Our pure functions recompute each output from the inputs alone.
Cases cover pre-shared keys and RSA signatures, SHA-1 and SHA-256 PRFs, SKEYID_e truncated
(AES-128 with SHA-256) and expanded (AES-256 and 3DES with SHA-1, Appendix B), Quick Mode with
and without PFS, and KEYMAT longer than one PRF output (§5.5).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from inline_ipsec.ike.v1.keymat import (derive_phase1, expand_key, hash_i, hash_r, keymat,
                                        phase1_iv, phase2_iv, prf, qm_hash1, qm_hash2,
                                        qm_hash3, skeyid_psk, skeyid_signature)

DATA = json.loads((Path(__file__).resolve().parents[1] / "data" / "ikev1" /
                   "strongswan-kat.json").read_text())["cases"]
KEY_BYTES = {"aes-gcm-128": 20, "aes-gcm-256": 36, "aes-cbc-256": 32, "3des-cbc": 24}
INTEG_BYTES = {None: 0, "hmac-sha256-128": 32, "hmac-sha1-96": 20}
#: our ID payload body: ID_FQDN, protocol 0, port 0, "py.example" (RFC 2407 §4.6.2)
IDII_B = bytes([2, 0, 0, 0]) + b"py.example"
IDIR_B = bytes([2, 0, 0, 0]) + b"charon.example"


def _b(case: dict, key: str) -> bytes:
    return bytes.fromhex(case[key])


@pytest.fixture(params=sorted(DATA), ids=sorted(DATA))
def case(request) -> dict:
    return DATA[request.param]


def test_the_vectors_cover_the_interesting_cases():
    auths = {c["auth"] for c in DATA.values()}
    assert auths == {"psk", "rsa"}
    # SKEYID_e shorter than the key: the Appendix B expansion is exercised
    assert any(len(_b(c, "skeyid_e")) < c["key_len"] for c in DATA.values())
    assert any(len(_b(c, "skeyid_e")) >= c["key_len"] for c in DATA.values())
    assert any(c["qm_dh_secret"] for c in DATA.values()) and \
        any(not c["qm_dh_secret"] for c in DATA.values())
    # a KEYMAT longer than one PRF output (§5.5 expansion)
    assert any(len(_b(c, "encr_i") + _b(c, "integ_i")) > len(_b(c, "skeyid"))
               for c in DATA.values())


def test_skeyid(case):
    h = case["hash"]
    if case["auth"] == "psk":
        got = skeyid_psk(h, _b(case, "psk"), _b(case, "nonce_i"), _b(case, "nonce_r"))
    else:
        got = skeyid_signature(h, _b(case, "nonce_i"), _b(case, "nonce_r"), _b(case, "g_xy"))
    assert got.hex() == case["skeyid"]


def test_skeyid_d_a_e_and_the_encryption_key(case):
    k = derive_phase1(case["hash"], _b(case, "skeyid"), _b(case, "g_xy"), _b(case, "cky_i"),
                      _b(case, "cky_r"), case["key_len"])
    assert (k.skeyid_d.hex(), k.skeyid_a.hex(), k.skeyid_e.hex()) == \
        (case["skeyid_d"], case["skeyid_a"], case["skeyid_e"])
    assert k.enc_key.hex() == case["enc_key"] and len(k.enc_key) == case["key_len"]


def test_key_expansion_appendix_b(case):
    """Ka = K1 | K2 ..., K1 = prf(SKEYID_e, 0), K2 = prf(SKEYID_e, K1) when SKEYID_e is
    shorter than the key; else SKEYID_e truncated."""
    e, n, h = _b(case, "skeyid_e"), case["key_len"], case["hash"]
    ka = _b(case, "enc_key")
    if len(e) >= n:
        assert ka == e[:n]
    else:
        k1 = prf(h, e, b"\x00")
        assert ka == (k1 + prf(h, e, k1))[:n] and ka[:len(e)] != e
    assert expand_key(h, e, n) == ka


def test_phase1_iv(case):
    assert phase1_iv(case["hash"], _b(case, "g_xi"), _b(case, "g_xr"),
                     case["block"]).hex() == case["phase1_iv"]


def test_hash_i_and_hash_r(case):
    h, skeyid = case["hash"], _b(case, "skeyid")
    g_xi, g_xr, cky_i, cky_r = (_b(case, k) for k in ("g_xi", "g_xr", "cky_i", "cky_r"))
    data_i = _b(case, "hash_i_data")
    # charon's HASH_I input is g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b (RFC 2409 §5)
    head = g_xi + g_xr + cky_i + cky_r
    assert data_i.startswith(head) and data_i.endswith(IDII_B)
    sai_b = data_i[len(head):-len(IDII_B)]
    assert sai_b[:8] == bytes.fromhex("0000000100000001")   # DOI IPsec, SIT_IDENTITY_ONLY
    assert hash_i(h, skeyid, g_xi, g_xr, cky_i, cky_r, sai_b, IDII_B).hex() == case["hash_i"]
    assert _b(case, "hash_r_data") == g_xr + g_xi + cky_r + cky_i + sai_b + IDIR_B
    assert hash_r(h, skeyid, g_xi, g_xr, cky_i, cky_r, sai_b, IDIR_B).hex() == case["hash_r"]


def test_quick_mode_iv(case):
    """hash(last Phase 1 CBC block | M-ID), truncated to the block (Appendix B)."""
    iv = phase2_iv(case["hash"], _b(case, "phase1_last_block"), case["qm_mid"], case["block"])
    assert iv.hex() == case["qm_ivs"][0]


def test_keymat_with_and_without_pfs(case):
    h, d = case["hash"], _b(case, "skeyid_d")
    proto = {"esp": 3, "ah": 2}[case["protocol"]]    # RFC 2407 §4.4.1
    ni, nr = _b(case, "qm_nonce_i"), _b(case, "qm_nonce_r")
    g_qm = _b(case, "qm_dh_secret")
    spi_i, spi_r = int(case["spi_i"], 16), int(case["spi_r"], 16)
    # charon's seeds: [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b, the SPI of the receiver
    assert _b(case, "seed_i") == g_qm + bytes([proto]) + spi_r.to_bytes(4, "big") + ni + nr
    assert _b(case, "seed_r") == g_qm + bytes([proto]) + spi_i.to_bytes(4, "big") + ni + nr
    n = KEY_BYTES[case["cipher"]] + INTEG_BYTES[case["integrity"]]
    km_i = keymat(h, d, proto, spi_r, ni, nr, n, g_qm)
    km_r = keymat(h, d, proto, spi_i, ni, nr, n, g_qm)
    assert km_i == _b(case, "encr_i") + _b(case, "integ_i")
    assert km_r == _b(case, "encr_r") + _b(case, "integ_r")
    if n > len(d):     # expansion: K2 = prf(SKEYID_d, K1 | seed)
        k1 = prf(h, d, _b(case, "seed_i"))
        assert km_i[len(k1):2 * len(k1)] == prf(h, d, k1 + _b(case, "seed_i"))[:n - len(k1)]


def test_quick_mode_hashes_follow_rfc2409_5_5():
    """HASH(1..3) layouts (RFC 2409 §5.5), against an HMAC written out by hand."""
    import hmac as std_hmac
    a, mid, ni, nr, body = b"A" * 20, 0x01020304, b"i" * 16, b"r" * 16, b"payloads"
    mac = lambda data: std_hmac.new(a, data, "sha1").digest()   # noqa: E731
    assert qm_hash1("sha1", a, mid, body) == mac(bytes.fromhex("01020304") + body)
    assert qm_hash2("sha1", a, mid, ni, body) == mac(bytes.fromhex("01020304") + ni + body)
    assert qm_hash3("sha1", a, mid, ni, nr) == mac(b"\x00" + bytes.fromhex("01020304") + ni + nr)
