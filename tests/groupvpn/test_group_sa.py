"""Group SAs on the CPU path (cpu/group.py): one SA both ways, address preservation,
policies, time-based anti-replay, and hostile packets as counted drops."""
from __future__ import annotations

import ipaddress
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw, raw

from gdoi_helpers import ipv4_udp
from inline_ipsec.cpu.group import (MAX_REPLAY_CACHE, OFFLOAD_REASON, GroupEngine, GroupPolicy,
                                    GroupSa)

KEY, IKEY = os.urandom(32), os.urandom(32)


def sa(spi: int = 0x1000, window: float = 0.0, **kw) -> GroupSa:
    return GroupSa(spi, "aes-cbc-256", KEY, "hmac-sha256-128", IKEY,
                   GroupPolicy(ipaddress.ip_network("10.0.0.0/8"),
                               ipaddress.ip_network("10.0.0.0/8")),
                   replay_window_s=window, **kw)


def pair(**kw) -> tuple[GroupEngine, GroupEngine]:
    a, b = GroupEngine(clock=lambda: 100.0), GroupEngine(clock=lambda: 100.0)
    a.install(sa(**kw))
    b.install(sa(**kw))
    return a, b


def test_outer_addresses_are_the_inner_ones_and_peer_decrypts() -> None:
    a, b = pair()
    p = ipv4_udp("10.1.1.1", "10.9.9.9", b"payload")
    kind, esp = a.protect(p)
    assert kind == "esp"
    outer = IP(esp)
    assert (outer.src, outer.dst, outer.proto) == ("10.1.1.1", "10.9.9.9", 50)
    assert b.unprotect(esp) == p
    # the sender itself can decrypt too: one SA, both directions, same SPI
    assert a.unprotect(esp) == p


def test_scapy_decrypts_our_group_esp() -> None:
    """An independent ESP implementation with the TEK keys reads our packets."""
    a, _ = pair()
    p = ipv4_udp("10.1.1.1", "10.2.2.2", b"x" * 33)
    _, esp = a.protect(p)
    peer = SecurityAssociation(ESP, spi=0x1000, crypt_algo="AES-CBC", crypt_key=KEY,
                               auth_algo="SHA2-256-128", auth_key=IKEY,
                               tunnel_header=IP(src="10.1.1.1", dst="10.2.2.2"))
    inner = peer.decrypt(IP(esp))
    assert raw(inner) == p


def test_ipv6_address_preservation() -> None:
    a, b = GroupEngine(), GroupEngine()
    for e in (a, b):
        e.install(GroupSa(0x2000, "aes-cbc-128", KEY[:16], "hmac-sha256-128", IKEY,
                          GroupPolicy(ipaddress.ip_network("2001:db8::/32"),
                                      ipaddress.ip_network("2001:db8::/32"))))
    p = raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2) / Raw(b"hi"))
    kind, esp = a.protect(p)
    assert kind == "esp"
    o = IPv6(esp)
    assert (o.src, o.dst, o.nh) == ("2001:db8::1", "2001:db8::2", 50)
    assert b.unprotect(esp) == p


def test_traffic_outside_the_policy_bypasses() -> None:
    a, _ = pair()
    p = ipv4_udp("192.168.1.1", "10.0.0.1", b"clear")
    assert a.protect(p) == ("bypass", p)
    assert a.bypassed == 1


def test_newest_active_sa_sends() -> None:
    e = GroupEngine(clock=lambda: 50.0)
    e.install(sa(0x1000, not_before=0.0))
    e.install(sa(0x1001, not_before=40.0))
    e.install(sa(0x1002, not_before=60.0))      # not active yet (activation delay)
    _, esp = e.protect(ipv4_udp("10.0.0.1", "10.0.0.2", b"x"))
    assert int.from_bytes(esp[20:24], "big") == 0x1001


def test_address_rewrite_is_detected() -> None:
    """A packet whose outer addresses were changed is dropped: the SA preserves them."""
    a, b = pair()
    _, esp = a.protect(ipv4_udp("10.1.1.1", "10.2.2.2", b"x"))
    forged = raw(IP(src="10.3.3.3", dst="10.2.2.2", proto=50) / Raw(esp[20:]))
    assert b.unprotect(forged) is None
    assert b.drops == {"address-not-preserved": 1}


def test_time_based_anti_replay() -> None:
    now = [1000.0]
    a, b = GroupEngine(clock=lambda: now[0]), GroupEngine(clock=lambda: now[0])
    a.install(sa(window=5.0))
    b.install(sa(window=5.0))
    p = ipv4_udp("10.0.0.1", "10.0.0.2", b"t")
    _, esp = a.protect(p)
    assert b.unprotect(esp) == p
    assert b.unprotect(esp) is None                # exact copy inside the window
    _, esp2 = a.protect(p)
    now[0] += 6.0                                  # too old now
    assert b.unprotect(esp2) is None
    assert b.drops == {"replay-duplicate": 1, "replay-time-window": 1}
    # without anti-replay both copies pass (Junos no-anti-replay)
    c, d = pair()
    _, esp3 = c.protect(p)
    assert d.unprotect(esp3) == p and d.unprotect(esp3) == p


def test_replay_cache_is_bounded() -> None:
    s = sa(window=60.0)
    for i in range(MAX_REPLAY_CACHE + 50):
        assert s.replay_ok(int(100.0 * 100), i.to_bytes(16, "big"), 100.0) is None
    assert len(s._seen) == MAX_REPLAY_CACHE


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 199), st.integers(0, 255))
def test_garbled_packets_are_counted_drops(prefix: bytes, pos: int, flip: int) -> None:
    a, b = pair()
    _, esp = a.protect(ipv4_udp("10.0.0.1", "10.0.0.2", b"x" * 20))
    bad = bytearray(esp)
    bad[pos % len(bad)] ^= flip or 1
    for pkt in (bytes(bad), prefix, esp[:pos % len(esp)]):
        before = sum(b.drops.values())
        out = b.unprotect(pkt)
        if out is None:
            assert sum(b.drops.values()) == before + 1
        else:
            assert out == ipv4_udp("10.0.0.1", "10.0.0.2", b"x" * 20)


def test_every_group_sa_runs_on_the_cpu() -> None:
    assert GroupEngine.hardware_offloaded is False
    assert OFFLOAD_REASON == "group VPN deployment not supported by PFE"
    from inline_ipsec.cpu.group import offload_reasons
    assert offload_reasons(sa()) == (OFFLOAD_REASON, "encryption algorithm aes-cbc-256 not "
                                     "supported by PFE (AES-GCM 128/256 only)")


def test_expiry_removes_sas() -> None:
    e = GroupEngine(clock=lambda: 10.0)
    e.install(sa(0x1000, expires=5.0))
    e.install(sa(0x1001, expires=50.0))
    assert e.expire() == [0x1000] and list(e.sas) == [0x1001]


def test_table_is_bounded() -> None:
    from inline_ipsec.cpu.group import MAX_GROUP_SAS
    e = GroupEngine()
    for i in range(MAX_GROUP_SAS):
        e.install(sa(0x1000 + i))
    with pytest.raises(ValueError):
        e.install(sa(0x9000))
