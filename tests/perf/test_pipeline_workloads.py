"""The end-to-end figure's workloads (dataplane/bench.py): a timed pass carries every packet,
and a pass that loses one is an error, not a fast sample."""
from __future__ import annotations

import pytest

from inline_ipsec.dataplane.bench import BarePfeWorkload, GatewayPairWorkload


@pytest.mark.parametrize("workload", [GatewayPairWorkload, BarePfeWorkload])
def test_a_timed_pass_delivers_every_packet(workload) -> None:
    w = workload(bursts=2)
    assert w.window_ns(rounds=2) > 0
    assert w.delivered() == w.packets_per_pass == 64


def test_a_pass_that_loses_packets_is_an_error() -> None:
    w = GatewayPairWorkload(bursts=2)
    w.pristine[1].data[3, w.pristine[1].offset[3]] = 0x50   # IP version 5: dropped at gateway a
    with pytest.raises(RuntimeError, match="packets lost"):
        w.window_ns()
