"""ISAKMP codec (RFC 2408 §3): against scapy's independent ISAKMP layer, round trips, and
hypothesis fuzzing (any bytes decode or raise `RemoteIkeError`, nothing else)."""
from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.isakmp import (ISAKMP, ISAKMP_payload_Delete, ISAKMP_payload_Hash,
                                 ISAKMP_payload_ID, ISAKMP_payload_KE, ISAKMP_payload_Nonce,
                                 ISAKMP_payload_Notify, ISAKMP_payload_SA,
                                 ISAKMP_payload_VendorID)

from inline_ipsec.ike.errors import RemoteIkeError
from inline_ipsec.ike.payloads import TrafficSelector
from inline_ipsec.ike.v1.constants import (ExchangeType, IdType, NotifyType, PayloadType,
                                           ProtocolId)
from inline_ipsec.ike.v1.isakmp import (Attribute, CertPayload, DeletePayload,
                                        FragmentPayload, HashPayload, IdPayload, IsakmpHeader,
                                        KePayload, NatDPayload, NatOaPayload, NoncePayload,
                                        NotifyPayload, Proposal, SaPayload, SigPayload,
                                        Transform, VendorIdPayload, decode, decode_chain,
                                        encode, encode_chain)
from inline_ipsec.ike.v1.proposals import Phase1Proposal, Phase1Suite, phase1_proposal

CKY_I, CKY_R = bytes.fromhex("0102030405060708"), bytes.fromhex("a1a2a3a4a5a6a7a8")


def _mm1() -> bytes:
    suites = [Phase1Suite.of(Phase1Proposal("pre-shared-keys", "aes-256-cbc", "sha-256", 14,
                                            28800)),
              Phase1Suite.of(Phase1Proposal("rsa-signatures", "3des-cbc", "sha1", 2, 86400))]
    hdr = IsakmpHeader(CKY_I, bytes(8), 0, ExchangeType.MAIN, 0, 0)
    return encode(hdr, [SaPayload([phase1_proposal(suites)]), VendorIdPayload(b"v" * 16)])


def test_main_mode_message_1_reads_in_scapy():
    pkt = ISAKMP(_mm1())
    assert pkt.init_cookie == CKY_I and pkt.exch_type == 2 and pkt.length == len(_mm1())
    sa = pkt[ISAKMP_payload_SA]
    assert sa.doi == 1 and sa.situation == 1
    prop = sa.prop
    assert prop.proto == 1 and prop.trans_nb == 2
    t1 = dict(prop.trans.transforms)     # scapy names the RFC 2409 Appendix A values
    assert t1["Encryption"] == "AES-CBC" and t1["KeyLength"] == 256
    assert t1["Hash"] == "SHA2-256" and t1["GroupDesc"] == "2048MODPgr"
    assert t1["Authentication"] == "PSK" and t1["LifeType"] == "Seconds"
    assert t1["LifeDuration"] == 28800
    t2 = dict(prop.trans.payload.transforms)
    assert (t2["Encryption"], t2["Hash"], t2["GroupDesc"], t2["Authentication"]) == \
        ("3DES-CBC", "SHA", "1024MODPgr", "RSA Sig")
    assert t2["LifeDuration"] == 86400
    assert pkt[ISAKMP_payload_VendorID].VendorID == b"v" * 16


