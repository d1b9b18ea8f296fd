"""MNHA failover end to end: two nodes and a peer gateway, traffic through an offloaded
(AES-GCM, PFE) and a CPU-path (AES-CBC + HMAC) tunnel, nodes killed, restarted, cut apart."""
from __future__ import annotations

import pytest

from inline_ipsec.ha import SrgState
from inline_ipsec.ha.show import render
from inline_ipsec.io.traffic import udp_packet

from ha_helpers import VIP, Fabric

PER_STEP = 6        # packets the HA pair sends per 10 ms step (4 offloaded, 2 CPU)


def _traffic(f: Fabric, i: int) -> tuple[int, int]:
    """One step of traffic both ways; returns (delivered at the peer, delivered at the pair)."""
    owner = f.net.owner(VIP)
    out = [udp_packet("10.1.0.5", "10.2.0.5", i.to_bytes(4, "big") * 16, sport=1000 + k)
           for k in range(4)]
    out += [udp_packet("10.1.1.5", "10.2.1.5", b"c" * 64, sport=2000 + k) for k in range(2)]
    sent = f.ha_to_peer(owner, out) if owner in f.alive else 0
    back = f.peer_to_ha([udp_packet("10.2.0.9", "10.1.0.9", b"r" * 64)] * 2
                        + [udp_packet("10.2.1.9", "10.1.1.9", b"s" * 64)] * 2)
    return sent, back


def _assert_no_sequence_reused(f: Fabric) -> None:
    seen: dict[tuple[int, int], int] = {}
    for node, spi, seq in f.sent:
        assert (spi, seq) not in seen, \
            f"SPI 0x{spi:x} sequence {seq} sent by node {seen[(spi, seq)]} and node {node}"
        seen[(spi, seq)] = node


def test_election_by_priority_owns_the_floating_address() -> None:
    f = Fabric()
    f.run(0.5)
    assert f.nodes[1].state() is SrgState.ACTIVE
    assert f.nodes[2].state() is SrgState.BACKUP
    assert f.net.owner(VIP) == 1
    assert set(f.nodes[2]._standby) == {"v-pfe", "v-cpu"}
    assert "v-pfe" not in f.nodes[2].gw.distributor      # the backup carries nothing
    info = render(f.nodes[2], "show chassis high-availability information")
    assert "Status: BACKUP" in info and "Status : ACTIVE" in info
    assert "Cold Sync Status: COMPLETE" in info


def test_icl_tunnel_is_offloaded_to_the_pfe() -> None:
    f = Fabric()
    f.run(0.3)
    for n in (1, 2):
        rec = f.nodes[n].gw.distributor.tunnel("ICL-VPN")
        assert rec.offloaded, rec.placement
        sa = f.nodes[n].gw.show("show security ipsec security-associations detail")
        block = sa[sa.index("VPN Name: ICL-VPN"):]
        assert "Hardware Offloaded: Yes" in block.split("ID: ")[0]
        # the heartbeats really went through the PFE
        assert rec.engine.counters(rec.pairs[0].outbound_handle).packets > 0


@pytest.mark.parametrize("block", [1 << 20, 128])
def test_active_killed_midstream_backup_continues_without_renegotiation(block: int) -> None:
    f = Fabric(block=block)
    f.run(0.5)
    spis_before = {(r.name, p.outbound.spi, p.inbound.spi)
                   for r in f.nodes[1].gw.distributor.tunnels() for p in r.pairs
                   if r.name != "ICL-VPN"}
    delivered = []
    killed_at = None
    for i in range(200):
        f.step(0.01)
        if i == 80:
            f.kill(1)
            killed_at = f.now
        delivered.append((f.now, *_traffic(f, i)))
    assert f.nodes[2].state() is SrgState.ACTIVE and f.net.owner(VIP) == 2
    # the gap: from the kill to the first step where both directions flow again
    resumed = next(t for t, a, b in delivered if t > killed_at and a == PER_STEP and b == 4)
    gap = resumed - killed_at
    timeout = f.nodes[2].timeout
    assert gap <= timeout + f.nodes[2].interval + 0.02, gap
    # after the takeover every packet gets through, both ways
    after = [(a, b) for t, a, b in delivered if t >= resumed]
    assert all(a == PER_STEP and b == 4 for a, b in after)
    # the peer saw the same SAs: nothing was renegotiated, no new SPI
    spis_after = {(r.name, p.outbound.spi, p.inbound.spi)
                  for r in f.nodes[2].gw.distributor.tunnels() for p in r.pairs
                  if r.name != "ICL-VPN"}
    assert spis_after == spis_before
    assert [r.name for r in f.peer.distributor.tunnels()] == ["v-pfe", "v-cpu"]
    assert all(r.rekeys == 0 for r in f.peer.distributor.tunnels())
    _assert_no_sequence_reused(f)
    # the new node continued above the reservation: the peer's replay windows took it
    peer_in = f.peer.counters
    assert f.delivered_at_peer and peer_in is not None
    if block == 128:
        assert f.nodes[1].counters.seq_reservations > 0


