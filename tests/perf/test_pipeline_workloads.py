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


def test_controls_run_in_the_same_rounds_after_the_figure() -> None:
    from inline_ipsec.perf.measure import scaling_rounds
    calls = []

    def run(n: int, seconds: float):
        calls.append(("run", n))
        return (100.0, [100]) if n == 1 else (170.0, [85, 85])

    def control(n: int, seconds: float):
        calls.append(("floor", n))
        return (50.0, [50]) if n == 1 else (95.0, [48, 47])

    sc = scaling_rounds(run, 2, 2, 0.01, controls={"floor": control})
    assert calls == [("run", 1), ("run", 2), ("floor", 1), ("floor", 2)] * 2
    assert sc.ratios == [1.7, 1.7]
    assert sc.control_ratios("floor") == [1.9, 1.9]


def test_an_idle_burst_stays_in_c_for_its_length_and_frees_the_gil() -> None:
    import threading
    import time

    from _pfe_core.calibrate import IDLE_BURST_MAX_NS, idle_burst
    t0 = time.perf_counter_ns()
    idle_burst(2_000_000)
    assert time.perf_counter_ns() - t0 >= 2_000_000
    # With a second Python thread, the idle burst gives the GIL up: the other thread runs
    # Python meanwhile.
    ticks = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            ticks[0] += 1

    other = threading.Thread(target=count)
    other.start()
    try:
        time.sleep(0.01)
        before = ticks[0]
        idle_burst(50_000_000)
        during = ticks[0] - before
    finally:
        stop.set()
        other.join()
    assert during > 1000
    with pytest.raises(ValueError, match="at most"):
        idle_burst(IDLE_BURST_MAX_NS + 1)
    with pytest.raises(OverflowError):
        idle_burst(-1)


def test_the_idle_floor_is_calibrated_to_the_pipeline_round_trip() -> None:
    from inline_ipsec.dataplane.bench import idle_call_ns, idle_scaling, thread_scaling
    single, _ = thread_scaling(1, 0.1, backend="openssl")
    ns = idle_call_ns(single)
    # an openssl round trip at 64 B is microseconds; half of it, less the loop, per call
    assert 500 < ns < 50_000
    floor, per = idle_scaling(1, ns, 0.1)
    assert len(per) == 1 and per[0] > 0
    assert 0.5 < floor / single < 2.0
    with pytest.raises(ValueError):
        idle_call_ns(0)


@pytest.mark.parametrize("backend", ["openssl", "ipsec-mb"])
def test_the_raw_loops_run_in_threads(backend) -> None:
    import _pfe_core
    from helpers import missing

    from inline_ipsec.dataplane.bench import RAW_PASSES, raw_scaling
    if backend not in _pfe_core.BACKENDS:
        missing(f"the {backend} backend is not built")
    rate, per = raw_scaling(2, 0.05, backend)
    assert len(per) == 2 and all(n > 0 and n % (RAW_PASSES * 128) == 0 for n in per)
    assert rate > 0


def test_the_pipeline_thread_figure_reports_its_rounds() -> None:
    from inline_ipsec.perf.report import markdown, table
    from inline_ipsec.perf.suite import BenchConfig, BenchResult, _measure_pipeline, machine
    cfg = BenchConfig(sizes=(64,), threads=2, duration=0.05)
    fig = _measure_pipeline("pipeline-threads", "openssl", 64, cfg)
    assert len(fig.samples) == 5 and fig.ratio_low <= fig.ratio <= fig.ratio_high
    assert round(fig.ratio, 4) == sorted(fig.samples)[2]
    result = BenchResult(config={"burst": 32, "duration": 0.05}, machine=machine(),
                         version="", started="",
                         figures=[fig], seconds=0.0)
    text = table(result)
    assert "median of 5 rounds" in text
    assert fig.core_rtt_ns is None or fig.core_rtt_ns > 0
    # its two controls, in the same rounds: the GIL floor and the raw loops in threads
    assert len(fig.floor_samples) == 5 and len(fig.raw_threads_samples) == 5
    assert fig.floor_ratio == pytest.approx(sorted(fig.floor_samples)[2], abs=1e-4)
    assert fig.raw_threads_ratio == pytest.approx(sorted(fig.raw_threads_samples)[2], abs=1e-4)
    assert fig.floor_call_ns > 0
    assert f"GIL floor: idle bursts of {fig.floor_call_ns:,} ns" in text
    assert "raw openssl seal+open loops" in text
    assert "the GIL floor (idle bursts of" in markdown(result)


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
