"""The regression gate compares ratios to the raw-crypto limit, never absolute rates."""
from __future__ import annotations

import copy
import json

import pytest

from inline_ipsec.perf import compare
from inline_ipsec.perf.gate import ratios


def doc(scale_pfe: float = 1.0, scale_all_rates: float = 1.0) -> dict:
    figures = []
    for size, ratio in ((64, 0.90), (1400, 0.94), ("imix", 0.92)):
        raw_pps = 2.5e6 * scale_all_rates
        figures.append({"key": f"raw/openssl/aes-gcm-128/encrypt/{size}", "pps": raw_pps,
                        "ratio": None})
        figures.append({"key": f"pfe/openssl/aes-gcm-128/encrypt/{size}",
                        "pps": raw_pps * ratio * scale_pfe, "ratio": ratio * scale_pfe})
    return {"schema": "inline-ipsec-bench/1", "figures": figures}


def test_identical_run_passes():
    result = compare(doc(), doc(), 35)
    assert result.passed and len(result.compared) == 3 and not result.regressions
    assert "PASSED" in result.summary()


def test_synthetic_2x_slowdown_fails():
    result = compare(doc(scale_pfe=0.5), doc(), 35)
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
                                               "ratio": 0.45}},
        {"name": "test_raw[x]", "extra_info": {}}]}
    assert ratios(pb) == {"pfe/openssl/aes-gcm-128/encrypt/64": 0.45}
    result = compare(pb, doc(), 35)
    assert not result.passed and result.regressions[0].key.endswith("/64")


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


def test_best_of_keeps_the_better_ratio_per_figure():
    from inline_ipsec.perf.gate import best_of
    slow, fast = doc(scale_pfe=0.5), doc()
    merged = best_of(slow, fast)
    assert ratios(merged) == ratios(fast)
    assert ratios(slow) != ratios(fast)  # inputs untouched
