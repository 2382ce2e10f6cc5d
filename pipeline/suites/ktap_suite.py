"""Modules that report in KTAP (kunit test modules, our own guest/modules): one case per test.

A test's case is `case="<test>[.<subtest>...]"` of the suite and the module's variant, with
the run number in `runs` only when the suite ran more than once (JUnit names
`<suite>[.<variant>].<test>[.<subtest>...][#N]`). A run also gives, for the same suite and variant:
- no case: ERROR when it timed out, FAIL "no KTAP output" when there was no document;
- case `ktap`: ERROR listing the documents' problems (plan mismatch, bail out, a test
  that never printed its result line, more than one document);
- case `load`: FAIL when the load exited non-zero although no test failed.
A test's duration is its `# metric: duration_ms=`, `wall_ms=` or `seconds=`, else an even
share of the run's (or the parent test's) time that the measured tests do not account for.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Sequence

from pipeline.suites import ktap
from pipeline.model.status import Status
from pipeline.model.cases import Case, ModuleRun, SuiteRun

DURATION_METRICS = {"duration_ms": 1e-3, "wall_ms": 1e-3, "seconds": 1.0}  # metric -> seconds per unit


def parse(run: SuiteRun) -> list[Case]:
    return [case for mod in run.numbered() for case in parse_one(mod, run.suite)]


def parse_one(mod: ModuleRun, suite: str) -> list[Case]:
    of_run = partial(mod.case, suite, variant=mod.variant)
    if mod.timed_out:
        return [of_run(Status.ERROR, "timed out", mod.log[-4000:])]
    docs = ktap.parse(mod.log)
    if not docs:
        return [of_run(Status.FAIL, "no KTAP output", (mod.output + "\n" + mod.log[-4000:]).strip())]
    results = [r for doc in docs for r in doc.results]
    cases = [c for r, seconds in zip(results, durations(results, mod.duration))
             for c in result_cases(r, of_run(Status.PASS), seconds)]
    problems = [p for doc in docs for p in doc.problems]
    problems += [f"{len(docs)} KTAP documents in one run"] if len(docs) > 1 else []
    if problems:
        cases.append(of_run(Status.ERROR, problems[0], "\n".join(problems) + "\n\n" + mod.log[-4000:],
                            duration=0.0, case="ktap"))
    elif not results:
        cases.append(of_run(Status.SKIP, f"no tests (plan 1..{docs[0].plan})"))
    if mod.exit_code != 0 and all(c.status in (Status.PASS, Status.SKIP) for c in cases):
        cases.append(of_run(Status.FAIL, f"load exited {mod.exit_code}", mod.output, duration=0.0, case="load"))
    return cases


def result_cases(result: ktap.KtapResult, parent: Case, seconds: float) -> list[Case]:
    """The case of a result (under parent: the run's, or the enclosing test's), then those
    of its subtests, depth first."""
    test = ".".join(part for part in (parent.case, result.name or str(result.number)) if part)
    case = replace(parent, status=result.status, duration=seconds, message=message(result),
                   text="\n".join(ktap.render(result)), metrics=dict(result.metrics),
                   properties={k: f"{v:g}" for k, v in result.metrics.items()}, case=test)
    subs = zip(result.subtests, durations(result.subtests, seconds))
    return [case] + [c for sub, share in subs for c in result_cases(sub, case, share)]


def message(result: ktap.KtapResult) -> str:
    """A skip's reason; for a failure what follows its `#` (TIMEOUT 30 s), else its first
    diagnostic that is not a metric."""
    if result.status is Status.SKIP:
        return result.reason
    if result.status is Status.FAIL:
        comment = " ".join(part for part in (result.directive, result.reason) if part)
        diagnostics = [d for d in result.diagnostics if not ktap.METRIC_RE.match(d)]
        return comment or (diagnostics[0] if diagnostics else "")
    return ""


def durations(results: Sequence[ktap.KtapResult], total: float) -> list[float]:
    own = [next((r.metrics[k] * scale for k, scale in DURATION_METRICS.items() if k in r.metrics), None)
           for r in results]
    unmeasured = own.count(None)
    left = max(total - sum(s for s in own if s is not None), 0.0)
    return [s if s is not None else left / unmeasured for s in own]
