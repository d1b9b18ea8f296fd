"""A gateway's burst calls on the C pipeline are the pipeline's own C methods (no Python frame
per burst); punted packets still reach the Python path, and a gateway on the Python path keeps
its Python methods."""
from __future__ import annotations

import pytest

from inline_ipsec.dataplane.bench import GatewayPairWorkload
from inline_ipsec.dataplane.gateway import NO_PUNTS, BurstOutput, Gateway
from inline_ipsec.pfe import Verdict


def test_a_burst_without_punts_is_one_c_call() -> None:
    w = GatewayPairWorkload(burst=8, bursts=1)
    burst = w.bursts[0]
    assert w.a.outbound_burst.__self__ is w.a._pipeline
    assert w.a.outbound_burst(burst) is NO_PUNTS
    assert w.b.inbound_burst(burst, Verdict.WIRE) is NO_PUNTS
    assert (burst.verdict[:burst.count] == Verdict.DELIVER).all()


def test_punted_packets_come_back_through_python() -> None:
    w = GatewayPairWorkload(burst=8, bursts=1)
    w.a.mtu = 68                    # every packet is over the tunnel MTU: punted to Python
    burst = w.bursts[0]
    out = w.a.outbound_burst(burst)
    assert isinstance(out, BurstOutput) and out is not NO_PUNTS
    # the Python path answered the packets: fragments to send, or ICMP "fragmentation
    # needed" for the local side
    assert (burst.verdict[:burst.count] != Verdict.WIRE).all()
    assert out.wire or out.local


def test_the_python_path_keeps_the_python_methods() -> None:
    w = GatewayPairWorkload(burst=8, bursts=1)
    gw = w.a
    gw._forced_python = True
    gw._policy_stage()
    assert "outbound_burst" not in vars(gw)
    assert gw.outbound_burst.__func__ is Gateway.outbound_burst
    assert gw.outbound_burst(w.bursts[0]) is not NO_PUNTS     # every packet punted
    gw._forced_python = False
    gw._policy_stage()
    assert gw.outbound_burst.__self__ is gw._pipeline


def test_the_pipeline_needs_its_punt_handlers() -> None:
    from _pfe_core.pipeline import Pipeline
    pl = Pipeline([])
    with pytest.raises(RuntimeError, match="bind_punts"):
        pl.outbound_burst(GatewayPairWorkload(burst=1, bursts=1).bursts[0])
    with pytest.raises(TypeError):
        pl.bind_punts(None, None, None)
