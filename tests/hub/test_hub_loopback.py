"""The hub and three spokes over real UDP sockets on loopback (127.0.0.x, one address per
node): IKE on UDP, outer packets carried as datagram payloads. Spoke-to-spoke traffic goes
through the hub, then over the ADVPN shortcut, then through the hub again after the idle
teardown."""
from __future__ import annotations

import socket

import pytest
from hub_helpers import LoopNet, flow, hub_config, make_pki, spoke_config

HUB_LO = "127.0.0.10"
SPOKE_LO = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


def _loopback_aliases() -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HUB_LO, 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _loopback_aliases(), reason="127.0.0.0/8 is not all loopback here")
def test_hub_and_three_spokes_over_udp_loopback() -> None:
    pki = make_pki()
    net = LoopNet()
    try:
        hub = net.add("hub", hub_config(hub=HUB_LO), HUB_LO, pki.issue("hub", "hub.example"),
                      pki.ca, suggest_holddown=1000.0)
        spokes = [net.add(f"s{i}", spoke_config(i, hub=HUB_LO, outer=SPOKE_LO[i - 1]),
                          SPOKE_LO[i - 1], pki.issue(f"s{i}", f"spoke{i}.spokes.example"),
                          pki.ca) for i in (1, 2, 3)]
        for s in spokes:
            s.ctl.start(net.now)
        net.pump()
        s1, s2, _s3 = spokes
        assert sorted(hub.ctl.tunnels) == [f"hub@{a}" for a in SPOKE_LO]
        hub_in = hub.gw.tunnel_flow(f"hub@{SPOKE_LO[0]}")
        net.send(s1, flow(1, 2, 10))                          # through the hub
        assert len(s2.delivered) == 10 and hub_in.in_delivered == 10
        net.pump()                                            # suggestion -> shortcut
        sc = f"to-hub~{SPOKE_LO[1]}"
        assert s1.ctl.shortcuts() == [sc], (s1.ctl.counters, s1.ctl.errors)
        for _ in range(3):
            net.send(s1, flow(1, 2, 20))
            net.advance(10.0)
        assert len(s2.delivered) == 70
        assert hub_in.in_delivered == 10                      # the hub's stopped growing
        assert s1.gw.tunnel_flow(sc).out_encrypted == 60      # the shortcut's grew
        net.advance(75.0)                                     # idle: torn down
        assert s1.ctl.shortcuts() == [] and s1.ctl.counters.shortcuts_down == 1
        net.send(s1, flow(1, 2, 5))
        assert len(s2.delivered) == 75 and hub_in.in_delivered == 15
    finally:
        net.close()
