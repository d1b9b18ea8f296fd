"""pytest-benchmark setup for the PFE benchmarks.

Every PFE and CPU-engine benchmark measures its ratio to the raw-crypto loop with
`inline_ipsec.perf.suite.measure_figure`, the very function `inline-ipsec bench` uses (same
keys, same interleaved windows, same confidence interval), and stores it in `extra_info`, so
`inline-ipsec bench --compare new.json --baseline old.json` gates a pytest-benchmark JSON file
exactly like its own results. pytest-benchmark's own statistics time the same engine window.
At the end the session's figures and targets are printed and written to
benchmarks/last-run.json.
Run: python -m pytest benchmarks --benchmark-only   (add -k 'gcm128 and b32' for a subset)
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from inline_ipsec.benchmark import machine
from inline_ipsec.perf.suite import Figure, figure_key

#: Engine figures (with their ratios) by key, and other packets/s by (path, ...) tuple.
FIGURES: dict[str, Figure] = {}
RESULTS: dict[tuple, float] = {}
TARGETS = [
    # (description, key of an engine figure, minimum ratio to its raw-crypto loop). The raw
    # loop is the tightest C loop over the same crypto calls (raw_loops.h), so these are
    # demanding: the per-burst call and the ESP work must cost little next to the crypto.
    ("PFE (OpenSSL) encrypt >= 90% of the raw OpenSSL loop at 64 B",
     "pfe/openssl/aes-gcm-128/encrypt/64", 0.90),
    ("PFE (ipsec-mb) encrypt >= 80% of the raw ipsec-mb loop at 64 B",
     "pfe/ipsec-mb/aes-gcm-128/encrypt/64", 0.80),
    ("PFE (ipsec-mb) decrypt >= 80% of the raw ipsec-mb loop at 64 B",
     "pfe/ipsec-mb/aes-gcm-128/decrypt/64", 0.80),
    ("PFE (ipsec-mb) encrypt >= 95% of the raw ipsec-mb loop at 1400 B",
     "pfe/ipsec-mb/aes-gcm-128/encrypt/1400", 0.95),
    ("PFE (ipsec-mb) decrypt >= 95% of the raw ipsec-mb loop at 1400 B",
     "pfe/ipsec-mb/aes-gcm-128/decrypt/1400", 0.95),
]
PPS_TARGETS = [
    # (description, numerator, denominator, minimum): figure keys or RESULTS tuples
    ("PFE encrypt >= 3.5x naive cryptography loop at 64 B",
     "pfe/openssl/aes-gcm-128/encrypt/64", ("naive", "encrypt", 128, 64, 32), 3.5),
    ("PFE encrypt >= 1000x scapy ESP at 64 B",
     "pfe/openssl/aes-gcm-128/encrypt/64", ("scapy", "encrypt", 128, 64, 32), 1000.0),
    ("PFE encrypt >= 3x CPU engine at 64 B",
     "pfe/openssl/aes-gcm-128/encrypt/64", "cpu/cryptography/aes-gcm-128/encrypt/64", 3.0),
    ("two PFEs (OpenSSL) in two threads >= 1.85x one",
     ("threads", "both", 128, 64, 2, "openssl"), ("threads", "both", 128, 64, 1, "openssl"),
     1.85),
    ("two PFEs (ipsec-mb) in two threads >= 1.85x one",
     ("threads", "both", 128, 64, 2, "ipsec-mb"), ("threads", "both", 128, 64, 1, "ipsec-mb"),
     1.85),
]


def record_figure(benchmark, fig: Figure) -> None:
    """Store an engine or raw figure measured by `measure_figure` in `extra_info` (the gate
    reads key, ratio, ratio_low, ratio_high and samples) and in the session table."""
    FIGURES[fig.key] = fig
    info = dict(key=fig.key, pps=round(fig.pps), mpps=round(fig.pps / 1e6, 3),
                backend=fig.backend, pairs=fig.rounds)
    if fig.ratio is not None:
        info.update(ratio=fig.ratio, ratio_low=fig.ratio_low, ratio_high=fig.ratio_high,
                    samples=fig.samples)
    benchmark.extra_info.update(info)


def record(benchmark, key: tuple, packets: int) -> None:
    """Store packets/s from the benchmark's own median (references without a raw ratio)."""
    if benchmark.stats is None:  # --benchmark-disable: a smoke run, nothing to record
        return
    pps = packets / benchmark.stats.stats.median
    RESULTS[key] = pps
    benchmark.extra_info.update(pps=round(pps), mpps=round(pps / 1e6, 3))


@pytest.fixture
def recorder():
    return record


@pytest.fixture
def figure_recorder():
    return record_figure


def _pps(ref) -> float | None:
    if isinstance(ref, str):
        fig = FIGURES.get(ref)
        return fig.pps if fig is not None else None
    return RESULTS.get(ref)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not FIGURES and not RESULTS:
        return
    tr = terminalreporter
    tr.section("inline-ipsec: packets/s and ratios measured in this run")
    tr.write_line(f"{'figure':46} {'packets/s':>12} {'vs raw':>7} {'interval':>16}")
    for key, fig in sorted(FIGURES.items()):
        ratio = f"{fig.ratio:7.3f}" if fig.ratio is not None else ""
        interval = (f"[{fig.ratio_low:.3f}, {fig.ratio_high:.3f}]"
                    if fig.ratio_low is not None else "")
        tr.write_line(f"{key:46} {fig.pps:>12,.0f} {ratio:>7} {interval:>16}")
    for key, pps in sorted(RESULTS.items(), key=lambda kv: tuple(map(str, kv[0]))):
        tr.write_line(f"{'/'.join(map(str, key)):46} {pps:>12,.0f}")
    checks = []
    for text, key, minimum in TARGETS:
        fig = FIGURES.get(key)
        if fig is not None and fig.ratio is not None:
            checks.append({"target": text, "ratio": fig.ratio, "met": fig.ratio >= minimum})
    for text, num, den, minimum in PPS_TARGETS:
        a, b = _pps(num), _pps(den)
        if a and b:
            checks.append({"target": text, "ratio": a / b, "met": a / b >= minimum})
    for c in checks:
        tr.write_line(f"{'MET ' if c['met'] else 'MISS'} {c['target']}: {c['ratio']:.2f}")
    out = Path(__file__).parent / "last-run.json"
    out.write_text(json.dumps({
        "machine": machine(),
        "figures": [dict(vars(f), key=k) for k, f in FIGURES.items()],
        "results": [{"key": "/".join(map(str, k)), "pps": v} for k, v in RESULTS.items()],
        "targets": checks}, indent=1))
    tr.write_line(f"written to {out}")


__all__ = ["record", "record_figure", "figure_key"]
