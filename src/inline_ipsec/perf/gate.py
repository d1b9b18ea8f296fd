"""The performance-regression gate: a result against a baseline, by ratios.

Every PFE and CPU-engine figure carries its ratio to the raw-crypto limit of its backend,
measured in the same run (`measure.py`); the gate compares those ratios, never absolute packet
rates, so a baseline recorded on one machine gates a run on another. Thread figures (N threads
over one) are reported, not gated: their scaling measures what else the machine is running.

The rule: a figure regresses when even the *upper* end of the confidence interval of its
median ratio lies more than `max_regression` percent below the baseline's median ratio. A
real slowdown moves the whole interval down and fails; noise widens the interval and passes.
A document without intervals (an older result, or a hand-made one) is compared by its ratio
alone. The same reading applies to our JSON and to pytest-benchmark's, whose benchmarks carry
the same fields in `extra_info`.

Ratios carry over between machines of one kind, less well between kinds: the raw loop's speed
relative to the engine's per-burst Python call differs from one CPU model to another. When
the two documents name different CPUs, `compare` applies `elsewhere` (a wider tolerance, when
given) and the summary says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union


#: Figure paths reported but not gated.
NOT_GATED = ("pfe-threads/", "pipeline-threads/")


@dataclass(frozen=True)
class FigureRatio:
    """A figure's ratio as a document records it (`low`/`high`: its confidence interval)."""

    ratio: float
    low: Optional[float] = None
    high: Optional[float] = None
    samples: int = 0


@dataclass
class Comparison:
    key: str
    baseline: float
    current: float
    low: Optional[float] = None
    high: Optional[float] = None

    @property
    def change_pct(self) -> float:
        return (self.current / self.baseline - 1.0) * 100.0

    def regressed(self, max_regression: float) -> bool:
        """Even the best the measurement allows (the interval's upper end) is too low."""
        best = self.high if self.high is not None else self.current
        return best < self.baseline * (1.0 - max_regression / 100.0)


@dataclass
class GateResult:
    max_regression: float
    compared: list[Comparison] = field(default_factory=list)
    regressions: list[Comparison] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)   # in the baseline, not in this run
    not_gated: list[str] = field(default_factory=list)  # thread scaling figures
    machines: tuple[Optional[str], Optional[str]] = (None, None)   # (this run, baseline)

    @property
    def passed(self) -> bool:
        return not self.regressions and bool(self.compared)

    def summary(self) -> str:
        lines = [f"regression gate: {len(self.compared)} figures compared by their ratio to "
                 f"the raw-crypto limit; a figure fails when the upper end of its ratio's "
                 f"confidence interval is more than {self.max_regression:g}% below the "
                 "baseline"]
        now, then = self.machines
        if now != then:
            lines.append(f"  this run: {now or 'unknown CPU'}; baseline: {then or 'unknown CPU'}"
                         " (another machine: ratios carry over only roughly)")
        for c in sorted(self.compared, key=lambda c: c.change_pct):
            flag = "REGRESSION" if c in self.regressions else "ok"
            interval = (f"[{c.low:6.3f}, {c.high:6.3f}]" if c.low is not None
                        and c.high is not None else " " * 16)
            lines.append(f"  {flag:10} {c.key:46} {c.baseline:7.3f} -> {c.current:7.3f} "
                         f"{interval} ({c.change_pct:+6.1f}%)")
        if self.missing:
            lines.append(f"  not measured in this run: {', '.join(self.missing)}")
        if self.not_gated:
            lines.append("  not gated (thread scaling depends on what else the machine runs): "
                         + ", ".join(self.not_gated))
        if not self.compared:
            lines.append("  FAILED: no figure of this run matches the baseline")
        else:
            lines.append("  PASSED" if self.passed else
                         f"  FAILED: {len(self.regressions)} figure(s) regressed")
        return "\n".join(lines)


def normalize_key(key: str) -> str:
    """Keys of older documents: the CPU engine's figures named its raw reference's library
    ("cpu/openssl/..."); they are "cpu/cryptography/..." (`suite.figure_key`)."""
    parts = key.split("/")
    if len(parts) > 1 and parts[0] in ("cpu", "gateway-cpu"):
        parts[1] = "cryptography"
    return "/".join(parts)


def _ratio(record: dict) -> Optional[FigureRatio]:
    if record.get("ratio") is None:
        return None
    samples = record.get("samples") or []
    return FigureRatio(float(record["ratio"]), record.get("ratio_low"),
                       record.get("ratio_high"), len(samples))


def figures(doc: dict) -> dict[str, FigureRatio]:
    """key -> ratio for every figure that has one, from our bench JSON or from a
    pytest-benchmark JSON whose benchmarks carry `extra_info.key` and `extra_info.ratio`."""
    if "figures" in doc:
        records = [(f.get("key"), f) for f in doc["figures"]]
    elif "benchmarks" in doc:  # pytest-benchmark --benchmark-json / --benchmark-save
        records = [(b.get("extra_info", {}).get("key"), b.get("extra_info", {}))
                   for b in doc["benchmarks"]]
    else:
        raise ValueError("not an inline-ipsec bench result nor a pytest-benchmark JSON file")
    out = {}
    for key, record in records:
        value = _ratio(record) if key else None
        if value is not None:
            out[normalize_key(key)] = value
    return out


def ratios(doc: dict) -> dict[str, float]:
    """key -> median ratio (see `figures`)."""
    return {k: v.ratio for k, v in figures(doc).items()}


def load(path: Union[str, Path]) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None


def machine_of(doc: dict) -> Optional[str]:
    """The CPU a document was measured on: ours (`machine.cpu`) or pytest-benchmark's
    (`machine_info.cpu.brand_raw`)."""
    cpu = (doc.get("machine") or {}).get("cpu")
    if cpu is None:
        cpu = ((doc.get("machine_info") or {}).get("cpu") or {}).get("brand_raw")
    return cpu


def compare(current: dict, baseline: dict, max_regression: float,
            elsewhere: Optional[float] = None) -> GateResult:
    """Compare two result documents (see `figures` and the module docstring); `elsewhere` is
    the tolerance when they were measured on different CPUs (default: `max_regression`)."""
    for tolerance in (max_regression, elsewhere):
        if tolerance is not None and not 0 < tolerance < 100:
            raise ValueError("max_regression is a percentage between 0 and 100")
    now, base = figures(current), figures(baseline)
    machines = (machine_of(current), machine_of(baseline))
    if elsewhere is not None and machines[0] != machines[1]:
        max_regression = max(max_regression, elsewhere)
    result = GateResult(max_regression, machines=machines)
    for key, old in sorted(base.items()):
        if key.startswith(NOT_GATED):
            if key in now:
                result.not_gated.append(key)
            continue
        if key not in now:
            result.missing.append(key)
            continue
        new = now[key]
        c = Comparison(key, old.ratio, new.ratio, new.low, new.high)
        result.compared.append(c)
        if c.regressed(max_regression):
            result.regressions.append(c)
    return result
