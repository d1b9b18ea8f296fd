"""Codec tests (RFC 7296 §3): payload round trips, SK protection, malformed input.

Malformed or truncated input must raise RemoteIkeError with notify hint INVALID_SYNTAX (or
UNSUPPORTED_CRITICAL_PAYLOAD / INVALID_MAJOR_VERSION where the RFC names those) and nothing
else, whatever the bytes.
"""
import dataclasses
import ipaddress
import struct

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from inline_ipsec.ike.constants import (DhGroup, EncrId, ExchangeType, HeaderFlag, IntegId,
                                        NotifyType, PayloadType, PrfId, ProtocolId,
                                        TransformType)
from inline_ipsec.ike.errors import RemoteIkeError
from inline_ipsec.ike.message import (HEADER_LEN, IkeHeader, decode_chain, decode_message,
                                      encode_chain, encode_message)
from inline_ipsec.ike.payloads import (AuthPayload, CertPayload, CertReqPayload, DeletePayload,
                                       EncryptedPayload, IdiPayload, IdrPayload, KePayload,
                                       NoncePayload, NotifyPayload, Proposal, SaPayload,
                                       Transform, TrafficSelector, TsiPayload, TsrPayload,
                                       UnknownPayload, VendorIdPayload)
from inline_ipsec.ike.protection import IntegrityCheckFailed, KeyExchange, SkCipher
from inline_ipsec.ike.proposals import Suite, parse_proposal

SPI_I = bytes.fromhex("0102030405060708")
SPI_R = bytes.fromhex("1112131415161718")


def _header(exchange=ExchangeType.IKE_SA_INIT, mid=0, flags=HeaderFlag.INITIATOR):
    return IkeHeader(SPI_I, SPI_R, 0, exchange, flags, mid)


def _all_payloads():
    ts = TrafficSelector(ipaddress.ip_address("10.0.0.0"), ipaddress.ip_address("10.0.0.255"),
                         6, 80, 443)
    ts6 = TrafficSelector.from_network("2001:db8::/32")
    return [
        SaPayload([parse_proposal("aes128gcm16-prfsha256-ecp256"),
                   Proposal(2, ProtocolId.ESP, b"\x00\x00\x12\x34",
                            [Transform(TransformType.ENCR, EncrId.ENCR_AES_CBC, 256),
                             Transform(TransformType.INTEG, IntegId.AUTH_HMAC_SHA2_256_128),
                             Transform(TransformType.ESN, 0)])]),
        KePayload(DhGroup.ECP_256, b"\x04" * 64),
        NoncePayload(b"n" * 32),
        IdiPayload(2, b"a.example"),
        IdrPayload(1, bytes([192, 0, 2, 1])),
        AuthPayload(2, b"\xaa" * 32),
        CertPayload(4, b"cert"),
        CertReqPayload(4, b"\x01" * 20),
        NotifyPayload(NotifyType.REKEY_SA, b"", ProtocolId.ESP, b"\xde\xad\xbe\xef"),
        DeletePayload(ProtocolId.ESP, [b"\x00\x00\x01\x00", b"\x00\x00\x02\x00"]),
        DeletePayload(ProtocolId.IKE, []),
        VendorIdPayload(b"vendor"),
        TsiPayload([ts, ts6]),
        TsrPayload([TrafficSelector.from_network("0.0.0.0/0")]),
    ]


def test_round_trip_every_payload_type():
    payloads = _all_payloads()
    wire = encode_message(_header(), payloads)
    msg = decode_message(wire)
    assert msg.header.spi_i == SPI_I and msg.header.spi_r == SPI_R
    assert msg.header.length == len(wire)
    assert msg.payloads == payloads
    assert encode_message(_header(), msg.payloads) == wire


def test_header_fields_on_the_wire():
    wire = encode_message(_header(ExchangeType.IKE_AUTH, 7, HeaderFlag.RESPONSE),
                          [NoncePayload(b"x" * 16)])
    # RFC 7296 §3.1: next payload at 16, version 0x20 at 17, exchange at 18, flags at 19.
    assert wire[16] == PayloadType.NONCE and wire[17] == 0x20
    assert wire[18] == 35 and wire[19] == 0x20
    assert struct.unpack("!II", wire[20:28]) == (7, len(wire))


def test_unknown_noncritical_payload_is_kept_and_critical_is_rejected():
    body = NoncePayload(b"y" * 16)
    unknown = UnknownPayload(type=200, body=b"zz")
    wire = encode_message(_header(), [unknown, body])
    msg = decode_message(wire)
    assert isinstance(msg.payloads[0], UnknownPayload) and msg.payloads[1] == body
    crit = bytearray(wire)
    crit[HEADER_LEN + 1] = 0x80  # critical bit of the unknown payload
    with pytest.raises(RemoteIkeError) as exc:
        decode_message(bytes(crit))
    assert exc.value.notify_hint == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD


