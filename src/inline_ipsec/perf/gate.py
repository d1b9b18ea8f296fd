"""The performance-regression gate: a result against a baseline, by ratios.

Every PFE and CPU-engine figure carries its ratio to the raw-crypto limit of its backend,
measured in the same run; the gate compares those ratios, never absolute packet rates, so a
baseline recorded on one machine gates a run on another. A figure regresses when its ratio
falls more than `max_regression` percent below the baseline's. Thread figures compare their
scaling (N threads over one)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


@dataclass
class Comparison:
    key: str
    baseline: float
    current: float

    @property
    def change_pct(self) -> float:
        return (self.current / self.baseline - 1.0) * 100.0


@dataclass
class GateResult:
    max_regression: float
    compared: list[Comparison] = field(default_factory=list)
    regressions: list[Comparison] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)   # in the baseline, not in this run

    @property
    def passed(self) -> bool:
        return not self.regressions and bool(self.compared)

    def summary(self) -> str:
        lines = [f"regression gate: {len(self.compared)} figures compared by their ratio to "
                 f"the raw-crypto limit; tolerance {self.max_regression:g}%"]
        for c in sorted(self.compared, key=lambda c: c.change_pct):
            flag = "REGRESSION" if c in self.regressions else "ok"
            lines.append(f"  {flag:10} {c.key:52} {c.baseline:8.3f} -> {c.current:8.3f} "
                         f"({c.change_pct:+6.1f}%)")
        if self.missing:
            lines.append(f"  not measured in this run: {', '.join(self.missing)}")
        if not self.compared:
            lines.append("  FAILED: no figure of this run matches the baseline")
        else:
            lines.append("  PASSED" if self.passed else
                         f"  FAILED: {len(self.regressions)} figure(s) regressed")
        return "\n".join(lines)


def ratios(doc: dict) -> dict[str, float]:
    """key -> ratio for every figure that has one, from our bench JSON or from a
    pytest-benchmark JSON whose benchmarks carry `extra_info.key` and `extra_info.ratio`."""
    if "figures" in doc:
        return {f["key"]: f["ratio"] for f in doc["figures"] if f.get("ratio") is not None}
    if "benchmarks" in doc:  # pytest-benchmark --benchmark-json / --benchmark-save
        out = {}
        for b in doc["benchmarks"]:
            info = b.get("extra_info", {})
            if info.get("key") and info.get("ratio") is not None:
                out[info["key"]] = info["ratio"]
        return out
    raise ValueError("not an inline-ipsec bench result nor a pytest-benchmark JSON file")


def load(path: Union[str, Path]) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None


def best_of(first: dict, second: dict) -> dict:
    """`first` with each figure's ratio replaced by the better of the two runs' ratios."""
    better = ratios(second)
    merged = dict(first)
    merged["figures"] = [
        dict(f, ratio=max(f["ratio"], better.get(f["key"], f["ratio"])))
        if f.get("ratio") is not None else f
        for f in first["figures"]]
    return merged


def compare(current: dict, baseline: dict, max_regression: float) -> GateResult:
    """Compare two result documents (see `ratios`)."""
    if not 0 < max_regression < 100:
        raise ValueError("max_regression is a percentage between 0 and 100")
    now, base = ratios(current), ratios(baseline)
    result = GateResult(max_regression)
    for key, old in sorted(base.items()):
        if key not in now:
            result.missing.append(key)
            continue
        c = Comparison(key, old, now[key])
        result.compared.append(c)
        if c.current < c.baseline * (1 - max_regression / 100.0):
            result.regressions.append(c)
    return result
