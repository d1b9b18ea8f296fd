"""`inline-ipsec bench`: the throughput table, JSON, plot, and the regression gate."""
from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from ..benchmark import IMIX, MAX_BENCH_TUNNELS
from ..pfe import IPSEC_MB_ARCH_ENV, IPSEC_MB_ARCHS, PFE_BACKENDS, ipsec_mb_status
from . import gate, report
from .suite import ALL_SIZES, BenchConfig, BenchResult, Figure, run_suite

DEFAULT_MAX_REGRESSION = 30.0
#: Tolerance when the baseline was measured on another CPU model (gate.py).
DEFAULT_ELSEWHERE = 45.0
QUICK = dict(sizes=(64, 1400, IMIX), bits=(128,), duration=0.2)


def _size(text: str):
    if text == IMIX:
        return IMIX
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a packet size") from None
    if not 28 <= value <= 1800:
        raise argparse.ArgumentTypeError("packet sizes are 28..1800 bytes, or 'imix'")
    return value


def _cipher(text: str) -> int:
    bits = {"aes-gcm-128": 128, "aes-gcm-256": 256}.get(text)
    if bits is None:
        raise argparse.ArgumentTypeError("the PFE ciphers are aes-gcm-128 and aes-gcm-256")
    return bits


def _percent(text: str) -> float:
    value = float(text)
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError("a percentage between 0 and 100")
    return value


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=_size, nargs="+", metavar="SIZE",
                   help="inner packet sizes in bytes, or 'imix' (7:4:1 of 40/576/1500); "
                        "default: 64 128 256 512 1024 1400 imix")
    p.add_argument("--ciphers", type=_cipher, nargs="+", metavar="CIPHER",
                   help="aes-gcm-128 and/or aes-gcm-256 (default both)")
    p.add_argument("--directions", nargs="+", choices=("encrypt", "decrypt"),
                   help="default both")
    p.add_argument("--backends", nargs="+", choices=("openssl", "ipsec-mb"),
                   help=f"PFE crypto backends (default all built here: "
                        f"{', '.join(PFE_BACKENDS)})")
    p.add_argument("--ipsec-mb-arch", choices=IPSEC_MB_ARCHS, metavar="ISA",
                   help="pin intel-ipsec-mb's instruction set for this run, in the PFE and in "
                        "the raw loop alike: auto (the default: the widest this CPU has), sse, "
                        f"avx, avx2 or avx512; e.g. avx2 runs the code path of a CPU without "
                        f"AVX-512 (sets {IPSEC_MB_ARCH_ENV})")
    p.add_argument("--paths", nargs="+", choices=("pfe", "cpu"),
                   help="engines to measure besides the raw-crypto limit (default both)")
    p.add_argument("--burst", type=int, default=32, help="packets per burst (default 32)")
    p.add_argument("--tunnels", type=int, default=1, metavar="N",
                   help="PFE and CPU-engine figures: the packets of each burst belong to N "
                        "tunnels (SA pairs) in turn, as a gateway carrying many sees them "
                        f"(default 1; at most {MAX_BENCH_TUNNELS}); the thread and end-to-end "
                        "figures keep one tunnel per PFE or gateway pair")
    p.add_argument("--duration", type=float, default=0.25,
                   help="seconds of interleaved windows per figure (default 0.25; at least "
                        "15 window pairs each)")
    p.add_argument("--passes", type=int, default=4,
                   help="rounds of the whole matrix each figure's windows are spread over "
                        "(default 4)")
    p.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 8),
                   help="PFEs in as many threads for the multi-core figure (default: the "
                        "number of cores; 1 leaves it out)")
    p.add_argument("--e2e", action="store_true",
                   help="also end to end through two gateways (routing, selectors, MTU) on the "
                        "demo configuration, per engine")
    p.add_argument("--quick", action="store_true",
                   help="a short run: 64, 1400 and IMIX, aes-gcm-128, 0.2 s per figure")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--plot", metavar="PNG", help="plot throughput against size (matplotlib)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--baseline", metavar="FILE",
                   help="compare with a saved result (ours or pytest-benchmark's JSON) and "
                        "exit 1 if any ratio to the raw-crypto limit fell more than "
                        "--max-regression percent below it, beyond doubt (the upper end of "
                        "its confidence interval)")
    p.add_argument("--max-regression", type=_percent, default=DEFAULT_MAX_REGRESSION,
                   metavar="PCT", help=f"tolerance of the gate (default "
                                        f"{DEFAULT_MAX_REGRESSION:g}%%)")
    p.add_argument("--max-regression-elsewhere", type=_percent, default=DEFAULT_ELSEWHERE,
                   metavar="PCT", help="tolerance when the baseline was measured on another "
                                       f"CPU model (default {DEFAULT_ELSEWHERE:g}%%)")
    p.add_argument("--cost-split", action="store_true",
                   help="instead of the matrix: where a PFE burst's time goes (crypto, ESP "
                        "framing, the kernel's fixed cost per burst, timed inside C, and the "
                        "cost of the call from Python), per backend and direction, from "
                        "bursts of 1 to 32")
    p.add_argument("--cpu-modes", action="store_true",
                   help="instead of the matrix: the CPU path against the minimal Python ESP "
                        "loop, PowerMode IPsec off and on, and through the QAT device model "
                        "at ring depths --qat-depths (64 B unless --sizes; --json writes it)")
    p.add_argument("--qat-depths", type=int, nargs="+", default=[1, 8, 64], metavar="N",
                   help="QAT ring depths for --cpu-modes (default 1 8 64)")
    p.add_argument("--compare", metavar="FILE",
                   help="gate the result stored in FILE instead of running (with --baseline)")


