"""A/B statistics for test_workqueue: baseline against patched, per affinity scope.

Per scope: the geometric mean items/s of each side, their ratio with a 95% interval
and a p-value from Welch's t on log(items/s), the p-value corrected for the number of
scopes (Holm), the smallest change the run could have detected, and the median p50
latency of each side (abstats.py says why this method and not a bootstrap). The
series' own published numbers stand beside ours with a verdict (seedclaims.py).

A regression fails the run only when it is significant after the correction and the
loss is larger than the allowed fraction (--max-regression).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence

from pipeline.analysis import abstats, seedclaims
from pipeline.analysis.sampling import DEFAULT_TARGET

SCOPES = ("cpu", "smt", "cache_shard", "cache", "numa", "system")
NOT_REPRESENTATIVE = "not representative of hardware"
METHOD = "Welch t on log items/s, Holm over scopes"

# verdicts
IMPROVEMENT = "improvement"
REGRESSION = "regression"
SLOWER = "slower"  # significant, but within --max-regression
NO_CHANGE = "no change detected"
CANNOT_TELL = "cannot tell"


@dataclass(frozen=True)
class ScopeComparison:
    """One scope's row; every field is plain JSON (results.json keeps `to_dict()`).
    Ratios and widths are fractions (ratio 1.08 = +8%); `*_percent` keys in to_dict
    give the same in percent."""

    scope: str
    n_baseline: int
    n_patched: int
    baseline: float  # geometric mean items/s
    patched: float
    ratio: float  # patched / baseline (ratio of geometric means)
    ci_low: float | None  # 95% interval of the ratio
    ci_high: float | None
    half_width: float | None  # relative: the interval is ratio/(1+h) .. ratio*(1+h)
    p_value: float | None  # Welch's t-test on the logs, two-sided
    p_holm: float | None  # Holm-adjusted over the scopes compared
    detectable: float | None  # smallest change detected 80% of the time, after Holm
    df: float | None  # Welch-Satterthwaite degrees of freedom
    baseline_p50: float | None  # median p50 latency, ns
    patched_p50: float | None
    verdict: str  # IMPROVEMENT, REGRESSION, SLOWER, NO_CHANGE, CANNOT_TELL
    statement: str  # the verdict for people: "no change detected (could detect ±4.2%)"
    seed_gain: float | None = None  # the seed's published gain, percent
    seed_verdict: str | None = None  # seedclaims.AGREES, CONTRADICTS, CANNOT_TELL
    method: str = METHOD

    @property
    def gain(self) -> float:
        return (self.ratio - 1.0) * 100

    @property
    def regressed(self) -> bool:
        return self.verdict == REGRESSION

    def to_dict(self) -> dict:
        def pct(x: float | None) -> float | None:
            return None if x is None else round((x - 1) * 100, 2)

        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {
            "gain_percent": round(self.gain, 2), "ci_low_percent": pct(self.ci_low),
            "ci_high_percent": pct(self.ci_high),
            "half_width_percent": None if self.half_width is None else round(self.half_width * 100, 2),
            "detectable_percent": None if self.detectable is None else round(self.detectable * 100, 2),
        }


def verdict(ratio: float, p_holm: float | None, detectable: float | None, max_regression: float) -> tuple[str, str]:
    """(verdict, statement) of one scope; the statement goes beside the gain and its interval."""
    if p_holm is None:
        return CANNOT_TELL, "cannot tell: fewer than 2 runs a side"
    if p_holm >= abstats.ALPHA:
        if detectable is None:
            return NO_CHANGE, "no change detected (could detect nothing)"
        if detectable > 1.0:
            return NO_CHANGE, "no change detected (too noisy: not even a doubling or halving could be told)"
        return NO_CHANGE, f"no change detected (could detect ±{detectable * 100:.1f}%)"
    if ratio > 1:
        return IMPROVEMENT, IMPROVEMENT
    if ratio < 1 - max_regression:
        return REGRESSION, f"regression (beyond the allowed -{max_regression * 100:g}%)"
    return SLOWER, f"slower (within the allowed -{max_regression * 100:g}%)"


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def throughputs(runs: Sequence[Mapping[str, float]]) -> list[float]:
    """items/s of each run; a run that moved nothing (0) has no place on a log scale."""
    return [m["items_per_sec"] for m in runs if m.get("items_per_sec", 0) > 0]



def compare(baseline: Mapping[str, Sequence[Mapping[str, float]]], patched: Mapping[str, Sequence[Mapping[str, float]]],
            max_regression: float = 0.05, seed: Mapping[str, float] | None = None,
            target: float = DEFAULT_TARGET) -> list[ScopeComparison]:
    """baseline/patched: scope -> one metrics mapping per run. seed: scope -> the seed's
    published gain in percent (seedclaims.published); target: the A/B's half-width target,
    the resolution below which a seed's "no change" cannot be told."""
    seed = seed or {}
    scopes = [s for s in SCOPES if baseline.get(s) and patched.get(s)]
    values = {s: (throughputs(baseline[s]), throughputs(patched[s])) for s in scopes}
    scopes = [s for s in scopes if all(values[s])]
    fits = {s: abstats.welch_log(*values[s]) if min(map(len, values[s])) >= 2 else None for s in scopes}
    tests = sum(1 for f in fits.values() if f is not None)
    adjusted = dict(zip(scopes, abstats.holm([fits[s].p_value if fits[s] else None for s in scopes])))
    rows = []
    for s in scopes:
        a, b = values[s]
        fit = fits[s]
        ratio = abstats.geomean(b) / abstats.geomean(a)
        low, high = map(float, fit.ci) if fit else (None, None)
        width = float(fit.half_width) if fit else None
        detectable = abstats.detectable(fit.se, fit.df, tests) if fit else None
        kind, statement = verdict(ratio, adjusted[s], detectable, max_regression)
        seed_gain = seed.get(s)
        rows.append(ScopeComparison(
            scope=s, n_baseline=len(a), n_patched=len(b), baseline=abstats.geomean(a), patched=abstats.geomean(b), ratio=ratio,
            ci_low=low, ci_high=high, half_width=width, p_value=fit.p_value if fit else None, p_holm=adjusted[s],
            detectable=detectable, df=fit.df if fit else None,
            baseline_p50=_median([m["p50_ns"] for m in baseline[s] if "p50_ns" in m]),
            patched_p50=_median([m["p50_ns"] for m in patched[s] if "p50_ns" in m]),
            verdict=kind, statement=statement, seed_gain=seed_gain,
            seed_verdict=None if seed_gain is None else seedclaims.verdict(seed_gain, low, high, width, target),
        ))
    return rows


