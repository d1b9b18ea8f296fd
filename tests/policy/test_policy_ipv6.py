"""A policy-based VPN for IPv6 inner traffic (manual SAs over IPv4): proxy IDs of the IPv6
addresses, zones from IPv6 connected and inet6.0 static routes, default deny for IPv6."""
from __future__ import annotations

import struct

from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.gateway.traffic import udp_packet


def config(side: str) -> str:
    me, peer = ("192.0.2.1", "198.51.100.1") if side == "a" else ("198.51.100.1", "192.0.2.1")
    mine, theirs = ("a", "b") if side == "a" else ("b", "a")
    pol = "set security policies from-zone {} to-zone {} policy {} "
    out, back = pol.format("trust", "untrust", "out"), pol.format("untrust", "trust", "in")
    key = "0x" + "77" * 16 + "01020304"
    return "\n".join([
        f"set interfaces ge-0/0/0 unit 0 family inet address {me}/24",
        f"set interfaces ge-0/0/0 unit 0 family inet6 address 2001:db8:ff{mine}::1/64",
        f"set interfaces ge-0/0/1 unit 0 family inet6 address 2001:db8:{mine}::1/48",
        f"set routing-options rib inet6.0 static route ::/0 next-hop 2001:db8:ff{mine}::fe",
        "set security ipsec vpn v6 manual spi 600",
        "set security ipsec vpn v6 manual protocol esp",
        f"set security ipsec vpn v6 manual encryption algorithm aes-128-gcm key hexadecimal {key}",
        f"set security ipsec vpn v6 manual gateway {peer}",
        "set security ipsec vpn v6 manual external-interface ge-0/0/0.0",
        "set security zones security-zone trust interfaces ge-0/0/1.0",
        "set security zones security-zone untrust interfaces ge-0/0/0.0",
        f"set security address-book global address lan 2001:db8:{mine}:1::/64",
        f"set security address-book global address peer 2001:db8:{theirs}:1::/64",
        out + "match source-address lan", out + "match destination-address peer",
        out + "match application any", out + "then permit tunnel ipsec-vpn v6",
        back + "match source-address peer", back + "match destination-address lan",
        back + "match application any", back + "then permit tunnel ipsec-vpn v6",
    ]) + "\n"


def test_ipv6_policy_based_vpn() -> None:
    a = Gateway.from_text(config("a"), name="a")
    b = Gateway.from_text(config("b"), name="b")
    assert a.selectors("v6")[0].describe() == "2001:db8:a:1::/64 <-> 2001:db8:b:1::/64"
    link = WireLink(a, b)
    pkt = udp_packet("2001:db8:a:1::5", "2001:db8:b:1::9", b"six" * 10)
    assert link.send(a, [pkt]).delivered == [pkt]
    reply = udp_packet("2001:db8:b:1::9", "2001:db8:a:1::5", b"xis" * 10, 9, 40000)
    assert link.send(b, [reply]).delivered == [reply]
    # outside the policy's addresses: the default deny, for IPv6 as for IPv4
    stray = udp_packet("2001:db8:a:2::5", "2001:db8:b:1::9", b"no")
    assert link.send(a, [stray]).delivered == [] and a.counters.policy_denied_out == 1
    # a hop-by-hop header before UDP is walked (RFC 8200 §4.3)
    hbh = bytearray(pkt)
    hbh[6] = 0                                           # next header: hop-by-hop
    hbh[4:6] = struct.pack("!H", len(pkt) - 40 + 8)
    hbh = bytes(hbh[:40]) + bytes([17, 0, 1, 4, 0, 0, 0, 0]) + pkt[40:]
    assert link.send(a, [hbh]).delivered == [hbh]
