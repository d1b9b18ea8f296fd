"""GDOI codec (RFC 6407 §5): round trips, exact layouts, and hostile input.

Property tests: every payload we can build decodes back to itself; any byte string fed to
the decoder either decodes or raises RemoteIkeError (never another exception); truncating a
valid chain anywhere is an error, never a silent success.
"""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec.ike.errors import RemoteIkeError
from inline_ipsec.ike.v1.constants import IdType
from inline_ipsec.ike.v1.isakmp import (DeletePayload, HashPayload, IdPayload, NoncePayload,
                                        encode_chain)
from inline_ipsec.groupvpn.constants import DOI_GDOI, GdoiPayload
from inline_ipsec.groupvpn.payloads import (MAX_ATTRIBUTE_VALUE, Attr, GapPayload,
                                            GdoiSaPayload, KdPayload, KekPayload, KeyPacket,
                                            SeqPayload, TekPayload, TrafficId, decode_attrs,
                                            decode_chain)

attrs = st.lists(st.builds(Attr, st.integers(1, 0x7FFF),
                           st.one_of(st.integers(0, 0xFFFF), st.binary(max_size=40))),
                 max_size=6).map(tuple)
v4 = st.builds(lambda a, n: TrafficId.network(f"{a}/{n}"),
               st.ip_addresses(v=4), st.integers(8, 32))
v6 = st.builds(lambda a, n: TrafficId.network(f"{a}/{n}"),
               st.ip_addresses(v=6), st.integers(16, 128))
ids = st.one_of(v4, v6)
teks = st.builds(TekPayload, protocol_id=st.just(1), ip_protocol=st.integers(0, 255),
                 src=ids, dst=ids, transform_id=st.integers(0, 255),
                 spi=st.integers(0, 0xFFFFFFFF), attributes=attrs)
keks = st.builds(KekPayload, spi=st.binary(min_size=16, max_size=16), attributes=attrs,
                 protocol=st.integers(0, 255), src=ids, dst=ids)
gaps = st.builds(GapPayload, attributes=attrs)
sas = st.builds(GdoiSaPayload, kek=st.none() | keks, gap=st.none() | gaps,
                teks=st.lists(teks, max_size=4))
packets = st.builds(KeyPacket, kd_type=st.integers(1, 4),
                    spi=st.binary(max_size=16), attributes=attrs)
kds = st.builds(KdPayload, packets=st.lists(packets, max_size=4))
seqs = st.builds(SeqPayload, seq=st.integers(0, 0xFFFFFFFF))


def _same(x, y) -> None:
    assert type(x) is type(y)
    assert x.encode_body() == y.encode_body()


@settings(max_examples=150, deadline=None)
@given(sa=sas, kd=kds, seq=seqs)
def test_chain_round_trip(sa, kd, seq) -> None:
    chain = [HashPayload(b"h" * 32), seq, sa, kd]
    data = encode_chain(chain)
    back = decode_chain(GdoiPayload.HASH, data)
    assert [type(p) for p in back] == [type(p) for p in chain]
    for a, b in zip(chain, back):
        _same(a, b)
    # the nested SA attribute payloads come back in order and count
    assert back[2].kek is not None if sa.kek else back[2].kek is None
    assert len(back[2].teks) == len(sa.teks)
    assert b"".join(p.raw for p in back) == data


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([GdoiPayload.SA, GdoiPayload.KD, GdoiPayload.SEQ, GdoiPayload.HASH,
                        GdoiPayload.ID, GdoiPayload.NONCE]), st.binary(max_size=300))
def test_random_bytes_only_remote_errors(first, data) -> None:
    try:
        decode_chain(first, data)
    except RemoteIkeError:
        pass


@settings(max_examples=100, deadline=None)
@given(sa=sas, kd=kds, cut=st.integers(1, 10_000))
def test_truncation_is_an_error(sa, kd, cut) -> None:
    data = encode_chain([sa, kd])
    cut = cut % len(data)
    with pytest.raises(RemoteIkeError):
        decode_chain(GdoiPayload.SA, data[:cut])