def test_small_reservation_blocks_never_overrun() -> None:
    """With a 64-number block and the ICL cut, the active node stops at its reservation
    rather than send numbers the backup could repeat."""
    f = Fabric(block=64)
    f.run(0.3)
    f.icl_up = False              # reservations can no longer be acknowledged
    sent = 0
    for i in range(40):
        f.step(0.01)
        if f.nodes[1].peer_alive:
            sent += _traffic(f, i)[0]
    node = f.nodes[1]
    # every outbound SA stayed within what the backup holds
    for rec in node.gw.distributor.tunnels():
        for p in rec.pairs:
            held = f.nodes[2]._reserved.get(p.outbound.spi)
            if held is not None:
                assert rec.engine.sequence(p.outbound_handle) <= held
    assert node.counters.seq_waits > 0


def test_cpu_tunnel_failover_and_failback_with_preemption() -> None:
    f = Fabric(block=256, preemption=True)
    f.run(0.5)
    for i in range(60):
        f.step(0.01)
        _traffic(f, i)
    f.kill(1)
    for i in range(60, 140):
        f.step(0.01)
        _traffic(f, i)
    assert f.net.owner(VIP) == 2
    f.restart(1)                  # node 1 comes back with an empty state, higher priority
    phases = []
    for i in range(140, 300):
        f.step(0.01)
        phases.append((f.net.owner(VIP), *_traffic(f, i)))
    assert f.nodes[1].state() is SrgState.ACTIVE, list(f.nodes[1].events)
    assert f.nodes[2].state() is SrgState.BACKUP
    events = [text for _, text in f.nodes[1].events]
    # node 1 preempted only after it held node 2's state
    assert events.index(next(e for e in events if "cold sync" in e)) < \
        events.index(next(e for e in events if "-> ACTIVE" in e))
    # the graceful failback loses at most one step of traffic
    assert sum(1 for owner, a, b in phases if a < PER_STEP) <= 1
    assert phases[-1] == (1, PER_STEP, 4)
    _assert_no_sequence_reused(f)
    cpu = f.nodes[1].gw.distributor.tunnel("v-cpu")
    assert not cpu.offloaded


def test_icl_cut_with_both_nodes_alive_gives_no_split_brain() -> None:
    f = Fabric()
    f.run(0.5)
    f.icl_up = False
    for i in range(100):
        f.step(0.01)
        _traffic(f, i)
    assert not f.nodes[2].peer_alive and not f.nodes[1].peer_alive
    assert f.nodes[1].state() is SrgState.ACTIVE
    assert f.nodes[2].state() is SrgState.BACKUP      # the probe found node 1 answering
    assert f.net.owner(VIP) == 1
    assert any("no split brain" in text for _, text in f.nodes[2].events)
    # the ICL comes back: the nodes resynchronise, still one active
    f.icl_up = True
    f.run(0.5)
    assert f.nodes[1].peer_alive and f.nodes[2].peer_alive
    assert [f.nodes[n].state() for n in (1, 2)] == [SrgState.ACTIVE, SrgState.BACKUP]
    # then the active dies: the backup's copy was stale, it skips ahead and reuses nothing
    f.kill(1)
    for i in range(100, 200):
        f.step(0.01)
        _traffic(f, i)
    assert f.net.owner(VIP) == 2
    _assert_no_sequence_reused(f)


def test_icl_cut_then_active_dies_backup_skips_ahead() -> None:
    f = Fabric()
    f.run(0.5)
    f.icl_up = False
    for i in range(50):
        f.step(0.01)
        _traffic(f, i)                # node 1 keeps sending alone
    f.kill(1)
    for i in range(50, 150):
        f.step(0.01)
        _traffic(f, i)
    assert f.net.owner(VIP) == 2
    assert any("skip ahead" in text for _, text in f.nodes[2].events)
    _assert_no_sequence_reused(f)


def test_monitored_interface_down_fails_over_and_manual_failover() -> None:
    f = Fabric()
    f.run(0.5)
    f.nodes[1].set_monitor(f.now, "ge-0/0/1", up=False)
    f.run(0.05)
    assert f.nodes[1].state() is SrgState.INELIGIBLE
    assert f.nodes[2].state() is SrgState.ACTIVE and f.net.owner(VIP) == 2
    assert "Failure Events: IF" in render(f.nodes[1], "show chassis high-availability "
                                          "services-redundancy-group 1")
    f.nodes[1].set_monitor(f.now, "ge-0/0/1", up=True)
    f.run(0.3)
    assert f.nodes[1].state() is SrgState.BACKUP        # no preemption configured
    f.nodes[2].request_failover(f.now)
    f.run(0.05)
    assert f.nodes[1].state() is SrgState.ACTIVE and f.net.owner(VIP) == 1
    for i in range(20):
        f.step(0.01)
        assert _traffic(f, i) == (PER_STEP, 4)
    _assert_no_sequence_reused(f)


def test_manual_failover_refused_without_a_ready_peer() -> None:
    f = Fabric()
    f.run(0.5)
    f.kill(2)
    f.run(0.5)
    with pytest.raises(RuntimeError, match="no healthy peer"):
        f.nodes[1].request_failover(f.now)


def test_show_information_detail_counts_the_synchronisation() -> None:
    f = Fabric()
    f.run(0.5)
    text = render(f.nodes[1], "show chassis high-availability information detail")
    assert "IPsec SAs synchronised out/in: 2/0" in text
    assert "SRG1: HOLD -> ACTIVE" in text
    with pytest.raises(KeyError):
        render(f.nodes[1], "show chassis high-availability services-redundancy-group 7")
