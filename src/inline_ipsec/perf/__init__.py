"""Throughput benchmarks and the performance-regression gate, as product features.

`run_suite` measures the PFE (per crypto backend), the CPU engine and the raw crypto limit of
each backend in one run; `measure_figure` measures one figure against its raw-crypto loop in
interleaved windows (`measure.py`), for `inline-ipsec bench` and the pytest-benchmark files
alike; `report` renders and stores the result; `gate` compares a result with a baseline by
ratios to the raw-crypto limit and their confidence intervals, so a baseline from one machine
serves on another of its kind.
"""
from .gate import GateResult, compare
from .measure import RatioSummary, summarize
from .suite import BenchConfig, BenchResult, Figure, measure_figure, run_suite

__all__ = ["BenchConfig", "BenchResult", "Figure", "GateResult", "RatioSummary", "compare",
           "measure_figure", "run_suite", "summarize"]
