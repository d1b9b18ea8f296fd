"""packet/ip.py helpers: RFC 1071 checksums against a word-by-word reference and scapy, the
DS field of IPv4 and IPv6, DF rules, IPv6 extension-header walking."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.packet import raw

from inline_ipsec.packet import ip


def reference_checksum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_checksum_matches_the_word_by_word_sum(data):
    assert ip.internet_checksum(data) == reference_checksum(data)


def test_checksum_edge_cases():
    assert ip.internet_checksum(b"") == 0xFFFF
    assert ip.internet_checksum(b"\xff\xff") == 0x0000          # -0: sum 0xFFFF
    assert ip.internet_checksum(b"\x00\x00\x00\x00") == 0xFFFF


def test_ipv4_and_udp6_checksums_like_scapy():
    hdr = bytearray(raw(IP(src="1.2.3.4", dst="5.6.7.8", ttl=9, tos=0x10, id=77) / b"x"))
    want = bytes(hdr[10:12])
    ip.ipv4_set_checksum(hdr, 0)
    assert bytes(hdr[10:12]) == want and ip.ipv4_checksum_ok(hdr, 0)
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=4500, dport=4500) / b"abc"
    wire = raw(pkt)
    udp = bytearray(wire[40:])
    udp[6:8] = b"\x00\x00"
    assert ip.udp6_checksum(wire[8:24], wire[24:40], bytes(udp)) == \
        struct.unpack("!H", wire[46:48])[0]


@pytest.mark.parametrize("v6", [False, True])
def test_get_and_set_ds_field(v6):
    pkt = bytearray(raw(IPv6(tc=0xB9, fl=0xABCDE) if v6 else IP(tos=0xB9)))
    assert ip.get_tos(pkt, 0) == 0xB9
    ip.set_tos(pkt, 0, 0x2A)
    assert ip.get_tos(pkt, 0) == 0x2A
    if v6:
        assert IPv6(bytes(pkt)).fl == 0xABCDE and IPv6(bytes(pkt)).version == 6


def test_df_rules():
    assert ip.outer_df("clear", True) == 0 and ip.outer_df("set", False) == 0x40
    assert ip.outer_df("copy", True) == 0x40 and ip.outer_df("copy", False) == 0
    assert ip.inner_df(raw(IP(flags="DF")), 0) and not ip.inner_df(raw(IP()), 0)
    assert ip.inner_df(raw(IPv6()), 0)


def test_decap_ds_field():
    assert ip.decap_ds_field(0x28 | 2, 0xB8 | 3, copy_dscp=False) == 0x28 | 3
    assert ip.decap_ds_field(0x28 | 2, 0xB8 | 3, copy_dscp=True) == 0xB8 | 3
    assert ip.decap_ds_field(0x28, 0xB8 | 3, copy_dscp=True) is None


def test_ipv6_walk():
    pkt = raw(IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() /
              UDP())
    proto, pos, field = ip.ipv6_walk(pkt, 0, len(pkt))
    assert proto == 17 and pos == len(pkt) - 8 and pkt[field] == 17
    with pytest.raises(ValueError):
        ip.ipv6_walk(pkt[:45], 0, 45)
    assert ip.ip_packet_length(pkt, 0, len(pkt)) == len(pkt)
    assert ip.ip_packet_length(pkt, 0, len(pkt) - 1) == -1
    assert ip.ip_packet_length(b"\x45" + bytes(19), 0, 20) == -1   # total length 0 < IHL


def test_zero_mutable_options():
    buf = bytearray([148, 4, 0, 0, 1, 7, 7, 4, 1, 2, 3, 4, 0, 9, 9, 9])  # RA, NOP, RR, EOL
    ip.ipv4_zero_mutable_options(buf, 0, len(buf))
    assert buf == bytearray([148, 4, 0, 0, 1]) + bytes(11)
    with pytest.raises(ValueError):
        ip.ipv4_zero_mutable_options(bytearray([7, 40, 0]), 0, 3)
