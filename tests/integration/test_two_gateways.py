"""Two linked gateways on the demo configuration: IPv4 and IPv6 traffic through offloaded and
CPU tunnels, both ways, with counters that add up (sent = received + counted drops) per
tunnel and per engine kind, even when the wire loses, duplicates and corrupts packets."""
from __future__ import annotations

import random
from collections import Counter

import pytest
from pair_helpers import make_pair
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6

from inline_ipsec.gateway import WireLink
from inline_ipsec.gateway.demo_config import DEMO_VPNS
from inline_ipsec.gateway.traffic import flows, packets, udp_packet
from inline_ipsec.packet.fragment import Reassembler

EXPECTED = {v.name: v.expect == "Yes" for v in DEMO_VPNS}


def test_placement_matches_table_1(pair) -> None:
    a, b, _ = pair
    for gw in (a, b):
        got = {r.name: r.offloaded for r in gw.distributor.tunnels()}
        assert got == EXPECTED
    assert b.tunnel("vpn-multi").placement.reasons == (
        "2 child SA pairs in one tunnel (PFE supports 1)",)
    assert len(b.tunnel("vpn-multi").pairs) == 2
    assert a.tunnel("vpn-natt").pairs[0].outbound.udp_encap


def test_traffic_both_ways_ipv4_and_ipv6_offloaded_and_cpu(pair) -> None:
    a, b, link = pair
    plan = flows(a, b)
    kinds = Counter((EXPECTED[f.vpn], f.ipv6) for f in plan)
    # IPv4 and IPv6 inner traffic through offloaded and CPU tunnels
    assert all(kinds[(offl, v6)] > 0 for offl in (True, False) for v6 in (True, False))
    for f in plan:
        sender = a if f.sender == "a" else b
        pkts = packets(f, 40, 300)
        out = link.send(sender, pkts)
        assert out.delivered == pkts, f
        for p in out.delivered:                   # a real IP packet, as scapy reads it
            layer = IPv6(p) if f.ipv6 else IP(p)
            assert layer.src == f.src and layer.dst == f.dst
    # per tunnel: everything sent arrived; per engine kind: encrypted at one end == decrypted
    for name in a.tunnel_names():
        fa, fb = a.tunnel_flow(name), b.tunnel_flow(name)
        assert fa.out_encrypted == fb.in_packets == fb.in_delivered > 0
        assert fb.out_encrypted == fa.in_packets == fa.in_delivered > 0
        assert fa.offloaded is EXPECTED[name]
    for kind in ("pfe", "cpu"):
        pa, pb = a.counters.paths[kind], b.counters.paths[kind]
        assert pa.encrypted == pb.decrypted > 0 and pb.encrypted == pa.decrypted > 0
    # flow statistics: every packet of the IPsec flows in and out, offloaded or not, and the
    # offloaded ones again as services-offload packets
    off = sum(a.tunnel_flow(n).out_encrypted + a.tunnel_flow(n).in_delivered
              for n in a.tunnel_names() if EXPECTED[n])
    show = a.show("security flow statistics")
    assert off > 0 and f"Services-offload packets processed: {off}\n" in show
    received = sum(a.tunnel_flow(n).out_packets + a.tunnel_flow(n).in_packets
                   for n in a.tunnel_names())
    sent = sum(a.tunnel_flow(n).out_encrypted + a.tunnel_flow(n).in_delivered
               for n in a.tunnel_names())
    assert f"Packets received: {received}\n" in show and f"Packets transmitted: {sent}\n" in show
    assert "Packets dropped: 0\n" in show


