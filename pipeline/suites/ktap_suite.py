"""Modules that report in KTAP (kunit test modules, our own guest/modules): one case per test.

Case names are `<suite>[.<variant>].<test>[.<subtest>...][#N]`; `#N` numbers the runs only
when the suite ran more than once, and goes last so that `name.split("#")[0]` (bisect's
metric predicates) finds a test in every run. A run also gives, under the same prefix:
- `<suite>[#N]`: ERROR when it timed out, FAIL "no KTAP output" when there was no document;
- `<suite>.ktap[#N]`: ERROR listing the documents' problems (plan mismatch, bail out, a test
  that never printed its result line, more than one document);
- `<suite>.load[#N]`: FAIL when the load exited non-zero although no test failed.
A test's duration is its `# metric: duration_ms=`, `wall_ms=` or `seconds=`, else an even
share of the run's (or the parent test's) time that the measured tests do not account for.
"""

from __future__ import annotations

from typing import Sequence

from pipeline.suites import ktap
from pipeline.model.status import Status
from pipeline.model.cases import Case, ModuleRun, SuiteRun

DURATION_METRICS = {"duration_ms": 1e-3, "wall_ms": 1e-3, "seconds": 1.0}  # metric -> seconds per unit


def parse(run: SuiteRun) -> list[Case]:
    cases = []
    for mod, suffix in run.numbered():
        cases += parse_one(mod, run.suite + (f".{mod.variant}" if mod.variant else ""), suffix)
    return cases


def parse_one(mod: ModuleRun, prefix: str, suffix: str = "") -> list[Case]:
    if mod.timed_out:
        return [Case(prefix + suffix, Status.ERROR, mod.duration, "timed out", mod.log[-4000:])]
    docs = ktap.parse(mod.log)
    if not docs:
        return [Case(prefix + suffix, Status.FAIL, mod.duration, "no KTAP output",
                     (mod.output + "\n" + mod.log[-4000:]).strip())]
    results = [r for doc in docs for r in doc.results]
    cases = [c for r, seconds in zip(results, durations(results, mod.duration))
             for c in result_cases(r, prefix, suffix, seconds)]
    problems = [p for doc in docs for p in doc.problems]
    problems += [f"{len(docs)} KTAP documents in one run"] if len(docs) > 1 else []
    if problems:
        cases.append(Case(f"{prefix}.ktap{suffix}", Status.ERROR, 0.0, problems[0],
                          "\n".join(problems) + "\n\n" + mod.log[-4000:]))
    elif not results:
        cases.append(Case(prefix + suffix, Status.SKIP, mod.duration, f"no tests (plan 1..{docs[0].plan})"))
    if mod.exit_code != 0 and all(c.status in (Status.PASS, Status.SKIP) for c in cases):
        cases.append(Case(f"{prefix}.load{suffix}", Status.FAIL, 0.0, f"load exited {mod.exit_code}", mod.output))
    return cases


def result_cases(result: ktap.KtapResult, prefix: str, suffix: str, seconds: float) -> list[Case]:
    """The case of a result, then those of its subtests, depth first."""
    name = f"{prefix}.{result.name or result.number}"
    case = Case(name + suffix, result.status, seconds, message(result), "\n".join(ktap.render(result)),
                metrics=dict(result.metrics), properties={k: f"{v:g}" for k, v in result.metrics.items()})
    subs = zip(result.subtests, durations(result.subtests, seconds))
    return [case] + [c for sub, share in subs for c in result_cases(sub, name, suffix, share)]


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