def _pct(value: float | None, fmt: str = "+.1f") -> str:
    return "n/a" if value is None else f"{value * 100:{fmt}}%"


def table_rows(rows: Sequence[ScopeComparison]) -> list[tuple[str, ...]]:
    """The seed's table shape (scope, baseline, patched, gain) with our interval, Holm's p
    and the verdict, then the seed's number and how ours stands against it."""
    out = []
    for r in rows:
        ci = f"[{_pct(r.ci_low - 1)}, {_pct(r.ci_high - 1)}]" if r.ci_low is not None else "n/a"
        p50 = (f"{r.baseline_p50:.0f} -> {r.patched_p50:.0f}" if r.baseline_p50 is not None
               and r.patched_p50 is not None else "")
        p = f"{r.p_holm:.3f}" if r.p_holm is not None else "n/a"
        seed = f"{r.seed_gain:+.1f}%" if r.seed_gain is not None else ""
        out.append((r.scope, f"{r.baseline:,.0f}", f"{r.patched:,.0f}", f"{r.gain:+.1f}%", ci, p50, p, r.statement,
                    seed, r.seed_verdict or ""))
    return out


TABLE_HEADERS = ("scope", "baseline items/s", "patched items/s", "gain", "95% CI", "p50 ns", "p (Holm)", "verdict",
                 "seed", "vs seed")


def representativeness(accelerator: str, vcpus: int, host_cpus: int) -> str | None:
    """Why these numbers say nothing about hardware, or None when they might."""
    reasons = []
    if accelerator != "kvm":
        reasons.append(f"emulated with {accelerator.upper()}")
    if vcpus > host_cpus:
        reasons.append(f"{vcpus} vCPUs on {host_cpus} host CPUs")
    return f"{NOT_REPRESENTATIVE} ({', '.join(reasons)})" if reasons else None