def _progress(out: TextIO):
    tty = out.isatty()
    last = [-1]

    def show(done: int, total: int, label: str) -> None:
        width = 30
        filled = width * done // max(total, 1)
        bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}"
        if tty:
            out.write("\r" + bar[:100].ljust(100))
            if done == total:
                out.write("\n")
        elif done * 10 // max(total, 1) != last[0]:
            last[0] = done * 10 // max(total, 1)
            out.write(bar + "\n")
        out.flush()
    return show


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    kw: dict = dict(QUICK) if args.quick else {}
    if args.sizes:
        kw["sizes"] = tuple(args.sizes)
    if args.ciphers:
        kw["bits"] = tuple(args.ciphers)
    if args.directions:
        kw["directions"] = tuple(args.directions)
    if args.backends:
        kw["backends"] = tuple(args.backends)
    if args.paths:
        kw["paths"] = tuple(args.paths)
    if args.duration != 0.25 or "duration" not in kw:
        kw["duration"] = args.duration if args.duration != 0.25 else kw.get("duration", 0.25)
    return BenchConfig(burst=args.burst, threads=args.threads, e2e=args.e2e,
                       passes=args.passes, tunnels=args.tunnels, **kw)


def pin_ipsec_mb_arch(arch: str | None, backends: tuple[str, ...] | None) -> None:
    """Pin intel-ipsec-mb's instruction set for the rest of the process (both the PFE's
    managers and the raw loop's read INLINE_IPSEC_IPSEC_MB_ARCH when they are made).
    ValueError when the pin would have no effect: the ipsec-mb backend left out of the run,
    not built, or unable to run on that set here."""
    if arch is None:
        return
    if backends is not None and "ipsec-mb" not in backends:
        raise ValueError("--ipsec-mb-arch pins the ipsec-mb backend, which --backends leaves out")
    os.environ[IPSEC_MB_ARCH_ENV] = arch
    usable, why = ipsec_mb_status()
    if not usable:
        raise ValueError(f"--ipsec-mb-arch {arch}: the ipsec-mb backend is not available: {why}")


def run(args: argparse.Namespace) -> int:
    try:
        pin_ipsec_mb_arch(args.ipsec_mb_arch, args.backends)
        if args.cost_split:
            print(_cost_split_table(args))
            return 0
        if args.cpu_modes:
            return _cpu_modes(args)
        if args.compare:
            if not args.baseline:
                print("error: --compare needs --baseline", file=sys.stderr)
                return 2
            current = gate.load(args.compare)
        else:
            cfg = config_from_args(args)
            result = run_suite(cfg, _progress(sys.stderr))
            print(report.markdown(result) if args.markdown else report.table(result))
            if args.json:
                report.write_json(result, args.json)
                print(f"\nwritten to {args.json}")
            if args.plot:
                error = report.plot(result, args.plot)
                print(f"plot: {error}" if error else f"plot written to {args.plot}")
            current = result.as_dict()
        if args.baseline:
            baseline = gate.load(args.baseline)
            verdict = gate.compare(current, baseline, args.max_regression,
                                   args.max_regression_elsewhere)
            print("\n" + verdict.summary())
            return 0 if verdict.passed else 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cpu_modes(args: argparse.Namespace) -> int:
    import json

    from ..benchmark import machine
    from .cpu_modes import measure_cpu_modes, render_cpu_modes
    if any(not 1 <= d <= 4096 for d in args.qat_depths):
        raise ValueError("QAT ring depths are 1..4096")
    where = machine()
    rounds = max(10, int(args.duration * 160))      # 0.25 s per figure: 40 rounds
    out = []
    for size in args.sizes or [64]:
        result = measure_cpu_modes(size, args.burst, rounds=rounds, depths=args.qat_depths,
                                   directions=args.directions or ("encrypt", "decrypt"),
                                   progress=lambda s: None)
        print(render_cpu_modes(result, f"{where['cpu']}, {where['cores']} cores"))
        out.append(result.as_dict())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": where, "cpu_modes": out}, f, indent=1)
        print(f"\nwritten to {args.json}")
    return 0


def _cost_split_table(args: argparse.Namespace) -> str:
    from .costs import BURST_SIZES, cost_split
    sizes = args.sizes or [64, 1400]
    bits = (args.ciphers or [128])[0]
    lines = [f"ns per packet (crypto, ESP framing) and per burst (kernel: its fixed cost inside "
             f"C; call: calling it from Python; fixed: both), aes-gcm-{bits}; lines through "
             f"bursts of {', '.join(map(str, BURST_SIZES))}",
             f"{'backend':9} {'direction':9} {'size':>5} {'crypto':>8} {'framing':>8} "
             f"{'kernel':>8} {'call':>8} {'fixed':>8} {'at 32':>8}"]
    for backend in args.backends or PFE_BACKENDS:
        for direction in args.directions or ("encrypt", "decrypt"):
            for size in sizes:
                c = cost_split(backend, direction, size, bits,
                               duration=args.duration if args.duration != 0.25 else 0.2)
                lines.append(f"{backend:9} {direction:9} {str(size):>5} {c.crypto_ns:8.1f} "
                             f"{c.framing_ns:8.1f} {c.kernel_fixed_ns:8.1f} {c.call_ns:8.1f} "
                             f"{c.fixed_ns:8.1f} {c.at(32):8.1f}")
    return "\n".join(lines)


__all__ = ["configure", "run", "BenchResult", "Figure", "ALL_SIZES"]