def test_sa_layout_matches_rfc6407_5_1() -> None:
    """DOI 2, situation 0, 2-byte SA Attribute Next Payload, then the nested payloads inside
    the SA payload's length."""
    tek = TekPayload(spi=0x11223344, src=TrafficId.network("10.0.0.0/8"),
                     dst=TrafficId.network("10.1.2.3/32"), attributes=(Attr(1, 1),))
    body = GdoiSaPayload(teks=[tek]).encode_body()
    doi, sit, nxt, res = struct.unpack("!IIHH", body[:12])
    assert (doi, sit, nxt, res) == (DOI_GDOI, 0, GdoiPayload.SAT, 0)
    nested_next, _, nested_len = struct.unpack("!BBH", body[12:16])
    assert nested_next == 0 and nested_len == len(body) - 12
    t = body[16:]
    # Protocol-ID ESP, IP protocol, src type/port/len(2)
    assert t[0] == 1 and t[2] == IdType.ID_IPV4_ADDR_SUBNET
    assert struct.unpack("!H", t[5:7])[0] == 8
    assert t[7:15] == bytes([10, 0, 0, 0, 255, 0, 0, 0])
    assert t[15] == IdType.ID_IPV4_ADDR and struct.unpack("!H", t[18:20])[0] == 4
    assert t[24] == 12 and struct.unpack("!I", t[25:29])[0] == 0x11223344


def test_kek_layout_matches_rfc6407_5_3() -> None:
    k = KekPayload(spi=bytes(range(16)), src=TrafficId.network("192.0.2.1/32", 848),
                   dst=TrafficId.network("192.0.2.2/32", 848))
    b = k.encode_body()
    assert b[0] == 17 and b[1] == IdType.ID_IPV4_ADDR
    assert struct.unpack("!H", b[2:4])[0] == 848 and b[4] == 4    # 1-byte length
    assert b[9] == IdType.ID_IPV4_ADDR and b[12] == 4
    assert b[17:33] == bytes(range(16)) and b[33:37] == bytes(4)


def test_key_packet_length_counts_from_its_type() -> None:
    kp = KeyPacket(1, b"\x00\x00\x01\x00", (Attr(1, b"k" * 16),))
    enc = kp.encode()
    assert struct.unpack("!H", enc[2:4])[0] == len(enc)


def test_attribute_value_bound() -> None:
    big = struct.pack("!HH", 1, MAX_ATTRIBUTE_VALUE + 1) + bytes(MAX_ATTRIBUTE_VALUE + 1)
    with pytest.raises(RemoteIkeError):
        decode_attrs(big, "test")


def test_tek_outside_sa_is_rejected() -> None:
    data = encode_chain([TekPayload(spi=300)])
    with pytest.raises(RemoteIkeError):
        decode_chain(GdoiPayload.SAT, data)


def test_sa_of_another_doi_is_rejected() -> None:
    body = struct.pack("!IIHH", 1, 0, 0, 0)
    data = struct.pack("!BBH", 0, 0, 4 + len(body)) + body
    with pytest.raises(RemoteIkeError):
        decode_chain(GdoiPayload.SA, data)


def test_kek_after_tek_is_rejected() -> None:
    """RFC 6407 §5.1 order: KEK, GAP, TEKs."""
    tek = TekPayload(spi=300).encode_body()
    kek = KekPayload(spi=bytes(16)).encode_body()
    body = struct.pack("!IIHH", DOI_GDOI, 0, GdoiPayload.SAT, 0) + \
        struct.pack("!BBH", GdoiPayload.SAK, 0, 4 + len(tek)) + tek + \
        struct.pack("!BBH", 0, 0, 4 + len(kek)) + kek
    with pytest.raises(RemoteIkeError):
        GdoiSaPayload.decode(bytes(body))


def test_ipsec_payloads_still_decode() -> None:
    chain = [HashPayload(b"x" * 20), NoncePayload(b"n" * 16),
             IdPayload(IdType.ID_KEY_ID, b"\x00\x00\x00\x07"),
             DeletePayload(1, [b"\x00\x00\x01\x00"], doi=DOI_GDOI)]
    back = decode_chain(GdoiPayload.HASH, encode_chain(chain))
    assert back[2].data == b"\x00\x00\x00\x07" and back[3].spis == [b"\x00\x00\x01\x00"]


def test_traffic_id_networks() -> None:
    assert str(TrafficId.network("10.1.0.0/16").to_network()) == "10.1.0.0/16"
    assert str(TrafficId.network("2001:db8::1/128").to_network()) == "2001:db8::1/128"
    with pytest.raises(RemoteIkeError):
        TrafficId(IdType.ID_IPV4_ADDR_SUBNET, 0, bytes(4)).to_network()
    with pytest.raises(RemoteIkeError):
        TrafficId(IdType.ID_IPV4_ADDR_SUBNET, 0, bytes([10, 0, 0, 0, 255, 0, 255, 0])
                  ).to_network()


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
                 st.tuples(st.ip_addresses(v=6), st.integers(0, 128))))
def test_traffic_id_round_trip(addr_len) -> None:
    import ipaddress
    addr, plen = addr_len
    net = ipaddress.ip_network(f"{addr}/{plen}", strict=False)
    assert TrafficId.network(str(net)).to_network() == net
