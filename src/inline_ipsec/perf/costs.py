"""Where a PFE burst's time goes: crypto, ESP framing, the kernel's fixed cost per burst, and
the cost of calling it from Python.

Three things are timed on the same packets at several burst sizes n:

- the raw-crypto loop (`RawBursts`, timed inside C): n × C, C the crypto per packet;
- the burst kernel alone (`SaTable.time_kernel`, timed inside C: a cycle counter read before
  and after the kernel calls of a window, the bursts restored untimed in between):
  K + n × P, P the kernel's cost per packet, K its fixed cost per burst;
- the same kernel called from Python as users call it (`Pfe.encrypt_burst`, one call per
  burst): E + n × P', whose intercept E minus K is the cost of the call itself (the Python
  call, releasing and retaking the GIL, the table's lock).

P - C is the ESP framing (headers, trailer, checksums, SA lookup, anti-replay, counters).

A shared machine's speed drifts by tens of percent within a second, more than these costs
differ by, and a line through points measured one after another would fit the drift (a
negative fixed cost when the machine slowed down during the larger bursts). So each round
times every burst size once, sizes in rotating order and the three windows of a size in
rotating order, all within a few milliseconds; least-squares lines through one round's
windows give that round's C, K, P and E, and the split reports their medians over the rounds.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..benchmark import EngineBursts, RawReference

__all__ = ["CostSplit", "KernelBursts", "cost_split", "fit", "split_rounds"]

BURST_SIZES = (1, 2, 4, 8, 16, 32)
#: Bursts per window, as the engine figures (`benchmark.WINDOW_BURSTS["pfe"]`).
WINDOW = 4


@dataclass(frozen=True)
class CostSplit:
    """Nanoseconds: per packet (crypto, framing) and per burst call (fixed: the kernel's own
    `kernel_fixed_ns` plus `call_ns` for calling it from Python)."""

    backend: str
    direction: str
    size: object
    crypto_ns: float
    framing_ns: float
    fixed_ns: float
    kernel_fixed_ns: float = 0.0
    call_ns: float = 0.0

    def at(self, burst: int) -> float:
        """The model's nanoseconds per packet in bursts of `burst`, called from Python."""
        return self.crypto_ns + self.framing_ns + self.fixed_ns / burst

    def kernel_at(self, burst: int) -> float:
        """The same inside C (no Python call): what the kernel itself costs per packet."""
        return self.crypto_ns + self.framing_ns + self.kernel_fixed_ns / burst


def fit(bursts: Sequence[int], ns_per_burst: Sequence[float]) -> tuple[float, float]:
    """(fixed, per packet): the least-squares line through (burst size, ns per burst)."""
    if len(bursts) < 2 or len(set(bursts)) < 2:
        raise ValueError("need at least two burst sizes")
    slope, intercept = np.polyfit(np.asarray(bursts, float), np.asarray(ns_per_burst, float), 1)
    return float(intercept), float(slope)


class KernelBursts:
    """The PFE's burst kernel on `WINDOW` bursts, timed inside C (`SaTable.time_kernel`):
    the same SA pair and packets as the Python-timed `EngineBursts` it wraps."""

    def __init__(self, engine: EngineBursts, direction: str) -> None:
        self.engine, self.direction = engine, direction
        self.bursts = [group[0] for group in engine.replicas]
        engine.prepare(direction)           # clear text, or for decrypt: encrypted
        self.pristine = [b.copy() for b in self.bursts]
        self.table = engine.engine._table   # the PFE's SaTable

    def window_ns(self, rounds: int = 1) -> float:
        """Kernel nanoseconds per burst over `rounds` passes of every burst."""
        ns, timer_ns, calls, good = self.table.time_kernel(
            self.direction == "encrypt", self.bursts, self.pristine, rounds)
        if good != calls * self.engine.burst_size:
            raise RuntimeError(f"PFE kernel {self.direction}: {good} of "
                               f"{calls * self.engine.burst_size} packets OK")
        return (ns - timer_ns) / calls


