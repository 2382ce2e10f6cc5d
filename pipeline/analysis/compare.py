"""A/B statistics for test_workqueue: baseline against patched, per affinity scope.

Per scope: the median items/s and p50 latency of each side, the ratio of the
medians with a bootstrap 95% confidence interval (scipy.stats.bootstrap), and a
Mann-Whitney U p-value. A regression fails the run only when it is both larger
than the allowed fraction and significant (the whole CI below 1 - max_regression).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

SCOPES = ("cpu", "smt", "cache_shard", "cache", "numa", "system")
NOT_REPRESENTATIVE = "not representative of hardware"


@dataclass(frozen=True)
class ScopeComparison:
    scope: str
    n_baseline: int
    n_patched: int
    baseline: float  # median items/s
    patched: float
    ratio: float  # patched / baseline
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    baseline_p50: float | None
    patched_p50: float | None
    verdict: str

    @property
    def gain(self) -> float:
        return (self.ratio - 1.0) * 100

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"gain_percent": round(self.gain, 2)}


def _ratio_of_medians(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(b, axis=axis) / np.median(a, axis=axis)


def bootstrap_ci(a: Sequence[float], b: Sequence[float], seed: int = 0) -> tuple[float | None, float | None]:
    if len(a) < 2 or len(b) < 2:
        return None, None
    res = stats.bootstrap((np.asarray(a, float), np.asarray(b, float)), _ratio_of_medians, paired=False,
                          vectorized=True, n_resamples=2000, confidence_level=0.95, method="percentile",
                          random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


ALPHA = 0.05


def verdict(ratio: float, low: float | None, high: float | None, p_value: float | None,
            max_regression: float) -> str:
    """Significant only when the CI excludes the bound and Mann-Whitney agrees: with two
    runs a side the bootstrap CI is too narrow to trust, and MWU cannot go below 0.33."""
    if low is None or high is None or p_value is None:
        return "too few runs"
    if p_value >= ALPHA:
        return "no significant change"
    if high < 1.0 - max_regression:
        return "regression"
    if high < 1.0:
        return "slower"
    if low > 1.0:
        return "faster"
    return "no significant change"


def compare_scope(scope: str, baseline: Sequence[Mapping[str, float]], patched: Sequence[Mapping[str, float]],
                  max_regression: float) -> ScopeComparison:
    a = [m["items_per_sec"] for m in baseline]
    b = [m["items_per_sec"] for m in patched]
    ma, mb = statistics.median(a), statistics.median(b)
    low, high = bootstrap_ci(a, b)
    p_value = mann_whitney(a, b)
    ratio = mb / ma if ma else float("nan")
    p50a = [m["p50_ns"] for m in baseline if "p50_ns" in m]
    p50b = [m["p50_ns"] for m in patched if "p50_ns" in m]
    return ScopeComparison(
        scope=scope, n_baseline=len(a), n_patched=len(b), baseline=ma, patched=mb, ratio=ratio, ci_low=low,
        ci_high=high, p_value=p_value, baseline_p50=statistics.median(p50a) if p50a else None,
        patched_p50=statistics.median(p50b) if p50b else None,
        verdict=verdict(ratio, low, high, p_value, max_regression),
    )


def compare(baseline: Mapping[str, Sequence[Mapping[str, float]]], patched: Mapping[str, Sequence[Mapping[str, float]]],
            max_regression: float = 0.05) -> list[ScopeComparison]:
    """baseline/patched: scope -> one metrics mapping per run."""
    return [compare_scope(s, baseline[s], patched[s], max_regression)
            for s in SCOPES if baseline.get(s) and patched.get(s)]


def table_rows(rows: Sequence[ScopeComparison]) -> list[tuple[str, ...]]:
    """The seed's table shape: scope, baseline, patched, gain, CI, verdict (plus p50 and p)."""
    out = []
    for r in rows:
        ci = f"[{(r.ci_low - 1) * 100:+.1f}%, {(r.ci_high - 1) * 100:+.1f}%]" if r.ci_low is not None else "n/a"
        p50 = (f"{r.baseline_p50:.0f} -> {r.patched_p50:.0f}" if r.baseline_p50 is not None
               and r.patched_p50 is not None else "")
        p = f"{r.p_value:.3f}" if r.p_value is not None else "n/a"
        out.append((r.scope, f"{r.baseline:,.0f}", f"{r.patched:,.0f}", f"{r.gain:+.1f}%", ci, p50, p, r.verdict))
    return out


TABLE_HEADERS = ("scope", "baseline items/s", "patched items/s", "gain", "95% CI", "p50 ns", "p (MWU)", "verdict")


def representativeness(accelerator: str, vcpus: int, host_cpus: int) -> str | None:
    """Why these numbers say nothing about hardware, or None when they might."""
    reasons = []
    if accelerator != "kvm":
        reasons.append(f"emulated with {accelerator.upper()}")
    if vcpus > host_cpus:
        reasons.append(f"{vcpus} vCPUs on {host_cpus} host CPUs")
    return f"{NOT_REPRESENTATIVE} ({', '.join(reasons)})" if reasons else None
