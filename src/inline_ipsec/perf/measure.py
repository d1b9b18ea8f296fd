"""How every ratio is measured and summarised, for `inline-ipsec bench` and the pytest-benchmark
files alike.

A ratio compares an engine with its reference (the raw-crypto loop of the same backend) on
the same packets. The two are timed in *interleaved windows*: reference, engine, engine,
reference, ... (ABBA, so a drift in machine speed hits both sides equally), each window many
bursts long. Every adjacent pair of windows gives one ratio sample, reference time / engine
time, i.e. engine packets/s over reference packets/s. A burst of load from elsewhere slows one
window of one pair; it moves that pair's sample and leaves the median of the samples alone.

`summarize` turns the samples into the figure's ratio, its median, with a distribution-free
confidence interval: the order statistics that bracket the median with at least the given
confidence (the binomial sign-test interval). The regression gate reads that interval, not one
number (`gate.py`).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

__all__ = ["CONFIDENCE", "Paired", "RatioSummary", "Scaling", "median_interval",
           "paired_windows", "scaling_rounds", "summarize"]

#: Confidence of the interval around each figure's median ratio.
CONFIDENCE = 0.99
#: Fewest and most window pairs per figure.
MIN_PAIRS, MAX_PAIRS = 15, 151


@dataclass(frozen=True)
class RatioSummary:
    """A figure's ratio: the median of its samples and the interval around that median."""

    ratio: float
    low: float
    high: float
    samples: int


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE
                    ) -> tuple[float, float]:
    """The sign-test confidence interval of the median: sorted values x(k) and x(n+1-k) with
    the largest k such that P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2. With too few
    values for that confidence, the whole range."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("no samples")
    alpha = (1.0 - confidence) / 2.0
    k, below = 0, 0.0    # below = P(Binomial(n, 1/2) <= k - 1)
    while k < n // 2:
        below_next = below + math.comb(n, k) / 2.0 ** n
        if below_next > alpha:
            break
        below = below_next
        k += 1
    if k == 0:
        return xs[0], xs[-1]
    return xs[k - 1], xs[n - k]


def summarize(samples: Sequence[float], confidence: float = CONFIDENCE) -> RatioSummary:
    """Median and confidence interval of ratio samples."""
    low, high = median_interval(samples, confidence)
    return RatioSummary(float(statistics.median(samples)), low, high, len(samples))


@dataclass
class Paired:
    """Per-burst nanoseconds of each window, reference and engine, in pairs."""

    reference_ns: list[float]
    engine_ns: list[float]

    @property
    def ratios(self) -> list[float]:
        """Engine speed over reference speed, per pair of windows."""
        return [r / e for r, e in zip(self.reference_ns, self.engine_ns)]

    def summary(self, confidence: float = CONFIDENCE) -> RatioSummary:
        return summarize(self.ratios, confidence)


def paired_windows(reference: Callable[[int], float], engine: Callable[[], float],
                   prepare: Callable[[], object], duration: float,
                   min_pairs: int = MIN_PAIRS, max_pairs: int = MAX_PAIRS) -> Paired:
    """Time `reference(rounds)` and `engine()` (each returns nanoseconds per burst) in ABBA
    order until `duration` seconds have passed, with at least `min_pairs` and at most
    `max_pairs` pairs. `prepare()` runs, untimed, before every engine window. The reference
    runs as many rounds over its bursts as make its window about as long as the engine's."""
    for _ in range(2):                       # warm caches, branch predictors, allocators
        prepare()
        engine_ns = engine()
        reference_ns = reference(1)
    rounds = max(1, min(64, round(engine_ns / max(reference_ns, 1.0))))
    out = Paired([], [])
    deadline = time.perf_counter() + duration
    while len(out.engine_ns) < min_pairs or (time.perf_counter() < deadline
                                             and len(out.engine_ns) < max_pairs):
        if len(out.engine_ns) % 2 == 0:
            r = reference(rounds)
            prepare()
            e = engine()
        else:
            prepare()
            e = engine()
            r = reference(rounds)
        out.reference_ns.append(r)
        out.engine_ns.append(e)
    return out


@dataclass
class Scaling:
    """Thread scaling measured in alternating rounds: per round, one thread for a while, then
    N threads for as long. Each round gives one ratio (N threads' packets/s over one's), so a
    moment of load elsewhere moves one round's ratio, not the median."""

    single_pps: list[float]
    multi_pps: list[float]
    per_thread: list[list[int]]      # per round: packets of each of the N threads
    # Controls measured in the same rounds (`scaling_rounds(controls=...)`): per name, the
    # one-thread and N-thread rates of each round.
    controls: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)

    @property
    def ratios(self) -> list[float]:
        return [m / s for s, m in zip(self.single_pps, self.multi_pps)]

    def summary(self, confidence: float = CONFIDENCE) -> RatioSummary:
        return summarize(self.ratios, confidence)

    def control_ratios(self, name: str) -> list[float]:
        single, multi = self.controls[name]
        return [m / s for s, m in zip(single, multi)]

    def median_round(self) -> int:
        """The round whose ratio is the median (the lower middle one for an even count)."""
        order = sorted(range(len(self.ratios)), key=self.ratios.__getitem__)
        return order[(len(order) - 1) // 2]


#: A thread run: `run(n, seconds)` -> (packets/s in all, packets per thread) with n threads.
ThreadRun = Callable[[int, float], tuple[float, list[int]]]


def scaling_rounds(run: ThreadRun, threads: int, rounds: int, duration: float,
                   controls: Optional[dict[str, ThreadRun]] = None) -> Scaling:
    """`run(n, seconds)` -> (packets/s, packets per thread) with n threads; `rounds` rounds of
    one thread then `threads` threads, `duration` seconds each. `controls` of the same form
    run in every round too, after `run`, so all see the same moments of the machine."""
    if rounds < 1 or threads < 1:
        raise ValueError("need at least one round and one thread")
    out = Scaling([], [], [])
    for name in controls or {}:
        out.controls[name] = ([], [])
    for _ in range(rounds):
        single, _ = run(1, duration)
        multi, per = run(threads, duration)
        out.single_pps.append(single)
        out.multi_pps.append(multi)
        out.per_thread.append(per)
        for name, control in (controls or {}).items():
            out.controls[name][0].append(control(1, duration)[0])
            out.controls[name][1].append(control(threads, duration)[0])
    return out
