"""Small-sample statistics for an A/B of a throughput: patched over baseline.

wqci compares a handful of runs a side (2 to 20), so the method has to hold at n=2..6.
A bootstrap of the ratio of medians does not: with 4 runs a side its "95%" interval
held the true ratio 89% of the time, and Mann-Whitney's p cannot go below 0.33 with two.

- **Ratio and interval.** Throughput noise is multiplicative, so the comparison is made
  on log(items/s): d = mean(log b) - mean(log a), whose exp is the ratio of geometric
  means. Its 95% interval is Welch's t-interval on the logs, d ± t(0.975, ν)·SE with
  SE = sqrt(s_a²/n_a + s_b²/n_b) and ν the Welch-Satterthwaite degrees of freedom,
  exponentiated. Welch rather than a pooled t: a patch that changes contention can
  change the spread too. The p-value is Welch's t-test on the same logs (scipy).
- **Half-width.** expm1(t·SE): the interval is [r/(1+h), r·(1+h)] around the ratio r.
- **Several scopes.** Holm's step-down correction over the scopes compared (`holm`).
- **Detectable effect** (`detectable`): the smallest change a run like this one would
  flag, after the correction, at least 80% of the time. See its docstring.

Everything takes arrays whose last axis is the runs, so the calibration test can
simulate thousands of A/Bs through this same code; 1-D input gives floats.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping, Sequence, TypeVar

import numpy as np
from scipy import stats

K = TypeVar("K")
CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.80
#: the detectable effect assumes the noise at this one-sided upper confidence bound
NOISE_BOUND = 0.80


@dataclass(frozen=True)
class LogRatio:
    """Patched over baseline on the log scale; floats for 1-D input, arrays otherwise."""

    n_baseline: int
    n_patched: int
    log_ratio: float  # d = mean(log b) - mean(log a)
    se: float  # standard error of d
    df: float  # Welch-Satterthwaite degrees of freedom
    confidence: float = CONFIDENCE

    @property
    def ratio(self) -> float:
        return _float(np.exp(self.log_ratio))

    @property
    def p_value(self) -> float:
        """Welch's t-test, two-sided (what scipy.stats.ttest_ind(equal_var=False) gives)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.abs(self.log_ratio) / self.se
            # identical runs on each side: no spread, so any difference is certain
            p = np.where(self.se > 0, 2 * stats.t.sf(t, self.df), np.where(self.log_ratio == 0, 1.0, 0.0))
        return _float(p)

    @property
    def t_crit(self) -> float:
        return stats.t.ppf(0.5 + self.confidence / 2, self.df)

    @property
    def ci(self) -> tuple[float, float]:
        arm = self.t_crit * self.se
        return _float(np.exp(self.log_ratio - arm)), _float(np.exp(self.log_ratio + arm))

    @property
    def half_width(self) -> float:
        """Relative: the interval is ratio/(1+h) .. ratio*(1+h)."""
        return _float(np.expm1(self.t_crit * self.se))


def _float(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


def welch_log(baseline: Sequence[float] | np.ndarray, patched: Sequence[float] | np.ndarray,
              confidence: float = CONFIDENCE) -> LogRatio:
    """Welch's t on log values; runs on the last axis, at least 2 a side, all > 0."""
    la, lb = np.log(np.asarray(baseline, float)), np.log(np.asarray(patched, float))
    na, nb = la.shape[-1], lb.shape[-1]
    if na < 2 or nb < 2:
        raise ValueError(f"Welch's t needs 2 runs a side, got {na} and {nb}")
    va, vb = la.var(axis=-1, ddof=1) / na, lb.var(axis=-1, ddof=1) / nb
    se = np.sqrt(va + vb)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(se > 0, (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1)), na + nb - 2)
    d = lb.mean(axis=-1) - la.mean(axis=-1)
    return LogRatio(na, nb, _float(d), _float(se), _float(df), confidence)


def geomean(values: Sequence[float]) -> float:
    """The geometric mean: the centre that matches a ratio taken on logs."""
    return math.exp(statistics.fmean(math.log(v) for v in values))


def half_width(baseline: Sequence[float], patched: Sequence[float], confidence: float = CONFIDENCE) -> float:
    """The relative half-width of the ratio's interval; inf with fewer than 2 runs a side."""
    if len(baseline) < 2 or len(patched) < 2:
        return float("inf")
    return float(welch_log(baseline, patched, confidence).half_width)


