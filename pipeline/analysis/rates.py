"""How often a repeated case failed, with an exact binomial bound on the rate.

`--repeat N` numbers the runs of a case 1 .. N (`Case.runs`, JUnit names `name#1` ..
`name#N`); the runs of one case share its `stem`. For k failures in N
runs the bound is Clopper-Pearson at 95%: one-sided when nothing failed (the
"rule of three": 0 of N gives a rate below about 3/N), two-sided otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from scipy.stats import beta

from pipeline.model.status import Status
from pipeline.model.cases import Case
from pipeline.triage.findings import Finding

CONFIDENCE = 0.95
# metrics that count events: their totals over the runs are worth reporting
EVENT_METRICS = ("stranded", "rescued", "culled_kicked", "culled_new", "culled_pending", "culled_pending_busy",
                 "culled_pending_woken", "culled_pending_alone", "unlocked_wakes", "kicks_skipped", "lost_wakeups")
#: event metrics named per source: culled_kicked_<waker> (wq_stress under --amplify)
EVENT_PREFIXES = ("culled_kicked_",)


@dataclass(frozen=True)
class Rate:
    name: str
    failed: int
    runs: int
    low: float
    high: float
    totals: Mapping[str, float] = field(default_factory=dict)  # metrics summed over the runs
    verb: str = "failed"  # what `failed` counts: runs that "failed", or that "printed it" (a finding)

    @property
    def bound(self) -> str:
        """The 95% interval in short: "< 0.259" when nothing failed, else "low..high"."""
        return f"< {self.high:.3g}" if not self.failed else f"{self.low:.3g}..{self.high:.3g}"

    def events(self, keys: tuple[str, ...] = ()) -> list[tuple[str, float]]:
        """The totals of the event-counting metrics (EVENT_METRICS, then the per-source
        ones of EVENT_PREFIXES) this case reported."""
        named = [(k, self.totals[k]) for k in keys or EVENT_METRICS if k in self.totals]
        if keys:
            return named
        return named + sorted((k, v) for k, v in self.totals.items() if k.startswith(EVENT_PREFIXES))

    @property
    def text(self) -> str:
        if self.failed == 0:
            return f"0 of {self.runs} runs {self.verb}: rate < {self.high:.3g} at 95% (3/N = {3 / self.runs:.3g})"
        return (f"{self.failed} of {self.runs} runs {self.verb}: rate {self.failed / self.runs:.3g}, "
                f"{self.low:.3g}..{self.high:.3g} at 95%")


def bounds(failed: int, runs: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Clopper-Pearson interval; with no failures the one-sided upper bound."""
    if runs <= 0:
        return 0.0, 1.0
    if failed == 0:
        return 0.0, float(1 - (1 - confidence) ** (1 / runs))
    alpha = 1 - confidence
    low = float(beta.ppf(alpha / 2, failed, runs - failed + 1))
    high = 1.0 if failed == runs else float(beta.ppf(1 - alpha / 2, failed + 1, runs - failed))
    return low, high


def repeated(cases: Iterable[Case], confidence: float = CONFIDENCE) -> list[Rate]:
    """One Rate per case that ran more than once (numbered runs), in first-seen order."""
    groups: dict[str, list[Case]] = {}
    for case in cases:
        if case.run is not None:
            groups.setdefault(case.stem, []).append(case)
    out = []
    for stem, runs in groups.items():
        if len(runs) < 2:
            continue
        failed = sum(c.status in (Status.FAIL, Status.ERROR) for c in runs)
        totals: dict[str, float] = {}
        for c in runs:
            for key, value in c.metrics.items():
                totals[key] = totals.get(key, 0.0) + value
        low, high = bounds(failed, len(runs), confidence)
        out.append(Rate(name=stem, failed=failed, runs=len(runs), low=low, high=high, totals=totals))
    return out


def incidence(findings: Iterable[Finding], cases: Iterable[Case], confidence: float = CONFIDENCE) -> dict[str, Rate]:
    """For the findings printed during a suite that ran more than once (--repeat): in how many
    of its runs each one was printed, with the same exact bound, keyed by fingerprint. A
    report rate-limited by the kernel (KCSAN prints a pair of frames once in 3 s) still
    counts in every run it was printed in, since runs are counted, not reports.

    Reports with one title and different stacks (one race reached from two callers) are
    one row each, named by their top frames, and then one more row for the title, keyed
    `<suite>|<title>`: the runs that printed any of them."""
    runs_of: dict[str, set[int]] = {}
    for c in cases:
        if c.runs and c.suite != "finding":
            runs_of.setdefault(c.suite, set()).add(c.runs[0])  # innermost: the suite's own run
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        if f.runs and len(runs_of.get(f.where, ())) >= 2:
            groups.setdefault((f.where, f.title), []).append(f)
    out = {}
    for (where, title), members in groups.items():
        n = len(runs_of[where])

        def rate(name: str, seen: int) -> Rate:
            low, high = bounds(seen, n, confidence)
            return Rate(name=name, failed=seen, runs=n, low=low, high=high, verb=f"of {where} printed it")

        for f in members:
            name = title if len(members) == 1 else f"{title} ({' < '.join(f.frames[:3]) or f.fingerprint[:12]})"
            out[f.fingerprint] = rate(name, len(f.runs))
        if len(members) > 1:
            out[f"{where}|{title}"] = rate(f"{title} (any of its {len(members)} reports)",
                                           len(set().union(*(f.runs for f in members))))
    return out


def properties(rates: Iterable[Rate], keys: tuple[str, ...] = ()) -> dict[str, str]:
    """JUnit properties: the rate text, plus the totals of the metrics that count events."""
    props = {}
    for r in rates:
        extra = ", ".join(f"{k} {v:.0f}" for k, v in r.events(keys))
        props[f"rate.{r.name}"] = r.text + (f"; total {extra}" if extra else "")
    return props