def test_counters_add_up_on_a_bad_wire() -> None:
    """The wire loses 10%, corrupts 10% (last byte: the ICV or AH-covered data) and
    duplicates 10% of the packets; every packet is accounted for at the receiver."""
    a, b = make_pair()
    rng = random.Random(7)
    tap_count = Counter()

    def tap(wire: list[bytes]) -> list[bytes]:
        out = []
        for p in wire:
            r = rng.random()
            if r < 0.1:
                tap_count["lost"] += 1
            elif r < 0.2:
                tap_count["corrupted"] += 1
                out.append(p[:-1] + bytes([p[-1] ^ 0x01]))
            elif r > 0.9:
                tap_count["duplicated"] += 1
                out += [p, p]
            else:
                out.append(p)
        return out

    link = WireLink(a, b, tap)
    for f in flows(a, b):
        link.send(a if f.sender == "a" else b, packets(f, 30, 200))
    sent = sum(g.counters.paths[k].encrypted for g in (a, b) for k in ("pfe", "cpu"))
    assert link.packets_on_wire == sent - tap_count["lost"] + tap_count["duplicated"]
    flows_ = [f for g in (a, b) for f in g.flows()]
    for f in flows_:                           # per tunnel: received = delivered + drops
        assert f.in_packets == f.in_delivered + f.in_ts_fail + f.in_engine_drops
        assert set(f.in_drop_reasons) <= {"AUTH_FAILED", "REPLAY_DUPLICATE"}
    assert sum(f.in_packets for f in flows_) == link.packets_on_wire
    assert sum(f.in_drop_reasons["AUTH_FAILED"] for f in flows_) == tap_count["corrupted"]
    replays = sum(f.in_drop_reasons["REPLAY_DUPLICATE"] for f in flows_)
    delivered = sum(f.in_delivered for f in flows_)
    assert delivered + replays == link.packets_on_wire - tap_count["corrupted"]
    # only vpn-manual (a manual SA: no anti-replay service) lets duplicates through
    for g, peer in ((a, b), (b, a)):
        for f in g.flows():
            if f.name != "vpn-manual":
                assert f.in_delivered <= peer.tunnel_flow(f.name).out_encrypted
    # per engine kind, at both gateways together
    for kind in ("pfe", "cpu"):
        dec = sum(g.counters.paths[kind].decrypted + g.counters.paths[kind].decrypt_drops
                  for g in (a, b))
        assert dec == sum(f.in_packets for f in flows_ if f.engine == kind)
    stats = b.show("security ipsec statistics")
    b_auth = sum(f.in_drop_reasons["AUTH_FAILED"] for f in b.flows())
    b_ah = b.tunnel_flow("vpn-ah").in_drop_reasons["AUTH_FAILED"]
    assert f"AH authentication failures: {b_ah}," in stats
    assert f"ESP authentication failures: {b_auth - b_ah}," in stats


def test_duplicates_are_replay_errors_on_the_pfe_and_the_cpu() -> None:
    a, b = make_pair()
    dup = WireLink(a, b, lambda wire: wire + wire)
    plan = {(f.vpn, f.sender, f.ipv6): f for f in flows(a, b)}
    for vpn in ("vpn-gcm256", "vpn-cbc"):
        pkts = packets(plan[(vpn, "a", False)], 10, 100)
        out = dup.send(a, pkts)
        assert out.delivered == pkts and out.dropped == 10
        assert b.tunnel_flow(vpn).in_drop_reasons == Counter({"REPLAY_DUPLICATE": 10})
    assert "Replay errors: 20" in b.show("security ipsec statistics")


@pytest.mark.parametrize("vpn", ["vpn-gcm256", "vpn-natt", "vpn-cbc", "vpn-ah"])
def test_pre_fragments_reassemble_to_the_original(pair, vpn: str) -> None:
    a, b, link = pair
    f = {(x.vpn, x.sender, x.ipv6): x for x in flows(a, b)}[(vpn, "a", False)]
    originals = [udp_packet(f.src, f.dst, bytes([i]) * (2000 + 700 * i), ident=100 + i)
                 for i in range(3)]
    out = link.send(a, originals)
    assert all(len(w) <= a.mtu for w in link.last_sent.wire)
    r = Reassembler()
    whole = [p for p in map(r.add, out.delivered) if p is not None]
    assert whole == originals
    frags = len(out.delivered)
    assert frags > 3 and a.counters.pre_fragments == frags
    assert a.tunnel_flow(vpn).out_fragments == frags - 3
    assert b.counters.fragments_received == frags
    assert f"Pre fragments generated: {frags}\n" in a.show("security flow statistics")


def test_hw_offload_disable_scenario() -> None:
    a, b = make_pair(hw_offload_disable=True)
    link = WireLink(a, b)
    assert not any(r.offloaded for r in a.distributor.tunnels())
    for f in flows(a, b):
        pkts = packets(f, 5, 120)
        assert link.send(a if f.sender == "a" else b, pkts).delivered == pkts
    assert a.counters.paths["pfe"].packets == 0 and a.counters.paths["cpu"].encrypted > 0
    assert "Services-offload packets processed: 0\n" in a.show("security flow statistics")
    assert "Hardware Offloaded: Yes" not in a.show("security ipsec security-associations detail")
