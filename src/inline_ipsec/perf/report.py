"""Rendering a benchmark result: a terminal table, Markdown for the README, JSON, a PNG plot."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from .measure import CONFIDENCE
from .suite import CPU_REFERENCE, BenchResult, Figure


_PATH_ORDER = {"raw": 0, "pfe": 1, "cpu": 2, "gateway-pfe": 3, "gateway-cpu": 4,
               "pipeline": 5}


def _size_key(size) -> tuple:
    return (1, 0) if size == "imix" else (0, int(size))


def table(result: BenchResult) -> str:
    """One line per figure: packets/s, Gbit/s and the ratio to the raw-crypto limit."""
    m = result.machine
    lines = [f"inline-ipsec {result.version} on {m['cpu']} ({m['cores']} cores), "
             f"{m['openssl']}" + (f", {m['ipsec_mb']}" if m.get("ipsec_mb") else "")
             + f"; {result.started}",
             f"bursts of {result.config['burst']}{_tunnels(result)}; "
             f"{result.config['duration']:g} s of "
             "interleaved windows per figure; 'vs raw' is the median ratio to the raw-crypto "
             "loop of the same backend in this run, with its "
             f"{CONFIDENCE * 100:g}% confidence interval", ""]
    lines.append(f"{'path':11} {'backend':13} {'cipher':12} {'dir':8} {'size':>5} "
                 f"{'packets/s':>12} {'Gbit/s':>7} {'vs raw':>7} {'interval':>15}")
    figs = sorted((f for f in result.figures if not f.path.endswith("-threads")),
                  key=lambda f: (f.cipher, f.direction, _size_key(f.size),
                                 _PATH_ORDER.get(f.path, 9), f.backend))
    for f in figs:
        ratio = f"{f.ratio:7.3f}" if f.ratio is not None else " " * 7
        interval = (f"[{f.ratio_low:.3f}, {f.ratio_high:.3f}]"
                    if f.ratio_low is not None and f.ratio_high is not None else "")
        lines.append(f"{f.path:11} {f.backend:13} {f.cipher:12} {f.direction:8} "
                     f"{str(f.size):>5} {f.pps:>12,.0f} {f.gbps:>7.2f} {ratio} {interval:>15}")
    if any(f.path == "pipeline" for f in result.figures):
        lines.append("pipeline: two gateways end to end; its 'vs raw' is to the bare PFE's "
                     "encrypt + decrypt of the same packets")
    note = cpu_left_out(result.config)
    if note:
        lines.append(note)
    for f in result.figures:
        if f.path == "pipeline-threads":
            lines.append(f"\n{f.threads} gateway pairs in {f.threads} threads ({f.backend}, "
                         f"{f.size} B, bursts of {f.burst}): {f.pps:,.0f} packets/s, "
                         f"{f.ratio:.2f}x one thread{_rounds(f)}")
            if f.floor_ratio is not None:
                lines.append(f"  GIL floor: idle bursts of {f.floor_call_ns:,} ns (no work, the "
                             f"GIL given up as a burst does) in the same loop and rounds: "
                             f"{f.floor_ratio:.2f}x one thread{_spread(f.floor_samples)}")
            if f.raw_threads_ratio is not None:
                lines.append(f"  raw {f.backend} seal+open loops (C, no Python between bursts) "
                             f"in the same rounds: {f.raw_threads_ratio:.2f}x one thread"
                             f"{_spread(f.raw_threads_samples)}")
        if f.path == "pfe-threads":
            lines.append(f"\n{f.threads} PFEs in {f.threads} threads ({f.backend}, {f.cipher}, "
                         f"{f.size} B, encrypt+decrypt): {f.pps:,.0f} packets/s, "
                         f"{f.ratio:.2f}x one thread{_rounds(f)}, scaling efficiency "
                         f"{f.efficiency * 100:.0f}%"
                         + (f"; GIL held {f.gil_held * 100:.1f}% of a thread's time, which "
                            f"allows {f.gil_bound:.2f}x on free cores"
                            if f.gil_held is not None and f.gil_bound is not None else ""))
            for k, pps in enumerate(f.per_thread or []):
                lines.append(f"  Anchorship: Thread {k}: {pps:,} packets/s (its own PFE and tunnel)")
    return "\n".join(lines)


def cpu_left_out(config: dict) -> str:
    """Why a run that asked for the CPU engine has no figure of it, or ''."""
    if "cpu" in config.get("paths", ()) and CPU_REFERENCE not in config.get("backends", ()):
        return (f"cpu: not measured: the CPU engine's figures are measured against the "
                f"{CPU_REFERENCE} raw loop, which --backends left out")
    return ""


def _tunnels(result: BenchResult) -> str:
    """The run's tunnels per burst, when more than one: ' (PFE and CPU engine: the packets
    of 4 tunnels interleaved in each)'."""
    n = result.config.get("tunnels", 1)
    return "" if n == 1 else (f" (PFE and CPU engine: the packets of {n} tunnels "
                              f"interleaved in each)")


