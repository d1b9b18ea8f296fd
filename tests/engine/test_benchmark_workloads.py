"""The benchmark references must do the same work as the PFE, or the ratios mean nothing."""
from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

from inline_ipsec import Burst, Pfe
from inline_ipsec.benchmark import (
    IMIX,
    NaiveEsp,
    PfeWorkload,
    RawWorkload,
    esp_plain_len,
    gcm_spec,
    inner_ipv4_udp,
    inner_ipv6_udp,
    packet_sizes,
)


def test_naive_loop_builds_the_pfe_packets_byte_for_byte():
    spec = gcm_spec(256)
    pfe = Pfe()
    h = pfe.add_outbound(spec)
    naive = NaiveEsp(spec)
    for n, size in enumerate(packet_sizes(IMIX, 24)):
        inner = inner_ipv4_udp(size, n)
        assert naive.encrypt(inner) == pfe.encrypt(h, inner)


def test_raw_loop_covers_the_same_bytes_as_esp():
    w = RawWorkload(128, 64, 4)
    assert list(w.burst.length[:4]) == [esp_plain_len(64)] * 4 == [68] * 4
    assert w.run() == 4
    opener = RawWorkload(128, 1400, 4, encrypt=False)
    opener.prepare()
    assert opener.run() == 4  # every tag verifies, as in the PFE


def test_inner_packets_are_valid_ip():
    v4 = IP(inner_ipv4_udp(100, 3))
    chk = v4.chksum
    del v4.chksum
    assert IP(bytes(v4)).chksum == chk and v4.len == 100
    v6 = IPv6(inner_ipv6_udp(200, 3))
    chk = v6[UDP].chksum
    del v6[UDP].chksum
    assert IPv6(bytes(v6))[UDP].chksum == chk and len(bytes(v6)) == 200


def test_pfe_workload_roundtrip():
    w = PfeWorkload(128, IMIX, 32)
    assert w.encrypt() == 32
    assert w.decrypt() == 32
    assert w.burst.packets() == w.inner
    w.restore_and_encrypt()
    assert isinstance(w.burst, Burst) and w.decrypt() == 32
