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


def test_thread_scaling_is_the_median_of_alternating_rounds() -> None:
    from inline_ipsec.perf.measure import scaling_rounds
    calls = []
    # one thread: 100 packets/s in every round; two threads: 150, 190, 180 in turn
    two = iter([150.0, 190.0, 180.0])

    def run(n: int, seconds: float):
        calls.append(n)
        return (100.0, [100]) if n == 1 else (next(two), [90, 90])

    sc = scaling_rounds(run, 2, 3, 0.01)
    assert calls == [1, 2, 1, 2, 1, 2]          # alternating, one thread first
    assert sc.ratios == [1.5, 1.9, 1.8]
    assert sc.summary().ratio == 1.8
    assert sc.median_round() == 2
    with pytest.raises(ValueError):
        scaling_rounds(run, 2, 0, 0.01)


def test_the_pipeline_thread_figure_reports_its_rounds() -> None:
    from inline_ipsec.perf.report import table
    from inline_ipsec.perf.suite import BenchConfig, BenchResult, _measure_pipeline, machine
    cfg = BenchConfig(sizes=(64,), threads=2, duration=0.05)
    fig = _measure_pipeline("pipeline-threads", "openssl", 64, cfg)
    assert len(fig.samples) == 5 and fig.ratio_low <= fig.ratio <= fig.ratio_high
    assert round(fig.ratio, 4) == sorted(fig.samples)[2]
    result = BenchResult(config={"burst": 32, "duration": 0.05}, machine=machine(),
                         version="", started="",
                         figures=[fig], seconds=0.0)
    assert "median of 5 rounds" in table(result)
    assert fig.core_rtt_ns is None or fig.core_rtt_ns > 0


def test_the_core_round_trip_is_measured_or_refused() -> None:
    import os

    from inline_ipsec.benchmark import core_round_trip_ns
    with pytest.raises(ValueError):
        core_round_trip_ns(0)
    if len(os.sched_getaffinity(0)) < 2:
        with pytest.raises(TimeoutError):
            core_round_trip_ns(1000)
    else:
        # Either a round trip, or (the other core busy for a whole second) a clear refusal.
        try:
            ns = core_round_trip_ns(1000)
        except TimeoutError as e:
            assert "no free second core" in str(e)
        else:
            assert 1 < ns < 1_000_000
