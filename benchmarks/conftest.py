"""pytest-benchmark setup for the PFE benchmarks.

Every benchmark records its median into one table for the session; at the end the table is
printed with each path as a ratio of its reference measured in the same run (the raw OpenSSL
loop, the naive `cryptography` loop, scapy), and written to benchmarks/last-run.json.
Run: python -m pytest benchmarks --benchmark-only   (add -k 'gcm128 and b32' for a subset)
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from inline_ipsec.benchmark import machine
from inline_ipsec.perf.suite import figure_key

RESULTS: dict[tuple, float] = {}
TARGETS = [
    # (description, numerator key, denominator key, minimum ratio)
    ("PFE encrypt >= 75% of raw OpenSSL loop at 64 B",
     ("pfe", "encrypt", 128, 64, 32, "openssl"), ("raw", "encrypt", 128, 64, 32, "openssl"),
     0.75),
    ("PFE encrypt >= 85% of raw OpenSSL loop at 1400 B",
     ("pfe", "encrypt", 128, 1400, 32, "openssl"),
     ("raw", "encrypt", 128, 1400, 32, "openssl"), 0.85),
    ("PFE (ipsec-mb) encrypt >= 50% of raw ipsec-mb loop at 64 B",
     ("pfe", "encrypt", 128, 64, 32, "ipsec-mb"), ("raw", "encrypt", 128, 64, 32, "ipsec-mb"),
     0.50),
    ("PFE (ipsec-mb) encrypt >= 75% of raw ipsec-mb loop at 1400 B",
     ("pfe", "encrypt", 128, 1400, 32, "ipsec-mb"),
     ("raw", "encrypt", 128, 1400, 32, "ipsec-mb"), 0.75),
    ("PFE encrypt >= 3.5x naive cryptography loop at 64 B",
     ("pfe", "encrypt", 128, 64, 32, "openssl"), ("naive", "encrypt", 128, 64, 32), 3.5),
    ("PFE encrypt >= 1000x scapy ESP at 64 B",
     ("pfe", "encrypt", 128, 64, 32, "openssl"), ("scapy", "encrypt", 128, 64, 32), 1000.0),
    ("PFE encrypt >= 3x CPU engine at 64 B",
     ("pfe", "encrypt", 128, 64, 32, "openssl"), ("cpu", "encrypt", 128, 64, 32, "openssl"),
     3.0),
    ("two PFEs in two threads >= 1.6x one",
     ("threads", "both", 128, 64, 2, "openssl"), ("threads", "both", 128, 64, 1, "openssl"),
     1.6),
    ("two PFEs (ipsec-mb) in two threads >= 1.7x one",
     ("threads", "both", 128, 64, 2, "ipsec-mb"), ("threads", "both", 128, 64, 1, "ipsec-mb"),
     1.7),
]


def record(benchmark, key: tuple, packets: int, backend: str = "openssl") -> None:
    """Store packets/s from the benchmark's median for the session table. PFE and CPU figures
    also get `extra_info.key` and `extra_info.ratio` (to the raw-crypto figure of the same
    backend measured earlier in this session), which `inline-ipsec bench --compare FILE
    --baseline OLD` gates on, exactly like its own results."""
    if benchmark.stats is None:  # --benchmark-disable: a smoke run, nothing to record
        return
    median = benchmark.stats.stats.median
    pps = packets / median
    RESULTS[key] = pps
    path, direction, bits, size, burst = key[:5]
    benchmark.extra_info.update(pps=round(pps), mpps=round(pps / 1e6, 3), backend=backend)
    raw = RESULTS.get(("raw", direction, bits, size, burst, backend))
    if path in ("pfe", "cpu") and raw:
        benchmark.extra_info.update(
            key=figure_key(path, backend, f"aes-gcm-{bits}", direction, size, burst),
            ratio=pps / raw)


@pytest.fixture
def recorder():
    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("inline-ipsec: packets/s and ratios measured in this run")
    rows = []
    for key, pps in sorted(RESULTS.items(), key=lambda kv: tuple(map(str, kv[0]))):
        path, direction, bits, size, burst = key[:5]
        backend = key[5] if len(key) > 5 else "openssl"
        ref = RESULTS.get(("raw", direction, bits, size, burst, backend)) if path == "pfe" \
            else None
        ratio = f"{pps / ref:.2f}" if ref else ""
        rows.append((path, backend if path != "naive" and path != "scapy" else "-", direction,
                     f"aes-gcm-{bits}", str(size), str(burst), f"{pps:,.0f}", ratio))
    tr.write_line(f"{'path':8} {'backend':9} {'dir':8} {'cipher':12} {'size':>5} {'burst':>5} "
                  f"{'packets/s':>11} {'vs raw':>7}")
    for r in rows:
        tr.write_line(f"{r[0]:8} {r[1]:9} {r[2]:8} {r[3]:12} {r[4]:>5} {r[5]:>5} {r[6]:>11} "
                      f"{r[7]:>7}")
    checks = []
    for text, num, den, minimum in TARGETS:
        if num in RESULTS and den in RESULTS:
            ratio = RESULTS[num] / RESULTS[den]
            ok = ratio >= minimum
            checks.append({"target": text, "ratio": ratio, "met": ok})
            tr.write_line(f"{'MET ' if ok else 'MISS'} {text}: {ratio:.2f}")
    out = Path(__file__).parent / "last-run.json"
    out.write_text(json.dumps({
        "machine": machine(),
        "results": [{"path": k[0], "direction": k[1], "cipher": f"aes-gcm-{k[2]}",
                     "size": k[3], "burst": k[4],
                     "backend": k[5] if len(k) > 5 else "openssl", "pps": v}
                    for k, v in RESULTS.items()],
        "targets": checks}, indent=1))
    tr.write_line(f"written to {out}")
