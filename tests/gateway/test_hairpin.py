"""A decrypted packet routed into another tunnel is sent on through it (hub and spoke), as a
router forwards it: TTL or hop limit one less with the IPv4 header checksum updated (RFC 1812
§5.3.1, RFC 1624 §3, RFC 8200 §3), and dropped and counted when its TTL ends at the hub. The
C pipeline and the Python path (CPU-path tunnels, `python_path=True`) must agree."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

from inline_ipsec.config import License
from inline_ipsec.gateway import Gateway
from inline_ipsec.sa import SaSpec

S1, HUB, S2 = "192.0.2.1", "192.0.2.100", "192.0.2.2"
S1_NET, S2_NET = "10.1.0.0/16", "10.2.0.0/16"
S1_NET6, S2_NET6 = "2001:db8:1::/48", "2001:db8:2::/48"


def _sa(spi: int, src: str, dst: str) -> SaSpec:
    return SaSpec(spi=spi, cipher="aes-gcm-256", key=bytes([spi & 0xFF]) * 36,
                  tunnel_src=src, tunnel_dst=dst)


def hub_and_spokes(**hub_kw: object) -> tuple[Gateway, Gateway, Gateway]:
    """spoke1 --t1-- hub --t2-- spoke2; the hub routes each spoke's networks into its tunnel."""
    s1, s2 = (Gateway(name=n, license=License()) for n in ("spoke1", "spoke2"))
    hub = Gateway(name="hub", license=License(), **hub_kw)  # type: ignore[arg-type]
    s1_hub, hub_s1 = _sa(0x101, S1, HUB), _sa(0x102, HUB, S1)
    s2_hub, hub_s2 = _sa(0x201, S2, HUB), _sa(0x202, HUB, S2)
    s1.install_child_sa("t1", s1_hub, hub_s1, local_ts=[S1_NET, S1_NET6],
                        remote_ts=[S2_NET, S2_NET6])
    s2.install_child_sa("t2", s2_hub, hub_s2, local_ts=[S2_NET, S2_NET6],
                        remote_ts=[S1_NET, S1_NET6])
    hub.install_child_sa("t1", hub_s1, s1_hub, local_ts=["0.0.0.0/0", "::/0"],
                         remote_ts=[S1_NET, S1_NET6])
    hub.install_child_sa("t2", hub_s2, s2_hub, local_ts=["0.0.0.0/0", "::/0"],
                         remote_ts=[S2_NET, S2_NET6])
    return s1, hub, s2


VARIANTS = {
    "pipeline": {},
    "python path": {"python_path": True},
    "cpu tunnels": {"hw_offload_disable": True},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("family", [4, 6])
def test_spoke_to_spoke_through_the_hub_costs_one_hop(variant: str, family: int) -> None:
    s1, hub, s2 = hub_and_spokes(**VARIANTS[variant])
    if family == 4:
        sent = IP(src="10.1.0.5", dst="10.2.0.5", ttl=64) / UDP(sport=1, dport=2) / (b"x" * 40)
    else:
        sent = IPv6(src="2001:db8:1::5", dst="2001:db8:2::5", hlim=64) / UDP(sport=1,
                                                                             dport=2) / (b"x" * 40)
    raw = bytes(sent)
    wire = s1.outbound([raw]).wire
    assert len(wire) == 1
    at_hub = hub.inbound(wire)
    assert at_hub.delivered == [] and len(at_hub.wire) == 1       # hairpinned, not delivered
    got = s2.inbound(at_hub.wire).delivered
    assert len(got) == 1
    if family == 4:
        pkt = IP(got[0])
        assert pkt.ttl == 63
        expected = bytearray(raw)
        expected[8] = 63
        assert got[0][12:] == bytes(expected[12:])          # only TTL and checksum changed
        recomputed = IP(got[0])
        del recomputed.chksum
        assert IP(bytes(recomputed)).chksum == pkt.chksum
    else:
        assert IPv6(got[0]).hlim == 63
        assert got[0][:7] == raw[:7] and got[0][8:] == raw[8:]
    assert hub.counters.hairpin_ttl_expired == 0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("family", [4, 6])
def test_ttl_ending_at_the_hub_is_dropped_and_counted(variant: str, family: int) -> None:
    s1, hub, _ = hub_and_spokes(**VARIANTS[variant])
    if family == 4:
        raw = bytes(IP(src="10.1.0.5", dst="10.2.0.5", ttl=1) / UDP(sport=1, dport=2))
    else:
        raw = bytes(IPv6(src="2001:db8:1::5", dst="2001:db8:2::5", hlim=1) / UDP(sport=1,
                                                                                 dport=2))
    at_hub = hub.inbound(s1.outbound([raw]).wire)
    assert at_hub.wire == [] and at_hub.delivered == [] and at_hub.dropped == 1
    assert hub.counters.hairpin_ttl_expired == 1
    assert "Packets dropped" in hub.show("security flow statistics")


def test_hairpin_off_delivers_locally_untouched() -> None:
    s1, hub, _ = hub_and_spokes(hairpin=False)
    raw = bytes(IP(src="10.1.0.5", dst="10.2.0.5", ttl=9) / UDP(sport=1, dport=2))
    at_hub = hub.inbound(s1.outbound([raw]).wire)
    assert at_hub.wire == [] and at_hub.delivered == [raw]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_burst_of_hairpins_arrives_whole_and_in_order(variant: str) -> None:
    """Several packets in one burst: each is sent on intact (the Python path encrypts them
    after the decrypt burst is read, never into the burst it is reading)."""
    s1, hub, s2 = hub_and_spokes(**VARIANTS[variant])
    sent = [bytes(IP(src="10.1.0.5", dst="10.2.0.5", ttl=64) / UDP(sport=1000 + i, dport=2)
                  / (bytes([i]) * (20 + i))) for i in range(12)]
    at_hub = hub.inbound(s1.outbound(sent).wire)
    assert at_hub.delivered == [] and len(at_hub.wire) == 12
    got = s2.inbound(at_hub.wire).delivered
    assert len(got) == 12
    for i, (pkt, orig) in enumerate(zip(got, sent)):
        assert pkt[12:] == orig[12:] and pkt[8] == 63, i


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_route_change_applies_to_the_next_packet(variant: str) -> None:
    """Both paths remember where an address pair hairpins; a new route table (next-hop
    tunnel binding, a commit) must be seen by the very next packet, never a stale answer."""
    s1, hub, _ = hub_and_spokes(**VARIANTS[variant])
    raw = bytes(IP(src="10.1.0.5", dst="10.2.0.5", ttl=9) / UDP(sport=1, dport=2))
    spoke1_only = [(S1_NET, ["t1"]), (S1_NET6, ["t1"])]
    both = spoke1_only + [(S2_NET, ["t2"]), (S2_NET6, ["t2"])]

    def at_hub():
        return hub.inbound(s1.outbound([raw]).wire)

    assert len(at_hub().wire) == 1                     # hairpinned into t2
    hub.set_routes(spoke1_only)
    out = at_hub()
    assert out.wire == [] and out.delivered == [raw]   # no route into t2: delivered here
    hub.set_routes(both)
    assert len(at_hub().wire) == 1
