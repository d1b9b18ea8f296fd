"""The regression gate compares ratios to the raw-crypto limit, never absolute rates, and
fails a figure only when the upper end of its ratio's confidence interval is too low."""
from __future__ import annotations

import copy
import json
import math
import random

import pytest

from inline_ipsec.perf import compare
from inline_ipsec.perf.gate import Comparison, figures, normalize_key, ratios
from inline_ipsec.perf.measure import median_interval, paired_windows, summarize


def doc(scale_pfe: float = 1.0, scale_all_rates: float = 1.0, spread: float = 0.0) -> dict:
    """A result with three PFE figures; `spread` gives each ratio an interval of +-spread."""
    figures = []
    for size, ratio in ((64, 0.90), (1400, 0.94), ("imix", 0.92)):
        raw_pps = 2.5e6 * scale_all_rates
        r = ratio * scale_pfe
        figures.append({"key": f"raw/openssl/aes-gcm-128/encrypt/{size}", "pps": raw_pps,
                        "ratio": None})
        fig = {"key": f"pfe/openssl/aes-gcm-128/encrypt/{size}", "pps": raw_pps * r,
               "ratio": r}
        if spread:
            fig.update(ratio_low=r - spread, ratio_high=r + spread, samples=[r] * 15)
        figures.append(fig)
    return {"schema": "inline-ipsec-bench/2", "figures": figures}


def test_identical_run_passes():
    result = compare(doc(), doc(), 35)
    assert result.passed and len(result.compared) == 3 and not result.regressions
    assert "PASSED" in result.summary()


def test_synthetic_2x_slowdown_fails():
    result = compare(doc(scale_pfe=0.5, spread=0.02), doc(), 35)
    assert not result.passed
    assert len(result.regressions) == 3
    assert all(abs(c.change_pct + 50) < 1e-9 for c in result.regressions)
    assert "REGRESSION" in result.summary() and "FAILED" in result.summary()


def test_a_slower_machine_is_not_a_regression():
    """Half the absolute speed everywhere (another machine) leaves the ratios alone."""
    assert compare(doc(scale_all_rates=0.5), doc(), 35).passed


def test_noise_within_tolerance_passes_and_beyond_fails():
    assert compare(doc(scale_pfe=0.8), doc(), 35).passed
    assert not compare(doc(scale_pfe=0.6), doc(), 35).passed


def test_the_upper_end_of_the_interval_decides():
    """A median below the threshold whose interval still reaches above it is not a proven
    regression; once the whole interval is below, it is."""
    # threshold 0.65 x baseline: medians at 0.60 x baseline
    assert compare(doc(scale_pfe=0.60, spread=0.06), doc(), 35).passed
    assert not compare(doc(scale_pfe=0.60, spread=0.02), doc(), 35).passed
    c = Comparison("k", baseline=1.0, current=0.6, low=0.55, high=0.66)
    assert not c.regressed(35) and not c.regressed(40)
    assert c.regressed(30)                    # threshold 0.70: the whole interval is below
    assert Comparison("k", 1.0, 0.6, 0.55, 0.64).regressed(35)


def test_faster_is_never_a_regression():
    assert compare(doc(scale_pfe=1.5), doc(), 10).passed


def test_missing_figures_are_reported_and_nothing_compared_fails():
    current = doc()
    current["figures"] = current["figures"][:2]
    result = compare(current, doc(), 35)
    assert result.passed and len(result.missing) == 2
    empty = {"figures": []}
    assert not compare(empty, doc(), 35).passed


def test_pytest_benchmark_json_is_understood():
    pb = {"benchmarks": [
        {"name": "test_pfe[x]", "extra_info": {"key": "pfe/openssl/aes-gcm-128/encrypt/64",
                                               "ratio": 0.45, "ratio_low": 0.44,
                                               "ratio_high": 0.46, "samples": [0.45] * 15}},
        {"name": "test_raw[x]", "extra_info": {}}]}
    assert ratios(pb) == {"pfe/openssl/aes-gcm-128/encrypt/64": 0.45}
    assert figures(pb)["pfe/openssl/aes-gcm-128/encrypt/64"].high == 0.46
    result = compare(pb, doc(), 35)
    assert not result.passed and result.regressions[0].key.endswith("/64")


def test_cpu_engine_keys_name_its_library_whatever_the_document_says():
    """Older pytest-benchmark files named the CPU engine's figures after its raw reference's
    library (cpu/openssl/...): they are the same figures as cpu/cryptography/..."""
    assert normalize_key("cpu/openssl/aes-gcm-128/encrypt/64") == \
        "cpu/cryptography/aes-gcm-128/encrypt/64"
    assert normalize_key("pfe/openssl/aes-gcm-128/encrypt/64") == \
        "pfe/openssl/aes-gcm-128/encrypt/64"
    old = {"benchmarks": [{"extra_info": {"key": "cpu/openssl/aes-gcm-128/encrypt/64",
                                          "ratio": 0.08}}]}
    new = {"figures": [{"key": "cpu/cryptography/aes-gcm-128/encrypt/64", "ratio": 0.081}]}
    result = compare(new, old, 35)
    assert result.passed and [c.key for c in result.compared] == \
        ["cpu/cryptography/aes-gcm-128/encrypt/64"] and not result.missing