@pytest.mark.parametrize("mutate, hint", [
    (lambda w: w[:20], NotifyType.INVALID_SYNTAX),                    # shorter than header
    (lambda w: w[:-1], NotifyType.INVALID_SYNTAX),                    # length mismatch
    (lambda w: w[:17] + b"\x30" + w[18:], NotifyType.INVALID_MAJOR_VERSION),
    (lambda w: w + b"\x00", NotifyType.INVALID_SYNTAX),
])
def test_malformed_header(mutate, hint):
    wire = encode_message(_header(), [NoncePayload(b"n" * 16)])
    with pytest.raises(RemoteIkeError) as exc:
        decode_message(mutate(wire))
    assert exc.value.notify_hint == hint


def test_payload_length_beyond_message_is_invalid_syntax():
    wire = bytearray(encode_message(_header(), [NoncePayload(b"n" * 16)]))
    struct.pack_into("!H", wire, HEADER_LEN + 2, 200)
    with pytest.raises(RemoteIkeError) as exc:
        decode_message(bytes(wire))
    assert exc.value.notify_hint == NotifyType.INVALID_SYNTAX


def test_short_nonce_is_invalid_syntax():
    with pytest.raises(RemoteIkeError) as exc:
        decode_chain(PayloadType.NONCE, b"\x00\x00\x00\x08" + b"abcd")
    assert exc.value.notify_hint == NotifyType.INVALID_SYNTAX


def test_sk_payload_is_last_and_opaque():
    wire = encode_message(_header(ExchangeType.IKE_AUTH), [NoncePayload(b"n" * 16)])
    msg = decode_message(wire)
    assert not any(isinstance(p, EncryptedPayload) for p in msg.payloads)


# ---- fuzzing: the parser never raises anything but RemoteIkeError ------------------------

def _valid_wire() -> bytes:
    return encode_message(_header(), _all_payloads())


#: The notifies a malformed message may be answered with (module docstring).
REJECTIONS = {NotifyType.INVALID_SYNTAX, NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
              NotifyType.INVALID_MAJOR_VERSION}


def _decode_or_reject(data: bytes) -> str:
    """Decode `data`: either a RemoteIkeError with one of REJECTIONS, or a message that is
    consistent with the bytes and whose payloads survive being encoded and decoded again."""
    try:
        msg = decode_message(data)
    except RemoteIkeError as exc:
        assert exc.notify_hint in REJECTIONS
        return "rejected"
    assert msg.raw == data and msg.header.length == len(data)
    assert msg.header.next_payload == (msg.payloads[0].ptype if msg.payloads
                                       else PayloadType.NONE)
    again = decode_chain(msg.header.next_payload, encode_chain(msg.payloads))
    assert [(p.ptype, _comparable(p)) for p in again] == \
        [(p.ptype, _comparable(p)) for p in msg.payloads]
    return "accepted"


def _comparable(p):
    """A payload without where it sat in the message (SK/SKF remember their offset)."""
    return dataclasses.replace(p, offset=0) if hasattr(p, "offset") else p


def _header_verdict(data: bytes):
    """What the fixed header alone decides (RFC 7296 §3.1), or None if it is acceptable."""
    if len(data) < HEADER_LEN:
        return NotifyType.INVALID_SYNTAX
    if data[17] >> 4 != 2:
        return NotifyType.INVALID_MAJOR_VERSION
    if struct.unpack_from("!I", data, 24)[0] != len(data):
        return NotifyType.INVALID_SYNTAX
    return None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data):
    verdict = _header_verdict(data)
    event(_decode_or_reject(data))
    if verdict is not None:
        with pytest.raises(RemoteIkeError) as exc:
            decode_message(data)
        assert exc.value.notify_hint == verdict


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(PayloadType)), st.binary(max_size=300))
def test_fuzz_random_chains_behind_a_valid_header(first, chain):
    """Past the header checks: random payload chains."""
    header = IkeHeader(SPI_I, SPI_R, first, ExchangeType.IKE_SA_INIT, HeaderFlag.INITIATOR,
                       0, HEADER_LEN + len(chain))
    data = header.encode() + chain
    assert _header_verdict(data) is None
    event(_decode_or_reject(data))


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=2000))
def test_fuzz_truncated_valid_message(cut):
    wire = _valid_wire()
    data = wire[:cut % len(wire)]
    with pytest.raises(RemoteIkeError) as exc:
        decode_message(data)
    assert exc.value.notify_hint == NotifyType.INVALID_SYNTAX


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_fuzz_mutated_valid_message(data):
    wire = bytearray(_valid_wire())
    n = data.draw(st.integers(min_value=1, max_value=8))
    for _ in range(n):
        pos = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
        wire[pos] = data.draw(st.integers(min_value=0, max_value=255))
    fix_length = data.draw(st.booleans())
    if fix_length:
        struct.pack_into("!I", wire, 24, len(wire))
    event(_decode_or_reject(bytes(wire)))


