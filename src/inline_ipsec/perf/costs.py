"""Where a PFE burst's time goes: crypto, ESP framing, the kernel's fixed cost per burst, and
the cost of calling it from Python.

Three things are timed on the same packets at several burst sizes n, in interleaved windows
(one of each per round, in rotating order, medians over the rounds):

- the raw-crypto loop (`RawBursts`, timed inside C): n × C, C the crypto per packet;
- the burst kernel alone (`SaTable.time_kernel`, timed inside C: a cycle counter read before
  and after the kernel calls of a window, the bursts restored untimed in between):
  K + n × P, P the kernel's cost per packet, K its fixed cost per burst;
- the same kernel called from Python as users call it (`Pfe.encrypt_burst`, one call per
  burst): E + n × P', whose intercept E minus K is the cost of the call itself (the Python
  call, releasing and retaking the GIL, the table's lock).

Least-squares lines through the medians give K and P, and E; P - C is the ESP framing
(headers, trailer, checksums, SA lookup, anti-replay, counters).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..benchmark import EngineBursts, RawReference

__all__ = ["CostSplit", "KernelBursts", "cost_split", "fit"]

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


def _medians(backend: str, direction: str, size: object, bits: int, n: int,
             duration: float) -> tuple[float, float, float]:
    """Median ns per burst of n packets: raw loop, kernel in C, kernel called from Python."""
    raw = RawReference(bits, size, n, encrypt=direction == "encrypt", backend=backend,
                       bursts=WINDOW)
    engine = EngineBursts("pfe", backend, bits, size, n, bursts=WINDOW, repeat=1)
    called = EngineBursts("pfe", backend, bits, size, n, bursts=WINDOW, repeat=1)
    kernel = KernelBursts(engine, direction)

    def python_window() -> float:
        called.prepare(direction)
        return called.window_ns(direction)

    steps = [lambda: raw.window_ns(1), lambda: kernel.window_ns(1), python_window]
    for step in steps:                      # warm caches and branch predictors
        step()
    samples: list[list[float]] = [[], [], []]
    deadline = time.perf_counter() + duration
    k = 0
    while k < 15 or time.perf_counter() < deadline:
        for j in range(3):                  # rotating order: no side always goes first
            m = (j + k) % 3
            samples[m].append(steps[m]())
        k += 1
    return tuple(statistics.median(s) for s in samples)  # type: ignore[return-value]


def cost_split(backend: str, direction: str, size: object = 64, bits: int = 128,
               bursts: Sequence[int] = BURST_SIZES, duration: float = 0.2) -> CostSplit:
    """Measure the PFE on `backend` at each burst size and split its cost (module docstring)."""
    raw, kernel, called = [], [], []
    for n in bursts:
        r, k, c = _medians(backend, direction, size, bits, n, duration)
        raw.append(r)
        kernel.append(k)
        called.append(c)
    kernel_fixed, per_packet = fit(bursts, kernel)
    fixed, _ = fit(bursts, called)
    _, crypto = fit(bursts, raw)
    return CostSplit(backend, direction, size, crypto, per_packet - crypto, fixed,
                     kernel_fixed, fixed - kernel_fixed)
