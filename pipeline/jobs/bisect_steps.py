"""What one `wqci bisect` step does: an incremental build in the slot, then (for
guest predicates) a boot with the suites; and the JUnit of the whole bisect."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline import config
from pipeline.build import kernel as build_mod
from pipeline.model import results
from pipeline.jobs import variant as testrun
from pipeline.jobs.bisect import BisectResult, Evaluate, Observation, Predicate, judge
from pipeline.model.status import Status
from pipeline.suites.config import SuiteConfig
from pipeline.model.cases import Case
from pipeline.guest.topology import Topology
from pipeline.intake.tree import TreeInfo


@dataclass(frozen=True)
class StepPlan:
    tree: TreeInfo
    arch: config.Arch
    flavor: config.Flavor
    topology: Topology
    suites: tuple[SuiteConfig, ...]
    out_dir: Path
    sandbox: bool = True
    accel: str = "auto"


def evaluator(layout: config.Layout, plan: StepPlan, predicate: Predicate,
              progress: Callable[[str], None]) -> Evaluate:
    counter = {"n": 0, "reference": None}

    def evaluate(label: str, commit: str) -> Observation:
        counter["n"] += 1
        progress(f"step {counter['n']}: {label} ({commit[:12]})")
        req = build_mod.BuildRequest(tree=plan.tree, arch=plan.arch, flavor=plan.flavor, commit=commit, label=label,
                                     sandbox=plan.sandbox)
        built = build_mod.build(layout, req)
        ok = built.status is Status.PASS
        message = "builds" if ok else build_mod.first_errors(built)
        suite = results.SuiteResult(name=label)
        if ok and predicate.needs_guest():
            step_dir = plan.out_dir / f"step-{counter['n']}"
            treq = testrun.TestRequest(arch=plan.arch, topology=plan.topology, build=built, suites=plan.suites,
                                       out_dir=step_dir, accel=plan.accel)
            testrun.run_variant(layout, treq, suite, progress)
        return judge(predicate, suite, ok, message, counter["reference"])

    def reference(label: str, commit: str) -> float | None:
        """The metric at the good end, which later steps are compared with."""
        obs = evaluate(label, commit)
        counter["reference"] = obs.value
        return obs.value

    evaluate.reference = reference  # type: ignore[attr-defined]
    return evaluate


def to_run(result: BisectResult, name: str) -> results.Run:
    run = results.Run(name=f"wqci bisect {name}", properties={
        "predicate": result.predicate.describe(), "good": f"{result.good[0]} {result.good[1]}",
        "culprit": f"{result.culprit[0]} {result.culprit[1]}" if result.culprit else "none"})
    suite = results.SuiteResult(name=f"bisect/{name}")
    for i, step in enumerate(result.steps, 1):
        # a bad step is what the bisect was looking for, not a failure of the bisect
        suite.cases.append(Case(f"step{i}.{step.label}", Status.PASS, step.duration,
                                f"{'bad' if step.bad else 'good'} ({step.confidence()})", step.evidence[:20000],
                                properties={"commit": step.commit, "bad": str(step.bad).lower()}))
    culprit_status = Status.FAIL if result.culprit else Status.PASS
    suite.cases.append(Case("culprit", culprit_status, 0.0, result.message,
                            next((s.evidence for s in result.steps if result.culprit and s.commit == result.culprit[1]),
                                 "")))
    run.suites.append(suite)
    return run
