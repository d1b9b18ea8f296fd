"""`set security ike gateway <g> dead-peer-detection <mode> interval I threshold N` on a
gateway: the peer vanishes, the gateway probes every I seconds as the mode says, and after N
unanswered probes (about I x (N + 1) seconds) clears the IKE SA and the tunnels of every VPN
on the gateway, logs the Junos tunnel event, and (establish-tunnels immediately) negotiates
again. Injected clocks in memory; the real clock over loopback UDP.
"""
from __future__ import annotations

import time

import pytest
from test_shared_ike_gateway import A_T, B_T, FIXED, host, shared_config

from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.gateway.ike_control import DPD_EVENT
from inline_ipsec.gateway.ike_link import IkePump, IkeUdpPort, pair_controls, run_udp
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.ike import IkeSaDown


def _dpd(mode: str, interval: int = 10, threshold: int = 3) -> str:
    return f"set security ike gateway shared dead-peer-detection {mode} interval {interval} " \
           f"threshold {threshold}\n"


def _up(mode: str, **kw):
    a = Gateway.from_text(shared_config("a", extra=_dpd(mode, **kw)), name="gw-a",
                          clock=lambda: FIXED)
    b = Gateway.from_text(shared_config("b", extra=_dpd(mode, **kw)), name="gw-b",
                          clock=lambda: FIXED)
    ia, ib = pair_controls(a, b, A_T, B_T)
    pump = IkePump(ia, ib)
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    assert ia.up(["vpn-s1", "vpn-s2"]) and ib.up(["vpn-s1", "vpn-s2"])
    return a, b, ia, ib, pump


def _alone(ia, until: float, each=None) -> list[float]:
    """Run gw-a's IKE alone (the peer is gone: whatever it sends is lost) up to `until`;
    returns the times it sent something."""
    sent = []
    while (t := ia.get_timer()) is not None and t <= until:
        if each is not None:
            each(t)
        ia.handle_timer(t)
        if ia.datagrams_to_send(t):
            sent.append(t)
    return sent


def _traffic(a: Gateway, b: Gateway, both_ways: bool):
    link = WireLink(a, b)

    def send(_t: float) -> None:
        pk = [udp_packet(host("a", 31), host("b", 31), b"data")]
        out = a.outbound(pk)
        if both_ways:
            link.carry(b, out.wire)
            back = b.outbound([udp_packet(host("b", 31), host("a", 31), b"back")])
            link.carry(a, back.wire)
    return send


def test_config_reaches_the_ike_sa() -> None:
    a, b, ia, ib, pump = _up("always-send", interval=10, threshold=3)
    cfg = ia.session_of("vpn-s1").config
    assert (cfg.dpd_interval, cfg.dpd_threshold, cfg.dpd_mode) == (10.0, 3, "always-send")


def test_dead_peer_cleared_after_interval_times_threshold_plus_one() -> None:
    """interval 10, threshold 3: probes at +10, +20, +30 after the peer fell silent, dead at
    +40 (not the ~175 s of the retransmission back-off); both VPNs of the gateway go."""
    a, b, ia, ib, pump = _up("probe-idle-tunnel", interval=10, threshold=3)
    session = ia.session_of("vpn-s1")
    silent_since = session.last_heard
    sent = _alone(ia, silent_since + 40)
    assert sent == [silent_since + 10, silent_since + 20, silent_since + 30]
    downs = [e for v, e in ia.events if isinstance(e, IkeSaDown)]
    assert downs and downs[0].reason == "dead peer" and session.state == "closed"
    assert session.now == silent_since + 40
    assert "vpn-s1" not in a.distributor and "vpn-s2" not in a.distributor
    for vpn in ("vpn-s1", "vpn-s2"):
        assert ia.status[vpn].down_reason == DPD_EVENT
        assert any(DPD_EVENT in line for line in ia.status[vpn].event_lines())
    inactive = a.show("security ipsec inactive-tunnels detail")
    assert f"Tunnel Down Reason: {DPD_EVENT}" in inactive
    assert "VPN Name: vpn-s1" in inactive and "VPN Name: vpn-s2" in inactive
    # establish-tunnels immediately: it negotiates again (IKE_SA_INIT goes out), in vain
    assert _alone(ia, 1000.0)
    assert ia.status["vpn-s1"].down_reason == "IKE SA negotiation fails: peer did not respond"
    assert ia.status["vpn-s1"].failures >= 1
    assert DPD_EVENT in a.show("security ipsec inactive-tunnels detail")


