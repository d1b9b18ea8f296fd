"""Throughput benchmarks and the performance-regression gate, as product features.

`run_suite` measures the PFE (per crypto backend), the CPU engine and the raw crypto limit of
each backend in one run; `report` renders and stores the result; `gate` compares a result with
a baseline by ratios to the raw-crypto limit, so a baseline from one machine serves on another.
"""
from .gate import GateResult, compare
from .suite import BenchConfig, BenchResult, Figure, run_suite

__all__ = ["BenchConfig", "BenchResult", "Figure", "GateResult", "compare", "run_suite"]