def test_scapy_built_message_decodes():
    pkt = (ISAKMP(init_cookie=CKY_I, resp_cookie=CKY_R, exch_type=2, next_payload=4)
           / ISAKMP_payload_KE(ke=b"K" * 256, next_payload=10)
           / ISAKMP_payload_Nonce(nonce=b"N" * 32, next_payload=13)
           / ISAKMP_payload_VendorID(VendorID=b"V" * 16, next_payload=8)
           / ISAKMP_payload_Hash(hash=b"H" * 20, next_payload=5)
           / ISAKMP_payload_ID(IDtype=2, ProtoID=17, Port=500, IdentData=b"peer.example",
                               next_payload=11)
           / ISAKMP_payload_Notify(proto=1, SPIsize=16, notify_msg_type=24578,
                                   SPI=CKY_I + CKY_R, next_payload=12)
           / ISAKMP_payload_Delete(proto=3, SPIsize=4, SPIcount=2, SPIs=[b"\0\0\1\0",
                                                                         b"\0\0\2\0"]))
    msg = decode(bytes(pkt))
    ke, nonce, vid, h, idp, n, d = msg.payloads
    assert isinstance(ke, KePayload) and ke.data == b"K" * 256
    assert isinstance(nonce, NoncePayload) and nonce.nonce == b"N" * 32
    assert isinstance(vid, VendorIdPayload) and isinstance(h, HashPayload)
    assert isinstance(idp, IdPayload) and (idp.id_type, idp.protocol, idp.port, idp.data) == \
        (2, 17, 500, b"peer.example")
    assert isinstance(n, NotifyPayload) and n.notify_type == NotifyType.INITIAL_CONTACT and \
        n.spi == CKY_I + CKY_R and n.protocol == ProtocolId.ISAKMP
    assert isinstance(d, DeletePayload) and d.spis == [b"\0\0\1\0", b"\0\0\2\0"]
    # raw keeps the payload as received (RFC 2409 hashes payloads as sent)
    assert idp.raw[4:] == bytes([2, 17, 1, 244]) + b"peer.example"


def test_quick_mode_sa_reads_in_scapy():
    from inline_ipsec.ike.v1.proposals import phase2_proposal
    p = phase2_proposal(["aes256-sha256-modp2048"], ProtocolId.ESP, 0xC0FFEE01, 3, 3600,
                        4608000, pfs_only=14)
    body = encode_chain([SaPayload([p])])
    scapy_sa = ISAKMP_payload_SA(body)
    prop = scapy_sa.prop
    assert prop.proto == 3 and prop.SPI == bytes.fromhex("c0ffee01")
    assert prop.trans.transform_id == 12        # ESP_AES (RFC 2407 §4.4.4)
    raw = bytes(prop.trans)[8:]                  # attributes of the transform
    attrs = []
    while raw:
        t, v = struct.unpack_from("!HH", raw)
        if t & 0x8000:
            attrs.append((t & 0x7FFF, v))
            raw = raw[4:]
        else:
            attrs.append((t, int.from_bytes(raw[4:4 + v], "big")))
            raw = raw[4 + v:]
    assert (1, 1) in attrs and (2, 3600) in attrs and (1, 2) in attrs and (2, 4608000) in attrs
    assert (3, 14) in attrs and (4, 3) in attrs and (5, 5) in attrs and (6, 256) in attrs


@pytest.mark.parametrize("payload", [
    SaPayload([Proposal(1, 3, b"\x01\x02\x03\x04", [
        Transform(1, 12, (Attribute(4, 1), Attribute(2, 28800, tlv=True),
                          Attribute(2, 0x123456789))), Transform(2, 3, ())])]),
    KePayload(b"k" * 65), NoncePayload(b"n" * 8), NoncePayload(b"n" * 256),
    IdPayload(IdType.ID_IPV4_ADDR_SUBNET, bytes([10, 1, 0, 0, 255, 255, 255, 0]), 6, 80),
    CertPayload(4, b"der"), SigPayload(b"s" * 64), NatDPayload(b"d" * 32),
    NotifyPayload(NotifyType.R_U_THERE, b"\0\0\0\1", ProtocolId.ISAKMP, CKY_I + CKY_R),
    DeletePayload(ProtocolId.ISAKMP, [CKY_I + CKY_R]), VendorIdPayload(b""),
    NatOaPayload(IdType.ID_IPV6_ADDR, bytes(16)), FragmentPayload(7, 3, True, b"frag"),
])
def test_round_trip(payload):
    data = encode_chain([payload])
    (back,) = decode_chain(payload.ptype, data)
    assert back == payload and back.raw == data


def test_selectors_as_client_ids():
    """RFC 2407 §4.6.2: hosts as ADDR, prefixes as ADDR_SUBNET, the rest as ADDR_RANGE."""
    cases = [("10.1.0.0/24", IdType.ID_IPV4_ADDR_SUBNET), ("10.1.0.7/32", IdType.ID_IPV4_ADDR),
             ("2001:db8::/48", IdType.ID_IPV6_ADDR_SUBNET), ("0.0.0.0/0",
                                                           IdType.ID_IPV4_ADDR_SUBNET)]
    for net, id_type in cases:
        ts = TrafficSelector.from_network(net)
        p = IdPayload.from_selector(ts)
        assert p.id_type == id_type and p.to_selector() == ts
    rng = TrafficSelector(ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("10.0.0.9"),
                          17, 53, 53)
    p = IdPayload.from_selector(rng)
    assert p.id_type == IdType.ID_IPV4_ADDR_RANGE and p.port == 53 and p.to_selector() == rng


