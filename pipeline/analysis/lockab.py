"""The lock_stat A/B: per lock class, hold time and contentions per acquisition of the
patched kernel against the baseline, from the `<suite>.lockstat.<class>` cases that
suites/lockstat.py makes on kernels with CONFIG_LOCK_STAT.

This checks a mechanism rather than an outcome. A claim such as "the wakeup moves
outside pool->lock, so its critical sections get shorter" shows up as a lower
hold time per acquisition of `&pool->lock` whatever the emulator does to
throughput. lock_stat is reset before each module load and read after it, so the
figures cover one load: one scope of test_workqueue where the A/B loads it once per
scope (its ab_variants), else all six together (scope "", shown as "whole").

The statistics are the throughput A/B's: Welch's t on the logs, with Holm's
correction within each class and metric over the scopes (analysis/abstats.py).
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
class LockComparison(abstats.InformativeRow):
    lock_class: str = ""
    metric: str = ""  # a key of METRICS
    scope: str = ""  # the module variant the load ran (test_workqueue: a scope); "" for a whole run


Key = tuple[str, str, str]  # (scope, lock class, metric)
ALL = "all"  # the scopes' loads of a run summed
WHOLE = "whole"  # how a whole load (every scope in one, scope "") is shown


def lock_metrics(cases: Iterable[Case]) -> dict[Key, list[float]]:
    """(scope, lock class, metric) -> one value per run, from the lockstat cases of a side.

    Where the loads ran one scope each, scope "all" comes first: per run (the outermost
    run number, a pair of `wqci run`), the loads summed before dividing, for the runs that
    have every scope this side has (a run cut short by a hang would bias it). It is close
    to, not the same as, one whole load: each load also sets up and tears down its own
    workqueue, so classes such as `&wq->mutex` and `wq_pool_mutex` are taken more often."""
    scoped: dict[Key, list[float]] = {}
    totals: dict[tuple[int | None, str], list[float]] = {}  # (run, class) -> acquisitions, hold us, contentions
    scopes_of: dict[tuple[int | None, str], set[str]] = {}
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
                scopes_of.setdefault((case.run, name), set()).add(case.variant)
    every = {name: set().union(*(v for (_, n), v in scopes_of.items() if n == name)) for _, name in scopes_of}
    whole: dict[Key, list[float]] = {}
    for (run, name), (acq, hold, contentions) in totals.items():
        if scopes_of[run, name] != every[name] or len(every[name]) < 2:
            continue
        per = max(acq, 1.0)
        whole.setdefault((ALL, name, "hold_us_per_acq"), []).append(hold / per)
        whole.setdefault((ALL, name, "contentions_per_acq"), []).append(contentions / per)
    return whole | scoped


def compare(baseline: Mapping[Key, Sequence[float]], patched: Mapping[Key, Sequence[float]]) -> list[LockComparison]:
    """One row per scope, class and metric both sides measured. A metric that is zero in some
    run (a lock nobody waited for) has no log and is compared only when it is zero on
    both sides everywhere, as "none on either side"."""
    keys = [k for k in baseline if k in patched and baseline[k] and patched[k]]
    # Holm within each class and metric, over the scopes (and "all"): the question asked once per scope
    fitted = abstats.fit_all({k: (baseline[k], patched[k]) for k in keys}, family=lambda k: k[1:])
    rows = []
    for (scope, name, metric), (fit, p) in fitted.items():
        a, b = list(baseline[scope, name, metric]), list(patched[scope, name, metric])
        if min(a + b) <= 0:
            statement = ("cannot tell: zero in some runs" if max(a + b) > 0 else
                         f"none on either side ({metric.split('_')[0]})")
            rows.append(LockComparison(n_baseline=len(a), n_patched=len(b), baseline=statistics.fmean(a),
                                       patched=statistics.fmean(b), ratio=1.0, ci_low=None, ci_high=None, p_value=None,
                                       p_holm=None, statement=statement, lock_class=name, metric=metric, scope=scope))
            continue
        rows.append(LockComparison(**abstats.row_fields(a, b, fit, p), statement=_statement(metric, p, fit),
                                   lock_class=name, metric=metric, scope=scope))
    return rows


def _statement(metric: str, p_holm: float | None, fit: abstats.LogRatio | None) -> str:
    lower = METRICS[metric]
    return abstats.reading(fit, p_holm, lower, lower.replace("shorter", "longer").replace("fewer", "more"))


def summary(rows: Sequence[LockComparison]) -> list[LockComparison]:
    """The rows a terminal shows: every class over all scopes, and scope by scope only for the
    first class (the one the suite lists first: test_workqueue's `&pool->lock`), without the
    locks nobody waited for or held on either side. The rest stay in results.json and the report."""
    first = rows[0].lock_class if rows else ""
    return [r for r in rows if (r.scope in (ALL, "") or r.lock_class == first)
            and not r.statement.startswith("none on either side")]


TABLE_HEADERS = ("scope", "lock class", "metric", "baseline", "patched", "change", "95% CI", "p (Holm)", "runs", "reading")


def table_rows(rows: Sequence[LockComparison]) -> list[tuple[str, ...]]:
    return [(r.scope or WHOLE, r.lock_class, r.metric, f"{r.baseline:.4g}", f"{r.patched:.4g}", *r.cells())
            for r in rows]
