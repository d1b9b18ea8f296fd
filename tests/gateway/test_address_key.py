"""The routing caches' key: source and destination address bytes of an inner packet (RFC 791
§3.1, RFC 8200 §3), the same addresses `inner_addresses` parses, or None when the packet is
not IPv4 or IPv6."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

from inline_ipsec.dataplane.routing import address_key, inner_addresses


@pytest.mark.parametrize("packet", [
    bytes(IP(src="10.1.0.5", dst="10.2.0.7") / UDP()),
    bytes(IPv6(src="2001:db8:1::5", dst="2001:db8:2::7") / UDP()),
])
def test_the_key_is_both_addresses_as_on_the_wire(packet: bytes) -> None:
    key = address_key(packet)
    src, dst = inner_addresses(packet)
    assert key == src.packed + dst.packed


@pytest.mark.parametrize("packet", [
    b"",
    bytes(IP(src="10.1.0.5", dst="10.2.0.7"))[:19],          # shorter than an IPv4 header
    bytes(IPv6(src="::1", dst="::2"))[:39],                  # shorter than an IPv6 header
    b"\x50" + bytes(59),                                     # version 5
])
def test_no_key_for_what_is_not_an_ip_packet(packet: bytes) -> None:
    assert address_key(packet) is None
    assert inner_addresses(packet) is None