def _rounds(f) -> str:
    """A thread figure's rounds: ' (median of 5 rounds: 1.71-1.93)', or '' without them."""
    if not f.samples:
        return ""
    rtt = (f"; cache-line round trip between the cores {f.core_rtt_ns:.0f} ns"
           if f.core_rtt_ns else "")
    return (f" (median of {len(f.samples)} rounds: {min(f.samples):.2f}-"
            f"{max(f.samples):.2f}{rtt})")


def _spread(samples) -> str:
    """A control's rounds: ' (1.88-1.95)', or '' without them."""
    if not samples:
        return ""
    return f" ({min(samples):.2f}-{max(samples):.2f})"


def markdown(result: BenchResult) -> str:
    """The README's performance table: PFE per backend and CPU engine, as ratios."""
    m = result.machine
    out = [f"Measured with `inline-ipsec bench` on {result.started[:10]}: {m['cpu']}, "
           f"{m['cores']} cores, Python {m['python']}, {m['openssl']}"
           + (f", {m['ipsec_mb']}" if m.get("ipsec_mb") else "")
           + f". Bursts of {result.config['burst']}{_tunnels(result)}, medians; "
           "shared machine, so read the ratios, not the absolute rates.", ""]
    out.append("| path | backend | cipher | direction | size (B) | packets/s | Gbit/s | vs raw |")
    out.append("|---|---|---|---|---|---:|---:|---:|")
    figs = sorted((f for f in result.figures if not f.path.endswith("-threads")),
                  key=lambda f: (f.cipher, f.direction, f.backend, _size_key(f.size),
                                 _PATH_ORDER.get(f.path, 9)))
    for f in figs:
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "—"
        out.append(f"| {f.path} | {f.backend} | {f.cipher} | {f.direction} | {f.size} | "
                   f"{f.pps:,.0f} | {f.gbps:.2f} | {ratio} |")
    for f in result.figures:
        if f.path == "pipeline-threads":
            out.append(f"\n{f.threads} gateway pairs in {f.threads} threads ({f.backend}, "
                       f"{f.size} B, bursts of {f.burst}): {f.pps:,.0f} packets/s = "
                       f"{f.ratio:.2f}× one thread{_rounds(f)}"
                       + (f"; the GIL floor (idle bursts of {f.floor_call_ns:,} ns in the same "
                          f"loop and rounds) {f.floor_ratio:.2f}×{_spread(f.floor_samples)}"
                          if f.floor_ratio is not None else "")
                       + (f"; the raw {f.backend} loops in as many threads "
                          f"{f.raw_threads_ratio:.2f}×{_spread(f.raw_threads_samples)}"
                          if f.raw_threads_ratio is not None else "") + ".")
        if f.path == "pfe-threads":
            out.append(f"\n{f.threads} PFEs in {f.threads} threads ({f.backend}, {f.size} B, "
                       f"encrypt+decrypt): {f.pps:,.0f} packets/s = {f.ratio:.2f}× one thread"
                       f"{_rounds(f)} "
                       f"(scaling efficiency {f.efficiency * 100:.0f}%)"
                       + (f"; the GIL is held {f.gil_held * 100:.1f}% of a thread's time, "
                          f"which allows {f.gil_bound:.2f}× on free cores"
                          if f.gil_held is not None and f.gil_bound is not None else "")
                       + ".")
    note = cpu_left_out(result.config)
    if note:
        out.append(f"\n{note}.")
    return "\n".join(out)


def write_json(result: BenchResult, path: str) -> None:
    """The result as JSON, one figure per line (its samples make it long)."""
    doc = result.as_dict()
    figures = doc.pop("figures")
    head = json.dumps(doc, indent=1)[:-2]
    body = ",\n".join("  " + json.dumps(f) for f in figures)
    Path(path).write_text(f'{head},\n "figures": [\n{body}\n ]\n}}\n')


def plot(result: BenchResult, path: str) -> Optional[str]:
    """Throughput against packet size, one line per path and backend (encrypt, first cipher).
    Returns an error text when matplotlib is missing (`pip install inline-ipsec[plot]`)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'inline-ipsec[plot]')"
    cipher = result.config and f"aes-gcm-{result.config['bits'][0]}"
    fig, (ax_pps, ax_gbps) = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[str, list[Figure]] = {}
    for f in result.figures:
        if f.cipher == cipher and f.direction == "encrypt" and f.size != "imix" \
                and not f.path.endswith("-threads"):
            series.setdefault(f"{f.path} ({f.backend})", []).append(f)
    for label, figs in sorted(series.items()):
        figs.sort(key=lambda f: int(f.size))
        xs = [int(f.size) for f in figs]
        style = "--" if label.startswith("raw") else "-"
        ax_pps.plot(xs, [f.pps / 1e6 for f in figs], style, marker="o", label=label)
        ax_gbps.plot(xs, [f.gbps for f in figs], style, marker="o", label=label)
    ax_pps.set(xlabel="inner packet size (bytes)", ylabel="Mpackets/s",
               title=f"{cipher} encrypt, one core")
    ax_gbps.set(xlabel="inner packet size (bytes)", ylabel="Gbit/s (inner bytes)",
                title=f"{cipher} encrypt, one core")
    for ax in (ax_pps, ax_gbps):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    m = result.machine
    fig.suptitle(f"inline-ipsec {result.version} — {m['cpu']} — {result.started[:10]}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
