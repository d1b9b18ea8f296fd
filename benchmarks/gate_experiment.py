"""The regression gate's experiment (docs/performance.md): does the gate pass the same code
compared with itself, and fail a real 2x slowdown of the PFE, on a busy machine?

    python benchmarks/gate_experiment.py --runs 20 --out gate-experiment.json [--load 1]

One baseline run of `inline-ipsec bench --quick --threads 1`, then `--runs` runs of the same
code and `--runs` runs with INLINE_IPSEC_BENCH_SLOWDOWN=2 (every PFE burst call done twice),
alternating, each a separate process as CI runs it. Every run is gated against the baseline
(and the same-code runs also against the run before them, back to back) with the gate's
default tolerance. `--load N` keeps N busy-looping processes running throughout, on top of
whatever else the machine is doing. Prints the pass counts and the load averages seen.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inline_ipsec.perf import compare
from inline_ipsec.perf.cli import DEFAULT_MAX_REGRESSION

BENCH = ["-m", "inline_ipsec", "bench", "--quick", "--threads", "1"]


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def _bench(path: Path, slowdown: int) -> dict:
    env = dict(os.environ, INLINE_IPSEC_BENCH_SLOWDOWN=str(slowdown))
    subprocess.run([sys.executable, *BENCH, "--json", str(path)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(path.read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--load", type=int, default=0, help="busy-looping processes to add")
    p.add_argument("--max-regression", type=float, default=DEFAULT_MAX_REGRESSION)
    p.add_argument("--out", help="write every verdict and load average as JSON")
    args = p.parse_args()

    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
                for _ in range(args.load)]
    for s in spinners:
        s.start()
    records = []
    t0 = time.time()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            baseline = _bench(Path(tmp, "baseline.json"), 1)
            previous = baseline
            for i in range(args.runs):
                for slowdown in (1, 2):
                    load = os.getloadavg()
                    doc = _bench(Path(tmp, f"run{i}-{slowdown}.json"), slowdown)
                    vs_base = compare(doc, baseline, args.max_regression)
                    rec = {"run": i, "slowdown": slowdown, "loadavg_1min": load[0],
                           "ratios": {f["key"]: [round(f["ratio"], 4), round(f["ratio_low"], 4),
                                                 round(f["ratio_high"], 4)]
                                      for f in doc["figures"] if f.get("ratio") is not None},
                           "passed_vs_baseline": vs_base.passed,
                           "regressions_vs_baseline": [c.key for c in vs_base.regressions],
                           "compared": len(vs_base.compared)}
                    if slowdown == 1:
                        rec["passed_vs_previous"] = compare(doc, previous,
                                                            args.max_regression).passed
                        previous = doc
                    records.append(rec)
                    print(json.dumps({k: v for k, v in rec.items() if k != "ratios"}),
                          flush=True)
    finally:
        stop.set()
        for s in spinners:
            s.join()
    same = [r for r in records if r["slowdown"] == 1]
    slow = [r for r in records if r["slowdown"] == 2]
    pfe_figures = sum(1 for k in compare(baseline, baseline, 35).compared
                      if k.key.startswith("pfe/"))
    summary = {
        "runs": args.runs, "added_load": args.load, "minutes": round((time.time() - t0) / 60, 1),
        "max_regression": args.max_regression, "machine": baseline["machine"],
        "same_code_passed_vs_baseline": sum(r["passed_vs_baseline"] for r in same),
        "same_code_passed_back_to_back": sum(r["passed_vs_previous"] for r in same),
        "slowdown_failed": sum(not r["passed_vs_baseline"] for r in slow),
        "slowdown_pfe_figures_flagged": [sum(k.startswith("pfe/")
                                             for k in r["regressions_vs_baseline"])
                                         for r in slow],
        "pfe_figures": pfe_figures,
        "loadavg_1min": [min(r["loadavg_1min"] for r in records),
                         max(r["loadavg_1min"] for r in records)],
        "baseline": {f["key"]: round(f["ratio"], 4) for f in baseline["figures"]
                     if f.get("ratio") is not None},
        "records": records,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "records"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