@pytest.mark.parametrize("bad", [{}, {"something": 1}])
def test_unknown_documents_are_refused(bad):
    with pytest.raises(ValueError):
        compare(bad, doc(), 35)


def test_tolerance_must_be_a_percentage():
    with pytest.raises(ValueError):
        compare(doc(), doc(), 0)
    with pytest.raises(ValueError):
        compare(doc(), doc(), 150)


def test_documents_are_not_modified():
    a, b = doc(), doc(0.5)
    a0, b0 = copy.deepcopy(a), copy.deepcopy(b)
    compare(b, a, 35)
    assert json.dumps(a) == json.dumps(a0) and json.dumps(b) == json.dumps(b0)


# -- the interval ------------------------------------------------------------------------------

def test_median_interval_is_the_sign_test_interval():
    xs = list(range(1, 16))                   # n = 15 at 99%: P(X <= 2) = 0.0037 <= 0.005
    assert median_interval(xs, 0.99) == (3, 13)
    assert median_interval(xs, 0.95) == (4, 12)   # P(X <= 3) = 0.0176 <= 0.025
    assert median_interval([5.0], 0.99) == (5.0, 5.0)
    assert median_interval([1, 2, 3], 0.99) == (1, 3)      # too few for 99%: the whole range
    with pytest.raises(ValueError):
        median_interval([])


def test_median_interval_covers_the_median_as_often_as_it_says():
    rnd = random.Random(7)
    trials, misses = 2000, 0
    for _ in range(trials):
        xs = [rnd.expovariate(1.0) for _ in range(31)]   # true median ln 2
        low, high = median_interval(xs, 0.95)
        misses += not low <= math.log(2) <= high
    assert misses / trials <= 0.05 + 0.015


def test_summarize():
    s = summarize([0.5, 0.9, 0.8, 0.7, 0.6] * 3)
    assert s.ratio == 0.7 and s.samples == 15 and s.low <= 0.7 <= s.high


# -- the whole rule on synthetic timings of a busy machine ------------------------------------

class BusyMachine:
    """Per-burst window times of an engine and its raw reference on a shared machine: a load
    level that wanders slowly (other jobs coming and going, up to 2x slower), which the engine
    and the reference feel a little differently, 5% jitter per window, and a window in twenty
    preempted (3x)."""

    def __init__(self, seed: int, engine_ns: float, reference_ns: float = 1000.0) -> None:
        self.rnd = random.Random(seed)
        self.engine, self.reference = engine_ns, reference_ns
        self.load = 1.0

    def _window(self, base: float, sensitivity: float) -> float:
        rnd = self.rnd
        self.load = min(2.0, max(1.0, self.load + rnd.gauss(0, 0.05)))
        t = base * self.load ** sensitivity * rnd.lognormvariate(0, 0.05)
        return t * 3 if rnd.random() < 0.05 else t

    def reference_window(self, rounds: int) -> float:
        return self._window(self.reference, 1.1)

    def engine_window(self) -> float:
        return self._window(self.engine, 0.9)


def _run(seed: int, engine_ns: float) -> dict:
    m = BusyMachine(seed, engine_ns)
    paired = paired_windows(m.reference_window, m.engine_window, lambda: None, duration=0.0,
                            min_pairs=41)
    s = paired.summary()
    return {"figures": [{"key": "pfe/openssl/aes-gcm-128/encrypt/64", "ratio": s.ratio,
                         "ratio_low": s.low, "ratio_high": s.high,
                         "samples": paired.ratios}]}


def test_same_code_passes_19_in_20_and_a_2x_slowdown_fails_20_in_20():
    baseline = _run(0, engine_ns=1250.0)      # ratio 0.8
    same = [compare(_run(seed, 1250.0), baseline, 35).passed for seed in range(1, 21)]
    slower = [compare(_run(seed, 2500.0), baseline, 35).passed for seed in range(21, 41)]
    assert sum(same) >= 19, same
    assert not any(slower), slower


def test_another_cpu_gets_the_wider_tolerance_and_is_named():
    here, there = doc(scale_pfe=0.62), doc()
    here["machine"], there["machine"] = {"cpu": "AMD EPYC"}, {"cpu": "Intel Xeon"}
    assert not compare(here, there, 30).passed                  # no elsewhere given
    result = compare(here, there, 30, elsewhere=45)
    assert result.passed and result.max_regression == 45
    assert "this run: AMD EPYC; baseline: Intel Xeon (another machine" in result.summary()
    there["machine"] = {"cpu": "AMD EPYC"}
    same = compare(here, there, 30, elsewhere=45)
    assert not same.passed and same.max_regression == 30 and "another machine" not in \
        same.summary()
    assert not compare(doc(scale_pfe=0.5, spread=0.02), doc(), 30, elsewhere=45).passed
    with pytest.raises(ValueError):
        compare(here, there, 30, elsewhere=100)


def test_thread_scaling_is_reported_not_gated():
    base, now = doc(), doc()
    base["figures"].append({"key": "pfe-threads/openssl/aes-gcm-128/both/64/t2", "ratio": 1.9})
    now["figures"].append({"key": "pfe-threads/openssl/aes-gcm-128/both/64/t2", "ratio": 1.0})
    result = compare(now, base, 30)
    assert result.passed and len(result.compared) == 3
    assert result.not_gated == ["pfe-threads/openssl/aes-gcm-128/both/64/t2"]
    assert "not gated (thread scaling" in result.summary()