def detectable(se: float | np.ndarray, df: float | np.ndarray, tests: int = 1, alpha: float = ALPHA,
               power: float = POWER, bound: float = NOISE_BOUND) -> float | np.ndarray:
    """The smallest relative change (a fraction) that a run with this standard error and
    these degrees of freedom would declare significant, after Holm's correction over
    `tests` scopes, with probability `power`:

        δ = (t(1 - α/(2m), ν) + t(power, ν)) · SE · sqrt(ν / χ²(1 - bound, ν)),
        detectable = exp(δ) - 1

    - t(1 - α/(2m), ν): Holm's first and strictest threshold (α/m, Bonferroni's), so
      the statement holds for any scope, whatever the other scopes show.
    - t(power, ν): the usual power term of a t-test.
    - sqrt(ν / χ²(1 - bound, ν)) scales SE up to its one-sided 80% upper confidence
      bound. SE is itself estimated from a few runs, and a plug-in value is too small
      half of the time: without this factor an effect of the stated size (in one scope of
      six) was detected in only 64-79% of simulated runs at n=2..6, with it in 86-97%
      (tests/unit/test_ab_calibration.py).

    A regression of -detectable/(1+detectable) is as detectable; the ± statement uses
    the larger, positive side.
    """
    nu = np.asarray(df, float)
    factor = (stats.t.ppf(1 - alpha / (2 * tests), nu) + stats.t.ppf(power, nu)) * np.sqrt(
        nu / stats.chi2.ppf(1 - bound, nu))
    return _float(np.expm1(factor * np.asarray(se, float)))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and does not count as a test):
    the k-th smallest of m is multiplied by m-k+1, and adjusted values never decrease."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for k, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - k) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class InformativeRow:
    """A row of an A/B that informs and never fails (lock_stat, latency): the geometric mean
    of each side, their ratio with its 95% interval, the p-value before and after Holm, and
    a reading for people. The kinds add what the row is about."""

    n_baseline: int
    n_patched: int
    baseline: float
    patched: float
    ratio: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_holm: float | None
    statement: str

    @property
    def change(self) -> float:
        return (self.ratio - 1.0) * 100

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"change_percent": round(self.change, 2)}

    def cells(self) -> tuple[str, ...]:
        """Its table cells after what it is about: change, 95% CI, p (Holm), runs, reading."""
        return (f"{self.change:+.1f}%",
                f"[{percent(self.ci_low)}, {percent(self.ci_high)}]" if self.ci_low is not None else "n/a",
                f"{self.p_holm:.3g}" if self.p_holm is not None else "n/a", f"{self.n_baseline}/{self.n_patched}",
                self.statement)


def fit_all(values: Mapping[K, tuple[Sequence[float], Sequence[float]]],
            family: Callable[[K], Hashable] = lambda key: None) -> dict[K, tuple[LogRatio | None, float | None]]:
    """key -> (baseline values, patched values) to key -> (LogRatio or None, Holm p or None):
    a fit where both sides have 2 runs or more and every value is positive (the log scale),
    Holm within each family of keys (by default all of them are one)."""
    fits = {k: welch_log(a, b) if min(len(a), len(b)) >= 2 and min([*a, *b]) > 0 else None
            for k, (a, b) in values.items()}
    families: dict[Hashable, list[K]] = {}
    for k in fits:
        families.setdefault(family(k), []).append(k)
    adjusted: dict[K, float | None] = {}
    for keys in families.values():
        adjusted.update(zip(keys, holm([fits[k].p_value if fits[k] else None for k in keys])))
    return {k: (fits[k], adjusted[k]) for k in fits}


def row_fields(baseline: Sequence[float], patched: Sequence[float], fit: LogRatio | None,
               p_holm: float | None) -> dict:
    """An InformativeRow's figures from both sides' values and their fit (all but the reading)."""
    a, b = geomean(baseline), geomean(patched)
    low, high = map(float, fit.ci) if fit else (None, None)
    return dict(n_baseline=len(baseline), n_patched=len(patched), baseline=a, patched=b, ratio=b / a, ci_low=low,
                ci_high=high, p_value=fit.p_value if fit else None, p_holm=p_holm)


def percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{(ratio - 1) * 100:+.1f}%"


def reading(fit: LogRatio | None, p_holm: float | None, lower: str, higher: str) -> str:
    """An informative row's reading: `lower`/`higher` when significant after Holm; else no
    change, or, when the uncorrected interval excludes no change, that it did not survive
    the correction."""
    if p_holm is None or fit is None:
        return "cannot tell: fewer than 2 runs a side"
    if p_holm < ALPHA:
        return lower if fit.ratio < 1 else higher
    ci = f"95% CI {percent(fit.ci[0])} to {percent(fit.ci[1])}"
    if fit.ci[1] < 1 or fit.ci[0] > 1:
        return f"{lower if fit.ratio < 1 else higher}, but not after Holm's correction ({ci}, uncorrected)"
    return f"no change detected ({ci})"