def test_tunnel_events_keep_the_dpd_event_once_the_tunnel_is_back() -> None:
    a, b, ia, ib, pump = _up("always-send", interval=10, threshold=2)
    _alone(ia, 200.0)                             # b's side is unreachable meanwhile
    assert "vpn-s1" not in a.distributor
    for s in ib.sessions():                       # b forgets its stale IKE SA
        s.drop("test: b restarted")
    ib.handle_timer(200.0)
    pump.advance(500.0)                           # back: a renegotiates, b answers
    pump.advance(510.0)
    assert ia.up(["vpn-s1", "vpn-s2"])
    detail = a.show("security ipsec security-associations detail vpn-name vpn-s1")
    assert DPD_EVENT in detail and "IPsec SA negotiation succeeds" in detail


def test_optimized_probes_only_when_sending_into_silence() -> None:
    a, b, ia, ib, pump = _up("optimized", interval=10, threshold=3)
    # traffic both ways: no probe for a long time, the IKE SA stays
    assert _alone(ia, 300.0, _traffic(a, b, both_ways=True)) == []
    assert ia.session_of("vpn-s1").state == "established"
    # an idle tunnel: still no probe (optimized)
    assert _alone(ia, 600.0) == []
    assert ia.session_of("vpn-s1") is not None
    # sending into silence: probes every 10 s, then dead
    session = ia.session_of("vpn-s1")
    sent = _alone(ia, 700.0, _traffic(a, b, both_ways=False))
    assert sent[1] - sent[0] == sent[2] - sent[1] == 10.0 and sent[3] > sent[0] + 30.0
    assert session.state == "closed" and session.now == sent[0] + 30.0
    assert "vpn-s1" not in a.distributor
    assert ia.status["vpn-s1"].down_reason == DPD_EVENT


def test_probe_idle_tunnel_probes_an_idle_tunnel_but_not_a_busy_one() -> None:
    a, b, ia, ib, pump = _up("probe-idle-tunnel", interval=10, threshold=3)
    assert _alone(ia, 300.0, _traffic(a, b, both_ways=True)) == []
    sent = _alone(ia, 1000.0)
    assert sent[:3] == [sent[0], sent[0] + 10, sent[0] + 20]
    assert "vpn-s1" not in a.distributor


def test_always_send_probes_a_busy_tunnel_and_a_live_peer_answers() -> None:
    a, b, ia, ib, pump = _up("always-send", interval=10, threshold=3)
    session = ia.session_of("vpn-s1")
    send = _traffic(a, b, both_ways=True)
    for t in range(3, 63):
        send(float(t))
        pump.advance(float(t))
    assert session.dpd_probes >= 5 and session.state == "established"
    assert ia.up(["vpn-s1", "vpn-s2"])


@pytest.mark.parametrize("mode", ["always-send", "probe-idle-tunnel"])
def test_peer_vanishes_over_loopback_udp(mode) -> None:
    """Two gateways over real UDP sockets; gw-b's sockets close. With `interval 2 threshold
    1` (the smallest Junos allows) gw-a clears both VPNs about 4 s after b fell silent. The
    IKE clock runs 8 times faster than the wall clock, so the test takes half a second."""
    base = time.monotonic()

    def clock() -> float:
        return base + (time.monotonic() - base) * 8.0
    a = Gateway.from_text(shared_config("a", extra=_dpd(mode, 2, 1)), name="gw-a")
    b = Gateway.from_text(shared_config("b", extra=_dpd(mode, 2, 1)), name="gw-b")
    with IkeUdpPort("127.0.0.1", clock=clock) as pa, IkeUdpPort("127.0.0.1", clock=clock) as pb:
        ia, ib = pair_controls(a, b, pa.transport, pb.transport)
        pa.attach(ia)
        pb.attach(ib)
        ia.start(clock())
        ib.start(clock())
        assert run_udp([pa, pb], lambda: ia.up(["vpn-s1", "vpn-s2"]), 15.0)
        session = ia.session_of("vpn-s1")
        pb.close()                                    # the peer vanishes
        gone = clock()
        assert run_udp([pa], lambda: "vpn-s1" not in a.distributor, 15.0)
        took = clock() - gone
    assert session.state == "closed"
    assert 2.0 <= took <= 6.0, took                   # 2 x (1 + 1) s after the last word
    assert ia.status["vpn-s2"].down_reason == DPD_EVENT
    assert "vpn-s2" not in a.distributor