@pytest.mark.parametrize("id_type, data", [
    (IdType.ID_IPV4_ADDR_SUBNET, bytes([10, 0, 0, 0, 255, 0, 255, 0])),   # holes in the mask
    (IdType.ID_IPV4_ADDR_RANGE, bytes([10, 0, 0, 9, 10, 0, 0, 1])),       # start above end
    (IdType.ID_IPV4_ADDR, bytes(5)), (IdType.ID_FQDN, b"host"),
])
def test_bad_client_ids_are_invalid_id_information(id_type, data):
    with pytest.raises(RemoteIkeError) as err:
        IdPayload(id_type, data).to_selector()
    assert err.value.notify_hint == NotifyType.INVALID_ID_INFORMATION


@pytest.mark.parametrize("mutate, hint", [
    (lambda m: m[:20], NotifyType.PAYLOAD_MALFORMED),                       # truncated header
    (lambda m: m[:17] + b"\x20" + m[18:], NotifyType.INVALID_MAJOR_VERSION),
    (lambda m: m + b"\0", NotifyType.UNEQUAL_PAYLOAD_LENGTHS),
    (lambda m: bytes(8) + m[8:], NotifyType.INVALID_COOKIE),
    (lambda m: m[:28 + 2] + b"\xff\xff" + m[28 + 4:], NotifyType.PAYLOAD_MALFORMED),
    (lambda m: m[:16] + b"\x02" + m[17:], NotifyType.INVALID_PAYLOAD_TYPE),  # bare proposal
    (lambda m: m[:32] + b"\0\0\0\2" + m[36:], NotifyType.DOI_NOT_SUPPORTED),
])
def test_malformed_messages_get_typed_errors(mutate, hint):
    with pytest.raises(RemoteIkeError) as err:
        decode(mutate(_mm1()))
    assert err.value.notify_hint == hint


def test_limits_on_counts():
    many = encode_chain([VendorIdPayload(b"x")] * 65)
    hdr = IsakmpHeader(CKY_I, CKY_R, PayloadType.VENDOR_ID, 2, 0, 0, 28 + len(many))
    with pytest.raises(RemoteIkeError, match="more than 64 payloads"):
        decode(hdr.encode() + many)
    transforms = [Transform(i, 1, ()) for i in range(65)]
    body = encode_chain([SaPayload([Proposal(1, 1, b"", transforms)])])
    with pytest.raises(RemoteIkeError):
        decode_chain(PayloadType.SA, body)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_only_raise_remote_errors(data):
    for blob in (data, CKY_I + data, _mm1()[:28] + data):
        try:
            msg = decode(blob)
        except RemoteIkeError:
            continue
        assert msg.raw == blob


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=8), st.booleans())
def test_fuzz_mutated_valid_message(pos, patch, truncate):
    base = _mm1()
    i = pos % len(base)
    blob = base[:i] + patch + base[i + len(patch):]
    if truncate:
        blob = blob[:i + 1]
    try:
        msg = decode(blob)
    except RemoteIkeError:
        return
    assert msg.raw == blob and msg.header.length == len(blob)
    if not msg.header.encrypted:    # an unencrypted chain covers the message exactly
        assert sum(len(p.raw) for p in msg.payloads) == len(blob) - 28
        assert encode_chain(msg.payloads) == blob[28:] or any(
            isinstance(p, SaPayload) for p in msg.payloads)   # attribute forms may differ


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0x7FFF), st.integers(0, 2 ** 64 - 1),
                          st.booleans()), max_size=8),
       st.integers(0, 255), st.integers(0, 255))
def test_fuzz_sa_round_trip(attrs, num, tid):
    t = Transform(num, tid, tuple(Attribute(a, v, tlv) for a, v, tlv in attrs))
    sa = SaPayload([Proposal(1, 3, b"\x00\x00\x10\x00", [t])])
    (back,) = decode_chain(PayloadType.SA, encode_chain([sa]))
    assert [(a.type, a.value) for a in back.proposals[0].transforms[0].attributes] == \
        [(a, v) for a, v, _ in attrs]
