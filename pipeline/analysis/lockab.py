"""The lock_stat A/B: per lock class, hold time and contentions per acquisition of the
patched kernel against the baseline, from the `<suite>.lockstat.<class>` cases that
suites/lockstat.py makes on kernels with CONFIG_LOCK_STAT.

This checks a mechanism rather than an outcome. A claim such as "the wakeup moves
outside pool->lock, so its critical sections get shorter" shows up as a lower
hold time per acquisition of `&pool->lock` whatever the emulator does to
throughput. lock_stat is reset before each module load and read after it, so the
figures cover one load: one scope of test_workqueue where the A/B loads it once per
scope (its ab_variants), else all six together (scope "").

The statistics are the throughput A/B's: Welch's t on the logs, with Holm's
correction over every class and metric compared (analysis/abstats.py).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from pipeline.analysis import abstats
from pipeline.model.cases import Case

#: what is compared, with the words for a lower value
METRICS = {"hold_us_per_acq": "shorter hold", "contentions_per_acq": "fewer contentions"}
PREFIX = "lockstat."


@dataclass(frozen=True)
class LockComparison:
    lock_class: str
    metric: str  # a key of METRICS
    n_baseline: int
    n_patched: int
    baseline: float  # geometric mean over the runs
    patched: float
    ratio: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_holm: float | None
    statement: str
    scope: str = ""  # the module variant the load ran (test_workqueue: a scope); "" for a whole run

    @property
    def change(self) -> float:
        return (self.ratio - 1.0) * 100

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"change_percent": round(self.change, 2)}


Key = tuple[str, str, str]  # (scope, lock class, metric)


def lock_metrics(cases: Iterable[Case]) -> dict[Key, list[float]]:
    """(scope, lock class, metric) -> one value per run, from the lockstat cases of a side.
    Where the loads ran one scope each, scope "all" sums each run's loads first (the same
    figure a whole run gives), and comes before the scopes."""
    scoped: dict[Key, list[float]] = {}
    totals: dict[tuple[int | None, str], list[float]] = {}  # (run, class) -> acquisitions, hold us, contentions
    for case in cases:
        if case.case.startswith(PREFIX) and "lock_class" in case.properties:
            name = case.properties["lock_class"]
            for metric in METRICS:
                if metric in case.metrics:
                    scoped.setdefault((case.variant, name, metric), []).append(case.metrics[metric])
            if case.variant and "acquisitions" in case.metrics:
                acq = case.metrics["acquisitions"]
                total = totals.setdefault((case.run, name), [0.0, 0.0, 0.0])
                total[0] += acq
                total[1] += case.metrics.get("hold_us_per_acq", 0.0) * acq
                total[2] += case.metrics.get("contentions", 0.0)
    whole: dict[Key, list[float]] = {}
    for (_, name), (acq, hold, contentions) in totals.items():
        per = max(acq, 1.0)
        whole.setdefault(("all", name, "hold_us_per_acq"), []).append(hold / per)
        whole.setdefault(("all", name, "contentions_per_acq"), []).append(contentions / per)
    return whole | scoped


def compare(baseline: Mapping[Key, Sequence[float]], patched: Mapping[Key, Sequence[float]]) -> list[LockComparison]:
    """One row per scope, class and metric both sides measured. A metric that is zero in some
    run (a lock nobody waited for) has no log and is compared only when it is zero on
    both sides everywhere, as "none on either side"."""
    keys = [k for k in baseline if k in patched and baseline[k] and patched[k]]
    fits = {}
    for k in keys:
        a, b = baseline[k], patched[k]
        fits[k] = abstats.welch_log(a, b) if min(a + b) > 0 and min(len(a), len(b)) >= 2 else None
    adjusted = dict(zip(keys, abstats.holm([fits[k].p_value if fits[k] else None for k in keys])))
    rows = []
    for k in keys:
        a, b = list(baseline[k]), list(patched[k])
        fit, p = fits[k], adjusted[k]
        if min(a + b) <= 0:
            if max(a + b) > 0:
                statement = "cannot tell: zero in some runs"
            else:
                statement = f"none on either side ({k[2].split('_')[0]})"
            rows.append(LockComparison(k[1], k[2], len(a), len(b), statistics.fmean(a), statistics.fmean(b), 1.0,
                                       None, None, None, None, statement, scope=k[0]))
            continue
        ratio = abstats.geomean(b) / abstats.geomean(a)
        low, high = map(float, fit.ci) if fit else (None, None)
        rows.append(LockComparison(k[1], k[2], len(a), len(b), abstats.geomean(a), abstats.geomean(b), ratio, low,
                                   high, fit.p_value if fit else None, p, _statement(k[2], ratio, p, fit), scope=k[0]))
    return rows


def _statement(metric: str, ratio: float, p_holm: float | None, fit: abstats.LogRatio | None) -> str:
    if p_holm is None or fit is None:
        return "cannot tell: fewer than 2 runs a side"
    if p_holm >= abstats.ALPHA:
        return f"no change detected (95% CI {_pct(fit.ci[0])} to {_pct(fit.ci[1])})"
    lower = METRICS[metric]
    return lower if ratio < 1 else lower.replace("shorter", "longer").replace("fewer", "more")


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


TABLE_HEADERS = ("scope", "lock class", "metric", "baseline", "patched", "change", "95% CI", "p (Holm)", "runs", "reading")


def table_rows(rows: Sequence[LockComparison]) -> list[tuple[str, ...]]:
    out = []
    for r in rows:
        ci = f"[{_pct(r.ci_low)}, {_pct(r.ci_high)}]" if r.ci_low is not None else "n/a"
        p = f"{r.p_holm:.3g}" if r.p_holm is not None else "n/a"
        out.append((r.scope or "all", r.lock_class, r.metric, f"{r.baseline:.4g}", f"{r.patched:.4g}", f"{r.change:+.1f}%", ci, p,
                    f"{r.n_baseline}/{r.n_patched}", r.statement))
    return out
