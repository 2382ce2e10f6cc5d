"""`wqci bisect`: the first commit (a series' patch, or a commit of a user's range)
where a predicate turns bad.

Every step builds in the same slot, so each is an incremental build. The good
end is taken as good; the bad end is only tested when the search would
otherwise name it without evidence. With repeats, a step is bad if the
signature shows in any run and good only if all runs pass; the report states
what that means ("0 of N runs: rate < 1 - 0.05^(1/N) at 95%", the exact
Clopper-Pearson bound that `wqci test --repeat` prints too).
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from pipeline.analysis import rates
from pipeline.model.errors import UsageError
from pipeline.model.status import Status
from pipeline.model.results import SuiteResult

KINDS = ("build", "finding", "suite", "metric")


@dataclass(frozen=True)
class Predicate:
    """What makes a commit bad."""

    kind: str
    pattern: str = ""  # finding: fingerprint or regex on "kind: title"
    suite: str = ""  # suite: name of the suite that must pass
    metric: str = ""  # metric: test_workqueue.cache.items_per_sec
    threshold: float = 0.05  # metric: allowed loss against the good end

    def describe(self) -> str:
        return {"build": "the build fails", "finding": f"a finding matching '{self.pattern}' appears",
                "suite": f"suite {self.suite} fails",
                "metric": f"{self.metric} drops more than {self.threshold * 100:.0f}% below the good end"}[self.kind]

    def needs_guest(self) -> bool:
        return self.kind != "build"


def parse_predicate(build_fails: bool, finding: str | None, suite: str | None, metric: str | None,
                    threshold: str) -> Predicate:
    chosen = [k for k, v in (("build", build_fails), ("finding", finding), ("suite", suite), ("metric", metric))
              if v]
    if len(chosen) != 1:
        raise UsageError(detail="give exactly one predicate: --build-fails, --finding FINGERPRINT|REGEX, "
                        "--suite-fails NAME or --metric NAME --threshold N%")
    if finding:
        try:
            re.compile(finding)
        except re.error as exc:
            raise UsageError(detail=f"--finding '{finding}': not a regular expression: {exc}") from None
    value = threshold.strip().rstrip("%")
    try:
        limit = float(value) / 100
    except ValueError:
        raise UsageError(detail=f"--threshold '{threshold}': use a percentage like 5%") from None
    if metric and len(metric.split(".")) != 3:
        raise UsageError(detail=f"--metric '{metric}': use SUITE.CASE.METRIC, e.g. test_workqueue.cache.items_per_sec")
    return Predicate(kind=chosen[0], pattern=finding or "", suite=suite or "", metric=metric or "", threshold=limit)


@dataclass(frozen=True)
class Observation:
    """One run of one step."""

    bad: bool
    evidence: str
    value: float | None = None  # the metric, for metric predicates


@dataclass(frozen=True)
class Step:
    label: str
    commit: str
    bad: bool
    runs: int
    bad_runs: int
    evidence: str
    duration: float
    values: tuple[float, ...] = ()

    def confidence(self) -> str:
        if self.bad:
            return f"{self.bad_runs} of {self.runs} runs bad"
        if not self.runs:
            return "not run"
        return f"0 of {self.runs} runs: rate < {rates.bounds(0, self.runs)[1]:.3g} at 95%"


@dataclass
class BisectResult:
    predicate: Predicate
    good: tuple[str, str]
    commits: list[tuple[str, str]]
    steps: list[Step] = field(default_factory=list)
    culprit: tuple[str, str] | None = None
    message: str = ""


Evaluate = Callable[[str, str], Observation]


def judge(predicate: Predicate, suite: SuiteResult, build_ok: bool, build_message: str,
          baseline: float | None = None) -> Observation:
    """Apply the predicate to what one run of one step produced."""
    if predicate.kind == "build":
        return Observation(not build_ok, build_message)
    if not build_ok:
        return Observation(False, f"does not build ({build_message}); not judged")
    if predicate.kind == "finding":
        regex = re.compile(predicate.pattern)
        for f in suite.findings:
            if f.fingerprint == predicate.pattern or regex.search(f"{f.kind}: {f.title}"):
                return Observation(True, f"{f.kind}: {f.title} [{f.fingerprint}]\n{f.text}")
        return Observation(False, f"{len(suite.findings)} finding(s), none matching")
    if predicate.kind == "suite":
        cases = [c for c in suite.cases if c.suite == predicate.suite]
        failed = [c for c in cases if c.status in (Status.FAIL, Status.ERROR)]
        if not cases:
            return Observation(False, f"suite {predicate.suite} did not run")
        return Observation(bool(failed), "; ".join(f"{c.name}: {c.message}" for c in failed) or "passed")
    test, _, metric = predicate.metric.rpartition(".")  # SUITE.CASE and METRIC, as parse_predicate checked
    values = [c.metrics[metric] for c in suite.cases if c.test == test and metric in c.metrics]
    if not values:
        return Observation(False, f"no {predicate.metric} measured")
    value = statistics.median(values)
    if baseline is None:
        return Observation(False, f"{predicate.metric} = {value:.0f} (reference)", value)
    loss = 1 - value / baseline if baseline else 0.0
    return Observation(loss > predicate.threshold, f"{predicate.metric} = {value:.0f}, {loss * -100:+.1f}% against "
                       f"the good end ({baseline:.0f})", value)


def run_step(label: str, commit: str, evaluate: Evaluate, repeat: int) -> Step:
    started = time.monotonic()
    observations = []
    for _ in range(repeat):
        obs = evaluate(label, commit)
        observations.append(obs)
        if obs.bad:
            break  # bad once is bad: no need to repeat
    bad = [o for o in observations if o.bad]
    evidence = (bad[0] if bad else observations[-1]).evidence
    return Step(label=label, commit=commit, bad=bool(bad), runs=len(observations), bad_runs=len(bad),
                evidence=evidence, duration=time.monotonic() - started,
                values=tuple(o.value for o in observations if o.value is not None))


def bisect(predicate: Predicate, good: tuple[str, str], commits: Sequence[tuple[str, str]], evaluate: Evaluate,
           repeat: int = 1, on_step: Callable[[Step], None] = lambda s: None) -> BisectResult:
    """Binary search for the first bad commit in commits (oldest first); good is the known-good end."""
    result = BisectResult(predicate=predicate, good=good, commits=list(commits))
    if not commits:
        result.message = "nothing to bisect: the range is empty"
        return result
    lo, hi = -1, len(commits) - 1  # commits[lo] good (or the good end), commits[hi] bad
    hi_tested = False
    while hi - lo > 1:
        mid = (lo + hi) // 2
        step = run_step(*commits[mid], evaluate, repeat)
        result.steps.append(step)
        on_step(step)
        if step.bad:
            hi, hi_tested = mid, True
        else:
            lo = mid
    if not hi_tested:
        # nothing before it was bad: the bad end itself has to show the signature
        step = run_step(*commits[hi], evaluate, repeat)
        result.steps.append(step)
        on_step(step)
        if not step.bad:
            result.message = f"{predicate.describe()} nowhere in the range, not even at {commits[hi][0]}"
            return result
    result.culprit = commits[hi]
    result.message = f"first bad: {commits[hi][0]} ({commits[hi][1][:12]}): {predicate.describe()}"
    return result
