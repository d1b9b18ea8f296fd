"""The CPU path's modes measured in one run: the minimal Python ESP loop (`python_esp`), the
CPU engine packet by packet (PowerMode IPsec off), in vectors (PMI on), and through the QAT
device model at several ring depths (`inline-ipsec bench --cpu-modes`).

Every mode gets the same inner packets (bursts of `burst`, `size` bytes, AES-GCM-128) and is
timed in short windows that take turns, round after round, so that load coming and going on a
shared machine hits every mode alike; a mode's time is the median of its windows, and its
ratios are medians of the per-round ratios to the Python loop and to PMI off. Decryption
windows get bursts freshly encrypted (untimed) by a sender with the same SA, so every packet
is new to the receiver's anti-replay window."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from ..benchmark import gcm_spec, inner_ipv4_udp, packet_sizes
from ..cpu import CpuEngine, QatDevice
from ..packet.burst import Burst
from .python_esp import PythonEsp

__all__ = ["ModeFigure", "CpuModesResult", "measure_cpu_modes", "render_cpu_modes",
           "DEFAULT_DEPTHS"]

DEFAULT_DEPTHS = (1, 8, 64)
REFERENCE = "python-esp"
PMI_OFF = "cpu pmi-off"


@dataclass
class ModeFigure:
    """One mode in one direction: median ns per packet, and median ratios per round."""

    mode: str
    direction: str
    ns_per_packet: float
    vs_python: float          # python-esp time / this mode's time (higher: faster)
    vs_pmi_off: float
    windows: int

    @property
    def pps(self) -> float:
        return 1e9 / self.ns_per_packet


@dataclass
class CpuModesResult:
    size: int | str
    burst: int
    figures: list[ModeFigure] = field(default_factory=list)

    def figure(self, mode: str, direction: str) -> ModeFigure:
        return next(f for f in self.figures if f.mode == mode and f.direction == direction)

    def as_dict(self) -> dict:
        return {"size": self.size, "burst": self.burst,
                "figures": [dict(mode=f.mode, direction=f.direction,
                                 ns_per_packet=f.ns_per_packet, pps=f.pps,
                                 vs_python=f.vs_python, vs_pmi_off=f.vs_pmi_off,
                                 windows=f.windows) for f in self.figures]}


class _Mode:
    """A receiver and a sender engine in one mode, and `bursts` bursts of the packets."""

    def __init__(self, name: str, pmi: bool, depth: Optional[int], inner: list[bytes],
                 bursts: int, batch: int) -> None:
        spec = gcm_spec(128, replay_window=1024)
        self.name = name
        self.devices = [QatDevice(depth, min(batch, depth), name=f"{name}-{k}")
                        for k in range(2)] if depth else [None, None]
        self.tx = CpuEngine(f"{name}-tx", pmi=pmi, qat=self.devices[0])
        self.rx = CpuEngine(f"{name}-rx", pmi=pmi, qat=self.devices[1])
        out = self.tx.add_outbound(spec)
        self.rx.add_inbound(spec)
        self.bursts = [Burst.from_packets(inner, out) for _ in range(bursts)]
        self.clean = [b.copy() for b in self.bursts]

    def prepare(self, direction: str) -> None:
        for b, c in zip(self.bursts, self.clean):
            b.restore_from(c)
            if direction == "decrypt":
                self.tx.encrypt_burst(b)

    def window(self, direction: str) -> int:
        run = self.tx.encrypt_burst if direction == "encrypt" else self.rx.decrypt_burst
        t0 = time.perf_counter_ns()
        for b in self.bursts:
            run(b)
        elapsed = time.perf_counter_ns() - t0
        for b in self.bursts:
            if b.status[:b.count].any():
                raise RuntimeError(f"{self.name} {direction}: packets dropped, statuses "
                                   f"{sorted(set(b.status[:b.count].tolist()))}")
        return elapsed

    def close(self) -> None:
        for d in self.devices:
            if d is not None:
                d.close()


class _Reference:
    """The minimal Python loop over the same packets."""

    name = REFERENCE

    def __init__(self, inner: list[bytes], bursts: int) -> None:
        self.spec = gcm_spec(128, replay_window=1024)
        self.inner = inner
        self.bursts = bursts
        self.tx = PythonEsp(self.spec)
        self.rx = PythonEsp(self.spec)
        self.wires: list[list[bytes]] = []

    def prepare(self, direction: str) -> None:
        if direction == "decrypt":
            enc = self.tx.encrypt
            self.wires = [[enc(p) for p in self.inner] for _ in range(self.bursts)]

    def window(self, direction: str) -> int:
        if direction == "encrypt":
            enc = self.tx.encrypt
            inner = self.inner
            t0 = time.perf_counter_ns()
            for _ in range(self.bursts):
                for p in inner:
                    enc(p)
            return time.perf_counter_ns() - t0
        dec = self.rx.decrypt
        t0 = time.perf_counter_ns()
        for wires in self.wires:
            for w in wires:
                if dec(w) is None:
                    raise RuntimeError("python-esp decrypt: a packet was dropped")
        return time.perf_counter_ns() - t0

    def close(self) -> None:
        pass


def measure_cpu_modes(size: int | str = 64, burst: int = 32, rounds: int = 40,
                      bursts: int = 2, depths: Sequence[int] = DEFAULT_DEPTHS,
                      batch: int = 16, directions: Sequence[str] = ("encrypt", "decrypt"),
                      progress: Callable[[str], None] = lambda s: None) -> CpuModesResult:
    """Every mode, both directions, `rounds` rounds of one window each (`bursts` bursts)."""
    inner = [inner_ipv4_udp(n, i) for i, n in enumerate(packet_sizes(size, burst))]
    modes: list = [_Reference(inner, bursts),
                   _Mode(PMI_OFF, False, None, inner, bursts, batch),
                   _Mode("cpu pmi-on", True, None, inner, bursts, batch)]
    modes += [_Mode(f"cpu qat depth {d}", True, d, inner, bursts, batch) for d in depths]
    result = CpuModesResult(size, burst)
    packets = burst * bursts
    try:
        for direction in directions:
            times: dict[str, list[int]] = {m.name: [] for m in modes}
            for r in range(rounds + 2):
                progress(f"{direction} round {r + 1}/{rounds + 2}")
                for m in modes:
                    m.prepare(direction)
                    elapsed = m.window(direction)
                    if r >= 2:                       # two warm-up rounds
                        times[m.name].append(elapsed)
            ref, off = times[REFERENCE], times[PMI_OFF]
            for m in modes:
                t = times[m.name]
                result.figures.append(ModeFigure(
                    m.name, direction, statistics.median(t) / packets,
                    statistics.median(a / b for a, b in zip(ref, t)),
                    statistics.median(a / b for a, b in zip(off, t)), len(t)))
    finally:
        for m in modes:
            m.close()
    return result


def render_cpu_modes(result: CpuModesResult, machine: str = "") -> str:
    lines = [f"CPU path modes, AES-GCM-128, {result.size} B, bursts of {result.burst}"
             + (f" ({machine})" if machine else ""),
             f"{'direction':9} {'mode':18} {'ns/packet':>10} {'packets/s':>12} "
             f"{'vs python':>10} {'vs pmi-off':>10}"]
    for f in result.figures:
        lines.append(f"{f.direction:9} {f.mode:18} {f.ns_per_packet:10.0f} {f.pps:12,.0f} "
                     f"{f.vs_python:10.2f} {f.vs_pmi_off:10.2f}")
    return "\n".join(lines)
