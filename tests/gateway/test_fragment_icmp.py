"""RFC 791 fragmentation/reassembly and the ICMP errors, checked with scapy."""
from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, IPerror, UDP, defragment
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
from scapy.packet import Raw, raw

from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.packet.fragment import (FragmentError, Reassembler, fragment_ipv4,
                                          icmp_fragmentation_needed, icmpv6_packet_too_big,
                                          is_fragment)

BIG = udp_packet("10.1.0.10", "10.2.0.10", bytes(range(256)) * 12, ident=0x4242)


@pytest.mark.parametrize("mtu", [68, 576, 1000, 1400, 1500])
def test_fragments_follow_rfc791(mtu: int) -> None:
    frags = fragment_ipv4(BIG, mtu)
    assert len(frags) > 1
    offset = 0
    for i, f in enumerate(frags):
        p = IP(f)
        assert len(f) <= mtu
        assert p.id == 0x4242 and p.src == "10.1.0.10" and p.proto == 17
        recomputed = IP(bytes(f))
        del recomputed.chksum
        assert IP(raw(recomputed)).chksum == p.chksum            # checksum is right
        assert p.frag * 8 == offset
        last = i == len(frags) - 1
        assert bool(p.flags.MF) is not last
        if not last:
            assert (len(f) - 20) % 8 == 0                         # 8-byte units
        offset += len(f) - 20
    assert offset == len(BIG) - 20
    # two independent reassemblies: ours and scapy's
    r = Reassembler()
    assert [r.add(f) for f in frags][-1] == BIG
    assert raw(defragment([IP(f) for f in frags])[0]) == BIG


def test_reassembly_in_any_order() -> None:
    frags = fragment_ipv4(BIG, 600)
    r = Reassembler()
    out = [r.add(f) for f in reversed(frags)]
    assert out[:-1] == [None] * (len(frags) - 1) and out[-1] == BIG and len(r) == 0


@pytest.mark.parametrize("first_byte,total", [(0x44, None), (0x40, None), (0x46, 22),
                                              (0x45, 19), (0x45, 10_000)])
def test_reassembly_refuses_a_fragment_whose_header_lies(first_byte, total) -> None:
    frag = bytearray(fragment_ipv4(BIG, 600)[0])
    frag[0] = first_byte
    if total is not None:
        frag[2:4] = total.to_bytes(2, "big")
    r = Reassembler()
    with pytest.raises(FragmentError):
        r.add(bytes(frag))
    assert len(r) == 0


def test_small_packet_and_df() -> None:
    small = udp_packet("10.1.0.1", "10.2.0.1", b"x" * 100)
    assert fragment_ipv4(small, 1500) == [small]
    assert not is_fragment(small)
    with pytest.raises(FragmentError):
        fragment_ipv4(udp_packet("10.1.0.1", "10.2.0.1", bytes(2000), df=True), 1500)
    with pytest.raises(FragmentError):
        fragment_ipv4(BIG, 27)


def test_only_copied_options_in_later_fragments() -> None:
    # option 0x82 (security, copied flag set) and 0x07 (record route, not copied), RFC 791 §3.1
    security = bytes([0x82, 11]) + bytes(9)
    record_route = bytes([0x07, 7, 4]) + bytes(4)
    options = security + record_route
    options += bytes(-len(options) % 4)
    pkt = raw(IP(src="10.1.0.1", dst="10.2.0.1", options=[]) / UDP() / Raw(bytes(3000)))
    hdr = bytearray(pkt[:20])
    hdr[0] = 0x40 | (20 + len(options)) // 4
    body = pkt[20:]
    struct.pack_into("!H", hdr, 2, 20 + len(options) + len(body))
    hdr[10:12] = b"\0\0"
    full = IP(bytes(hdr) + options + body)
    del full.chksum
    full = raw(full)
    frags = fragment_ipv4(full, 1000)
    first, second = IP(frags[0]), IP(frags[1])
    assert first.ihl * 4 == 20 + len(options)
    assert second.ihl * 4 == 32                         # security option (11) padded to 12
    assert frags[1][20:31] == security and frags[1][31] == 0
    assert bytes([0x07, 7]) not in frags[1][20:32]      # record route is not copied
    assert Reassembler().add(frags[0]) is None
    r = Reassembler()
    assert [r.add(f) for f in frags][-1] == full


def test_icmp_fragmentation_needed_is_rfc792_type3_code4() -> None:
    offending = udp_packet("10.1.0.10", "10.2.0.10", bytes(1472), df=True)
    msg = icmp_fragmentation_needed(offending, 1446, "10.1.255.1")
    p = IP(msg)
    assert p.src == "10.1.255.1" and p.dst == "10.1.0.10" and p.proto == 1
    icmp = p[ICMP]
    assert (icmp.type, icmp.code, icmp.nexthopmtu) == (3, 4, 1446)
    fresh = ICMP(raw(icmp))
    del fresh.chksum
    assert ICMP(raw(fresh)).chksum == icmp.chksum
    chk = IP(msg)
    del chk.chksum
    assert IP(raw(chk)).chksum == p.chksum
    # the quoted header is the offending packet's, plus its first 8 data bytes (RFC 792)
    assert bytes(icmp.payload)[:28] == offending[:28]
    assert isinstance(icmp.payload, IPerror) and icmp.payload.dst == "10.2.0.10"


def test_icmpv6_packet_too_big_is_rfc4443() -> None:
    offending = udp_packet("2001:db8:a::10", "2001:db8:b::10", bytes(1452))
    msg = icmpv6_packet_too_big(offending, 1426, "2001:db8:a::1")
    assert len(msg) <= 1280                             # RFC 4443 §2.4 (c)
    p = IPv6(msg)
    assert p.nh == 58 and p.src == "2001:db8:a::1" and p.dst == "2001:db8:a::10"
    ptb = p[ICMPv6PacketTooBig]
    assert (ptb.type, ptb.code, ptb.mtu) == (2, 0, 1426)
    fresh = IPv6(msg)
    del fresh[ICMPv6PacketTooBig].cksum
    assert IPv6(raw(fresh))[ICMPv6PacketTooBig].cksum == ptb.cksum
    assert msg[48:] == offending[:1280 - 48]
