"""Many tunnels between two gateways over loopback UDP (the scale benchmarks'
configuration, `benchmarks/bench_ike.py` times them): 2001 IKEv2 tunnels fill the PFE and put
the last one on the CPU with the reason; 2000 IKEv1 tunnels (`v1-only` IKE gateways, Main
Mode + Quick Mode) all come up. No timing is asserted here."""
from __future__ import annotations

import pytest

from inline_ipsec.gateway import Gateway
from inline_ipsec.io.demo_config import scale_config
from inline_ipsec.io.ike_link import IkeUdpPort, pair_controls, run_udp


def _scale(tunnels: int, version: str):
    a = Gateway.from_text(scale_config("a", tunnels, version=version), name="a")
    b = Gateway.from_text(scale_config("b", tunnels, version=version), name="b")
    with IkeUdpPort("127.0.0.1") as pa, IkeUdpPort("127.0.0.1") as pb:
        ia, ib = pair_controls(a, b, pa.transport, pb.transport)
        pa.attach(ia)
        pb.attach(ib)
        import time
        ia.start(time.monotonic())
        ib.start(time.monotonic())
        ok = run_udp([pa, pb], lambda: ia.up() and ib.up(), 300.0)
    return ok, a, b, ia, ib


@pytest.mark.slow
def test_2001_ikev2_tunnels_fill_the_pfe_and_the_last_goes_to_the_cpu() -> None:
    ok, a, b, ia, ib = _scale(2001, "v2-only")
    assert ok and not ia.errors and not ib.errors
    for gw in (a, b):
        assert len(gw.tunnel_names()) == 2001
        assert gw.distributor.pfe_tunnels_in_use == 2000
        (cpu,) = [r for r in gw.distributor.tunnels() if not r.offloaded]
        assert cpu.placement.reasons, cpu
    assert len(ia.sessions()) == 2001


@pytest.mark.slow
def test_2000_ikev1_tunnels_between_two_gateways() -> None:
    ok, a, b, ia, ib = _scale(2000, "v1-only")
    assert ok and not ia.errors and not ib.errors
    for gw in (a, b):
        assert len(gw.tunnel_names()) == 2000
        assert gw.distributor.pfe_tunnels_in_use == 2000
    sessions = ia.sessions()
    assert len(sessions) == 2000 and all(s.exchange_mode == "Main" for s in sessions)
    assert len({s.config.name for s in ib.sessions()}) == 2000   # each its own gateway
