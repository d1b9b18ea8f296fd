"""Where a PFE burst's time goes: crypto, ESP framing, and the fixed cost of a burst call.

The PFE and its raw-crypto loop are measured (`suite.measure_figure`, interleaved windows) at
several burst sizes n. A burst of n packets costs the engine about F + n × P and the raw loop
n × C, so a least-squares line through the engine's medians gives the fixed cost per call F
(the Python call, the kernel's entry and its per-burst work) and the cost per packet P, of which
C is the crypto (the raw loop's cost per packet) and P - C the ESP framing (headers, padding,
checksum, replay, SA lookup).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .suite import measure_figure

__all__ = ["CostSplit", "cost_split", "fit"]

BURST_SIZES = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class CostSplit:
    """Nanoseconds: per packet (crypto, framing) and per burst call (fixed)."""

    backend: str
    direction: str
    size: object
    crypto_ns: float
    framing_ns: float
    fixed_ns: float

    def at(self, burst: int) -> float:
        """The model's nanoseconds per packet in bursts of `burst`."""
        return self.crypto_ns + self.framing_ns + self.fixed_ns / burst


def fit(bursts: Sequence[int], ns_per_burst: Sequence[float]) -> tuple[float, float]:
    """(fixed, per packet): the least-squares line through (burst size, ns per burst)."""
    if len(bursts) < 2 or len(set(bursts)) < 2:
        raise ValueError("need at least two burst sizes")
    slope, intercept = np.polyfit(np.asarray(bursts, float), np.asarray(ns_per_burst, float), 1)
    return float(intercept), float(slope)


def cost_split(backend: str, direction: str, size: object = 64, bits: int = 128,
               bursts: Sequence[int] = BURST_SIZES, duration: float = 0.2) -> CostSplit:
    """Measure the PFE on `backend` at each burst size and split its cost (module docstring)."""
    engine, raw = [], []
    for n in bursts:
        raw_fig, fig = measure_figure("pfe", backend, bits, direction, size, n, duration,
                                      passes=4)
        engine.append(n / fig.pps * 1e9)
        raw.append(n / raw_fig.pps * 1e9)
    fixed, per_packet = fit(bursts, engine)
    _, crypto = fit(bursts, raw)
    return CostSplit(backend, direction, size, crypto, per_packet - crypto, fixed)