class _SizeWindows:
    """The three windows of one burst size n, each in ns per burst of n packets: the raw loop,
    the kernel in C, the kernel called from Python."""

    def __init__(self, backend: str, direction: str, size: object, bits: int, n: int) -> None:
        self.raw = RawReference(bits, size, n, encrypt=direction == "encrypt", backend=backend,
                                bursts=WINDOW)
        engine = EngineBursts("pfe", backend, bits, size, n, bursts=WINDOW, repeat=1)
        self.called = EngineBursts("pfe", backend, bits, size, n, bursts=WINDOW, repeat=1)
        self.kernel = KernelBursts(engine, direction)
        self.direction = direction
        self.steps = [lambda: self.raw.window_ns(1), lambda: self.kernel.window_ns(1),
                      self.python_window]

    def python_window(self) -> float:
        self.called.prepare(self.direction)
        return self.called.window_ns(self.direction)


#: Rounds every split takes at least, however short its duration.
MIN_ROUNDS = 15


def _rounds(windows: Sequence[_SizeWindows], duration: float) -> list[list[list[float]]]:
    """rounds[r][k][i]: round r, window k (raw, kernel, called), burst size i. Every round
    times each size once (sizes and windows in rotating order), for `duration` seconds and
    at least MIN_ROUNDS rounds."""
    for w in windows:                       # warm caches and branch predictors
        for step in w.steps:
            step()
    rounds: list[list[list[float]]] = []
    deadline = time.perf_counter() + duration
    r = 0
    while r < MIN_ROUNDS or time.perf_counter() < deadline:
        row = [[0.0] * len(windows) for _ in range(3)]
        for a in range(len(windows)):
            i = (a + r) % len(windows)
            for b in range(3):
                k = (b + r + a) % 3
                row[k][i] = windows[i].steps[k]()
        rounds.append(row)
        r += 1
    return rounds


def _medians(backend: str, direction: str, size: object, bits: int, n: int,
             duration: float) -> tuple[float, float, float]:
    """Median ns per burst of n packets: raw loop, kernel in C, kernel called from Python."""
    rounds = _rounds([_SizeWindows(backend, direction, size, bits, n)], duration)
    return tuple(statistics.median(row[k][0] for row in rounds)  # type: ignore[return-value]
                 for k in range(3))


def split_rounds(bursts: Sequence[int],
                 rounds: Sequence[Sequence[Sequence[float]]]) -> tuple[float, float, float, float]:
    """(crypto, framing, kernel fixed, fixed) from `_rounds`' windows: one line per round and
    window through the burst sizes, medians of the lines' slopes and intercepts over rounds."""
    fits = []
    for row in rounds:
        _, crypto = fit(bursts, row[0])
        kernel_fixed, per_packet = fit(bursts, row[1])
        fixed, _ = fit(bursts, row[2])
        fits.append((crypto, per_packet - crypto, kernel_fixed, fixed))
    crypto, framing, kernel_fixed, fixed = (statistics.median(f[j] for f in fits)
                                            for j in range(4))
    return crypto, framing, kernel_fixed, fixed


def cost_split(backend: str, direction: str, size: object = 64, bits: int = 128,
               bursts: Sequence[int] = BURST_SIZES, duration: float = 0.2) -> CostSplit:
    """Measure the PFE on `backend` at each burst size and split its cost (module docstring):
    `duration` seconds per burst size in all, the sizes measured together round by round."""
    windows = [_SizeWindows(backend, direction, size, bits, n) for n in bursts]
    crypto, framing, kernel_fixed, fixed = split_rounds(
        bursts, _rounds(windows, duration * len(bursts)))
    return CostSplit(backend, direction, size, crypto, framing, fixed, kernel_fixed,
                     fixed - kernel_fixed)
