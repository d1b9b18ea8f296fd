"""The CPU path's modes in one run (pytest-benchmark): the minimal Python ESP loop
(perf/python_esp.py), the CPU engine with PowerMode IPsec off (packet by packet) and on
(vectors), and through the QAT device model at ring depths 1, 8 and 64; AES-GCM-128, bursts of
32. Ratios are medians of per-round ratios of windows that take turns (perf/cpu_modes.py), the
same measurement as `inline-ipsec bench --cpu-modes`.

Targets (docs/performance.md): CPU engine with PMI / Python loop at 64 B, encrypt >= 0.70,
decrypt >= 0.60. They are reported, not asserted: timing belongs to the benchmark run.

    python -m pytest benchmarks/bench_cpu_modes.py --benchmark-only
"""
from __future__ import annotations

import pytest

from inline_ipsec.benchmark import inner_ipv4_udp
from inline_ipsec.packet.burst import Burst
from inline_ipsec.perf.cpu_modes import DEFAULT_DEPTHS, measure_cpu_modes, render_cpu_modes

TARGETS = {("cpu pmi-on", "encrypt"): 0.70, ("cpu pmi-on", "decrypt"): 0.60}


@pytest.mark.parametrize("size", [64, 1400])
def test_cpu_modes(benchmark, size):
    rounds = 3 if benchmark.disabled else 40
    result = measure_cpu_modes(size, 32, rounds=rounds, depths=DEFAULT_DEPTHS)
    modes = {f.mode for f in result.figures}
    assert {"python-esp", "cpu pmi-off", "cpu pmi-on"} <= modes
    assert {f"cpu qat depth {d}" for d in DEFAULT_DEPTHS} <= modes
    # pytest-benchmark's own timing: one PMI-on decrypt burst (the headline figure)
    from inline_ipsec.benchmark import gcm_spec
    from inline_ipsec.cpu import CpuEngine
    spec = gcm_spec(128, replay_window=1024)
    tx, rx = CpuEngine(), CpuEngine()
    b = Burst.from_packets([inner_ipv4_udp(size, i) for i in range(32)], tx.add_outbound(spec))
    rx.add_inbound(spec)
    clean = b.copy()

    def setup() -> None:
        b.restore_from(clean)
        tx.encrypt_burst(b)

    assert benchmark.pedantic(lambda: rx.decrypt_burst(b), setup=setup, rounds=rounds,
                              iterations=1) == 32
    print("\n" + render_cpu_modes(result))
    benchmark.extra_info["cpu_modes"] = result.as_dict()
    for (mode, direction), target in TARGETS.items():
        if size == 64:
            fig = result.figure(mode, direction)
            benchmark.extra_info[f"{mode}/{direction}/vs_python"] = fig.vs_python
            benchmark.extra_info[f"{mode}/{direction}/target"] = target
