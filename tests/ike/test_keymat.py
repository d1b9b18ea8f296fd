"""Known-answer tests for IKEv2 key derivation (RFC 7296 §2.13-§2.18, RFC 8784 §3).

The vector is a NIST CAVS SP 800-135 "KDF135 IKEv2" sample (SHA-1, DKM of 1056 bits), as
published with libreswan's CAVP test driver: SKEYSEED, DKM = prf+(SKEYSEED, Ni|Nr|SPIi|SPIr),
DKM(Child SA) = prf+(SK_d, Ni|Nr), DKM(Child SA D-H) = prf+(SK_d, g^ir(new)|Ni|Nr) and
SKEYSEED(Rekey) = prf(SK_d, g^ir(new)|Ni|Nr), where SK_d is the first prf-length bytes of DKM.
"""
from cryptography.hazmat.primitives import hashes, hmac

from inline_ipsec.ike import keymat
from inline_ipsec.ike.constants import PrfId

H = bytes.fromhex
CAVS = dict(
    gir=H("4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52"),
    gir_new=H("863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330"),
    ni=H("32b50d5f4a3763f3"), nr=H("9206a04b26564cb1"),
    spii=H("34c9e7c188868785"), spir=H("3ff77d760d2b2199"),
    skeyseed=H("a9a7b222b59f8f48645f28a1db5b5f5d7479cba7"),
    dkm=H("a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002a2a63080e514a0"
          "62768b76606f9fa5e992204fc5a670bde3f10d6b027113936a5c55b648a194ae587b0088d52204"
          "b702c979fa280870d2ed41efa9c549fd11198af1670b143d384bd275c5f594cf266b05ebadca85"
          "5e4249520a441a81157435a7a56cc4"),
    dkm_child=H("8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c5811a8e7b5d1c"
                "dabd9560b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee71814ca6dbc8bb51b6309f5b"
                "9545c7eb35cf5580b1e521a8fe20754a2d883ba0c2cf285f524aea6545b33106bc03e61429"
                "6d319d41d4b50b3f510b1c0a22f3e664994d234cb4"),
    dkm_child_dh=H("bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d3730162819"
                   "0e38c66232eab4b3ab14c400a5197dd3730ed4820a8a10394d51e1c0400052f63ebd36"
                   "b0e7ef53aaed31eba4a5080d7d4b5666023a8bbb5ffb7857240f9a05884d1b7d2f9337"
                   "08450b7b3288f1fc863ab49fa901227cffc06e27899c7054d56fd74c"),
    skeyseed_rekey=H("63e81194946ebd05df7df5ebf5d8750056bf1f1d"),
)
SHA1 = PrfId.PRF_HMAC_SHA1


def test_skeyseed_cavs():
    v = CAVS
    assert keymat.skeyseed(SHA1, v["ni"], v["nr"], v["gir"]) == v["skeyseed"]


def test_prf_plus_dkm_cavs():
    v = CAVS
    dkm = keymat.prf_plus(SHA1, v["skeyseed"], v["ni"] + v["nr"] + v["spii"] + v["spir"], 132)
    assert dkm == v["dkm"]


def test_derive_ike_keys_splits_dkm_in_rfc_order():
    v = CAVS
    # SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr with 20-byte PRF, 20-byte integ
    # keys and 16-byte cipher keys = 20*3 + 20*2 + 16*2 = 132 bytes = the CAVS DKM.
    k = keymat.derive_ike_keys(SHA1, v["skeyseed"], v["ni"], v["nr"], v["spii"], v["spir"],
                               16, 20)
    d = v["dkm"]
    assert k.sk_d == d[:20] and k.sk_ai == d[20:40] and k.sk_ar == d[40:60]
    assert k.sk_ei == d[60:76] and k.sk_er == d[76:92]
    assert k.sk_pi == d[92:112] and k.sk_pr == d[112:132]


def test_child_keymat_cavs_without_and_with_pfs():
    v = CAVS
    sk_d = v["dkm"][:20]
    no_pfs = keymat.child_keymat(SHA1, sk_d, v["ni"], v["nr"], 36, 30)
    assert no_pfs.encr_i + no_pfs.integ_i + no_pfs.encr_r + no_pfs.integ_r == v["dkm_child"]
    pfs = keymat.child_keymat(SHA1, sk_d, v["ni"], v["nr"], 36, 30, g_ir=v["gir_new"])
    assert pfs.encr_i + pfs.integ_i + pfs.encr_r + pfs.integ_r == v["dkm_child_dh"]
    assert no_pfs.encr_i == v["dkm_child"][:36] and no_pfs.integ_r == v["dkm_child"][102:]


def test_skeyseed_rekey_cavs():
    v = CAVS
    assert keymat.skeyseed_rekey(SHA1, v["dkm"][:20], v["gir_new"], v["ni"], v["nr"]) == \
        v["skeyseed_rekey"]


def _hmac256(key: bytes, data: bytes) -> bytes:
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def test_prf_plus_matches_rfc7296_definition_sha256():
    # T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02), ... written out by hand.
    key, seed = b"k" * 32, b"seed"
    t1 = _hmac256(key, seed + b"\x01")
    t2 = _hmac256(key, t1 + seed + b"\x02")
    t3 = _hmac256(key, t2 + seed + b"\x03")
    assert keymat.prf_plus(PrfId.PRF_HMAC_SHA2_256, key, seed, 80) == (t1 + t2 + t3)[:80]


def test_ppk_mixing_rfc8784():
    # RFC 8784 §3: SK_d' = prf+(PPK, SK_d), SK_pi' = prf+(PPK, SK_pi), SK_pr' = prf+(PPK, SK_pr)
    prf = PrfId.PRF_HMAC_SHA2_256
    keys = keymat.IkeKeys(b"d" * 32, b"ai" * 16, b"ar" * 16, b"e" * 20, b"f" * 20,
                          b"p" * 32, b"q" * 32)
    ppk = bytes(range(32))
    mixed = keymat.ppk_mix(prf, ppk, keys)
    assert mixed.sk_d == _hmac256(ppk, keys.sk_d + b"\x01")
    assert mixed.sk_pi == _hmac256(ppk, keys.sk_pi + b"\x01")
    assert mixed.sk_pr == _hmac256(ppk, keys.sk_pr + b"\x01")
    assert (mixed.sk_ai, mixed.sk_ar, mixed.sk_ei, mixed.sk_er) == \
        (keys.sk_ai, keys.sk_ar, keys.sk_ei, keys.sk_er)
    assert mixed.sk_d != keys.sk_d


def test_rfc4868_hmac_sha256_prf_vector():
    # RFC 4868 §2.7.1 PRF-HMAC-SHA-256 test case 1: key 0x0b*20, "Hi There".
    out = keymat.prf(PrfId.PRF_HMAC_SHA2_256, b"\x0b" * 20, b"Hi There")
    assert out.hex() == ("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
