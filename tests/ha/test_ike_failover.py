"""MNHA with IKEv2-negotiated tunnels: the IKE SA follows the SRG to the other node, so the
remote peer's DPD, child SA rekeys and the IKE SA itself carry on: no renegotiation, no new
IKE SPI, no sequence number sent twice."""
from __future__ import annotations

import pytest

from inline_ipsec.ha import SrgState
from inline_ipsec.io.traffic import udp_packet

from ha_helpers import VIP, IkeFabric


def _traffic(f: IkeFabric, i: int) -> tuple[int, int]:
    owner = f.net.owner(VIP)
    out = [udp_packet("10.1.2.5", "10.2.2.5", b"g" * 64, sport=1000 + i % 50)] * 2 + \
        [udp_packet("10.1.3.5", "10.2.3.5", b"c" * 64)] * 2
    sent = f.ha_to_peer(owner, out) if owner in f.alive else 0
    back = f.peer_to_ha([udp_packet("10.2.2.9", "10.1.2.9", b"r" * 64)] * 2
                        + [udp_packet("10.2.3.9", "10.1.3.9", b"s" * 64)] * 2)
    return sent, back


def _ike_ids(f: IkeFabric) -> list[tuple[bytes, bytes]]:
    return [(s.ike.spi_i, s.ike.spi_r) for s in f.peer_ike.sessions()]


def _no_reuse(f: IkeFabric) -> None:
    pairs = [(spi, seq) for _, spi, seq in f.sent]
    assert len(pairs) == len(set(pairs))


@pytest.mark.parametrize("icl_ike", [False, True], ids=["icl-manual-sa", "icl-ikev2"])
def test_ike_sa_follows_the_srg_on_failover_and_failback(icl_ike: bool) -> None:
    f = IkeFabric(block=256, preemption=True, icl_ike=icl_ike)
    f.run(1.0)
    for n in (1, 2):                                # the ICL is on the PFE either way
        assert f.nodes[n].gw.distributor.tunnel("ICL-VPN").offloaded
    assert f.peer_ike.up() and f.nodes[1].ike.up()
    ike_before = _ike_ids(f)
    assert len(ike_before) == 1
    assert f.nodes[2]._ike_states                   # the backup holds the IKE SA
    assert "gw-p" in f.nodes[2].ike.paused           # and does not negotiate them
    assert not [d for who, d in f.ike_log if who == "node2->peer"]
    for i in range(50):
        f.step()
        assert _traffic(f, i) == (4, 4)
    f.kill(1)
    for i in range(50, 100):
        f.step()
        _traffic(f, i)
    assert f.nodes[2].state() is SrgState.ACTIVE
    assert f.nodes[2].counters.ike_adopted == 1
    assert _traffic(f, 100) == (4, 4)
    # 35 s later: DPD (always-send, 10 s) went both ways and was answered
    peer_session = f.peer_ike.sessions()[0]
    probes = peer_session.dpd_probes
    for i in range(350):
        f.step(0.1)
        assert _traffic(f, i) == (4, 4)
    assert peer_session.dpd_probes > probes
    assert peer_session.state == "established" and not peer_session.errors.counts
    node2 = f.nodes[2].ike.sessions("v-ike")[0]
    assert node2.state == "established" and not node2.errors.counts
    # a child SA rekey started by the peer, then one by node 2: both on the carried IKE SA
    spi = next(c.spi_in for c in peer_session.children.values() if c.state == "installed")
    peer_session.rekey_child(spi, f.now)
    f.step()
    spi2 = next(c.spi_in for c in node2.children.values() if c.state == "installed")
    node2.rekey_child(spi2, f.now)
    for i in range(20):
        f.step()
        assert _traffic(f, i) == (4, 4)
    assert sum(r.rekeys for r in f.peer.distributor.tunnels()) == 2
    assert _ike_ids(f) == ike_before                 # never renegotiated
    # node 1 returns with an empty state and preempts once it holds node 2's (IKE included)
    f.restart(1)
    for i in range(100):
        f.step()
        _traffic(f, i)
    assert f.nodes[1].state() is SrgState.ACTIVE
    assert f.nodes[1].counters.ike_adopted == 1
    for i in range(200):
        f.step(0.1)
        assert _traffic(f, i) == (4, 4)
    assert _ike_ids(f) == ike_before
    assert not f.peer_ike.sessions()[0].errors.counts
    _no_reuse(f)