def test_unmutated_valid_message_is_accepted():
    """The mutation tests' baseline."""
    assert _decode_or_reject(_valid_wire()) == "accepted"


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=255), st.binary(max_size=300))
def test_fuzz_payload_bodies(ptype, body):
    chain = struct.pack("!BBH", 0, 0, 4 + len(body)) + body
    try:
        payloads = decode_chain(ptype, chain)
    except RemoteIkeError as exc:
        assert exc.notify_hint in REJECTIONS
        event("rejected")
        return
    event("accepted")
    assert len(payloads) == 1 and payloads[0].ptype == ptype
    again = decode_chain(ptype, encode_chain(payloads))
    assert [_comparable(p) for p in again] == [_comparable(p) for p in payloads]


# ---- SK payload protection (RFC 7296 §3.14, RFC 5282) -----------------------------------

SUITES = [
    (Suite(EncrId.ENCR_AES_GCM_16, 128, prf=PrfId.PRF_HMAC_SHA2_256), 20, 0),
    (Suite(EncrId.ENCR_AES_GCM_16, 256, prf=PrfId.PRF_HMAC_SHA2_256), 36, 0),
    (Suite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128), 16, 32),
    (Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_384_192), 32, 48),
    (Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_512_256), 32, 64),
]


@pytest.mark.parametrize("suite, ek, ak", SUITES)
def test_sk_seal_open_round_trip_and_tamper(suite, ek, ak):
    assert suite.encr_key_len == ek and suite.integ_key_len == ak
    enc_key, integ_key = bytes(range(ek)), bytes(range(100, 100 + ak))
    inner = [IdiPayload(2, b"a.example"), AuthPayload(2, b"x" * 32)]
    wire = SkCipher(suite, enc_key, integ_key).seal(_header(ExchangeType.IKE_AUTH, 1), inner)
    msg = decode_message(wire)
    assert isinstance(msg.payloads[-1], EncryptedPayload)
    assert msg.payloads[-1].first_inner == PayloadType.IDi
    assert SkCipher(suite, enc_key, integ_key).open(msg) == inner
    # Any flipped bit, in the header (AAD / ICV-covered) or the ciphertext, is rejected.
    for pos in (19, len(wire) - 20, len(wire) - 1):
        bad = bytearray(wire)
        bad[pos] ^= 0x01
        with pytest.raises(IntegrityCheckFailed):
            SkCipher(suite, enc_key, integ_key).open(decode_message(bytes(bad)))


def test_gcm_sk_layout_rfc5282():
    suite = SUITES[0][0]
    wire = SkCipher(suite, bytes(20)).seal(_header(ExchangeType.IKE_AUTH, 1),
                                          [NoncePayload(b"n" * 16)])
    # header 28 + SK generic header 4 + IV 8 + plaintext (20 + pad length byte) + ICV 16
    assert len(wire) == 28 + 4 + 8 + 21 + 16
    assert wire[16] == PayloadType.SK and wire[HEADER_LEN] == PayloadType.NONCE


@pytest.mark.parametrize("group, size", [(DhGroup.MODP_2048, 256), (DhGroup.ECP_256, 64),
                                         (DhGroup.ECP_384, 96), (DhGroup.ECP_521, 132),
                                         (DhGroup.CURVE25519, 32)])
def test_dh_groups_agree(group, size):
    a, b = KeyExchange(group), KeyExchange(group)
    assert len(a.public) == size
    assert a.shared_secret(b.public) == b.shared_secret(a.public)


@pytest.mark.parametrize("group", [DhGroup.MODP_2048, DhGroup.ECP_256, DhGroup.CURVE25519])
def test_dh_rejects_bad_public_values(group):
    a = KeyExchange(group)
    for bad in (b"", b"\x01" * 3, bytes(len(a.public))):
        with pytest.raises(RemoteIkeError) as exc:
            a.shared_secret(bad)
        assert exc.value.notify_hint == NotifyType.INVALID_SYNTAX


_transforms = st.builds(Transform, st.integers(1, 5), st.integers(0, 0xFFFF),
                        st.one_of(st.none(), st.integers(0, 0xFFFF)))
_proposals = st.builds(Proposal,
                       st.integers(1, 255), st.integers(1, 3), st.binary(max_size=8),
                       st.lists(_transforms, min_size=1, max_size=8))


@given(st.lists(_proposals, min_size=1, max_size=4))
def test_sa_payload_round_trip_property(proposals):
    """RFC 7296 §3.3: any SA payload we encode decodes to the same proposals (the decoder
    reads by offsets); every strict prefix is an INVALID_SYNTAX, never another exception."""
    sa = SaPayload(proposals)
    body = sa.encode_body()
    assert SaPayload.decode(body) == sa
    for cut in {0, 1, 7, len(body) // 2, len(body) - 1}:
        if 0 <= cut < len(body):
            with pytest.raises(RemoteIkeError):
                SaPayload.decode(body[:cut])
