"""The `wqci bisect` job: the range (a series' patches, or a user's good..bad), what
one step does (an incremental build in the slot, then for guest predicates a
boot with the suites), the search (jobs/bisect.py), and its outputs: junit.xml
and bisect.log."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from pipeline import config
from pipeline.build import kernel as build_mod
from pipeline.guest import boot as boot_mod
from pipeline.intake import tree as trees
from pipeline.model import results
from pipeline.jobs import prepare
from pipeline.jobs import variant as testrun
from pipeline.jobs.bisect import BisectResult, Evaluate, Observation, Predicate, Step, bisect, judge
from pipeline.model.errors import UsageError
from pipeline.model.progress import Progress
from pipeline.model.status import Status
from pipeline.suites import config as suites_config
from pipeline.suites.config import SuiteConfig
from pipeline.model.cases import Case
from pipeline.guest.topology import Topology
from pipeline.intake.tree import TreeInfo


@dataclass(frozen=True)
class BisectRequest:
    """A series (its patches on its base tree), or a user's checkout (tree_path) from good to bad."""

    predicate: Predicate
    arch: config.Arch
    flavor: config.Flavor
    topology: Topology
    suites: tuple[SuiteConfig, ...]  # run at each step of a guest predicate
    out_dir: Path | None = None  # default: out/bisect-<name> in the current directory
    series: str | None = None
    tree_path: Path | None = None
    good: str | None = None
    bad: str | None = None
    repeat: int = 1  # runs per step: bad if any run is bad, good only if all pass
    sandbox: bool = True
    accel: str = "auto"
    jobs: int = field(default_factory=build_mod.default_jobs)  # make -j
    kconfig_add: tuple[str, ...] = ()  # -K CONFIG_X=VALUE options (build/kconfig.py)

    def __post_init__(self) -> None:
        if bool(self.series) == bool(self.tree_path):
            raise UsageError(detail="give --series NAME, or --tree PATH with --good REV and --bad REV")
        if self.tree_path and not (self.good and self.bad):
            raise UsageError(detail="--tree needs --good REV and --bad REV")

    @property
    def name(self) -> str:
        """The series, or the checkout's directory name."""
        return self.series or self.tree_path.name  # type: ignore[union-attr]


@dataclass(frozen=True)
class Range:
    tree: TreeInfo
    good: tuple[str, str]  # (label, commit) of the known-good end
    commits: list[tuple[str, str]]  # (label, commit), oldest first; the last is the bad end


@dataclass(frozen=True)
class BisectOutcome:
    name: str
    result: BisectResult
    junit: Path
    log: Path

    @property
    def culprit(self) -> Step | None:
        """The step that named the culprit (its evidence), or None when the range has none."""
        if self.result.culprit is None:
            return None
        return next(st for st in self.result.steps if st.commit == self.result.culprit[1])


def suites_for(layout: config.Layout, predicate: Predicate, names: Sequence[str] | None,
               params: Sequence[str] | None) -> tuple[SuiteConfig, ...]:
    """The suites each step runs: none for --build-fails; else the ones asked for, or
    the suite the predicate names (--suite-fails NAME, --metric NAME.CASE.METRIC)."""
    if not predicate.needs_guest():
        return ()
    if not names:
        names = [predicate.suite] if predicate.suite else [predicate.metric.split(".")[0]] if predicate.metric else None
    return tuple(suites_config.load_suites(layout).resolve(list(names) if names else None, None, list(params or [])))


def bisect_range(layout: config.Layout, req: BisectRequest) -> Range:
    if req.series:
        co = prepare.checkout(layout, req.series)
        return Range(co.info, ("base", co.info.commit), co.commits)
    info = trees.user_tree(req.tree_path, req.good)
    return Range(info, (req.good, info.commit), trees.range_commits(info, req.good, req.bad))


def run_bisect(layout: config.Layout, req: BisectRequest, progress: Progress,
               evaluate: Evaluate | None = None) -> BisectOutcome:
    """Resolve the range, search it, write junit.xml and bisect.log into the output directory.

    evaluate judges one run of one commit; by default an incremental build (and a
    boot with the suites) in the slot. A metric predicate's evaluate also has
    .reference(label, commit), which measures the good end first."""
    out_dir = (req.out_dir or Path("out") / f"bisect-{req.name}").resolve()
    rng = bisect_range(layout, req)
    if evaluate is None:
        plan = StepPlan(tree=rng.tree, arch=req.arch, flavor=req.flavor, topology=req.topology, suites=req.suites,
                        out_dir=out_dir, sandbox=req.sandbox, accel=req.accel, jobs=req.jobs,
                        kconfig_add=req.kconfig_add)
        evaluate = evaluator(layout, plan, req.predicate, progress)
    progress(f"bisecting {len(rng.commits)} commit(s) of {req.name}: bad when {req.predicate.describe()}")
    if req.predicate.kind == "metric":
        progress(f"reference at the good end: {evaluate.reference(*rng.good)}")  # type: ignore[attr-defined]
    result = bisect(req.predicate, rng.good, rng.commits, evaluate, max(req.repeat, 1),
                    lambda step: progress(describe(step)))
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = BisectOutcome(req.name, result, out_dir / "junit.xml", out_dir / "bisect.log")
    results.write_junit(to_run(result, req.name), outcome.junit)
    outcome.log.write_text(bisect_log(result))
    return outcome


def describe(step: Step) -> str:
    """One line per step, as it finishes."""
    return (f"{step.label} {step.commit[:12]}: {'BAD' if step.bad else 'good'} ({step.confidence()}, "
            f"{step.duration:.0f} s) {step.evidence.splitlines()[0][:100] if step.evidence else ''}")


def bisect_log(result: BisectResult) -> str:
    """bisect.log: per step a tab-separated line (label, commit, bad/good, confidence, seconds), then its evidence."""
    return "\n".join(f"{st.label}\t{st.commit}\t{'bad' if st.bad else 'good'}\t{st.confidence()}\t{st.duration:.1f}s\n"
                     f"{st.evidence}\n" for st in result.steps)


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
    jobs: int = field(default_factory=build_mod.default_jobs)
    kconfig_add: tuple[str, ...] = ()


def evaluator(layout: config.Layout, plan: StepPlan, predicate: Predicate, progress: Progress,
              booted: testrun.Booter = boot_mod.booted) -> Evaluate:
    """One step: an incremental build of the commit in the slot, then for a guest predicate a
    boot (started by booted) with the plan's suites; judged by the predicate."""
    counter = {"n": 0, "reference": None}

    def evaluate(label: str, commit: str) -> Observation:
        counter["n"] += 1
        progress(f"step {counter['n']}: {label} ({commit[:12]})")
        req = build_mod.BuildRequest(tree=plan.tree, arch=plan.arch, flavor=plan.flavor, commit=commit, label=label,
                                     sandbox=plan.sandbox, jobs=plan.jobs, kconfig_add=plan.kconfig_add)
        built = build_mod.build(layout, req)
        ok = built.status is Status.PASS
        message = "builds" if ok else build_mod.first_errors(built)
        suite = results.SuiteResult(name=label)
        if ok and predicate.needs_guest():
            step_dir = plan.out_dir / f"step-{counter['n']}"
            treq = testrun.TestRequest(arch=plan.arch, topology=plan.topology, build=built, suites=plan.suites,
                                       out_dir=step_dir, accel=plan.accel)
            testrun.run_variant(layout, treq, suite, progress, booted=booted)
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
        suite.cases.append(Case(f"step{i}", Status.PASS, step.duration,
                                f"{'bad' if step.bad else 'good'} ({step.confidence()})", step.evidence[:20000],
                                properties={"commit": step.commit, "bad": str(step.bad).lower()}, case=step.label))
    culprit_status = Status.FAIL if result.culprit else Status.PASS
    suite.cases.append(Case("culprit", culprit_status, 0.0, result.message,
                            next((s.evidence for s in result.steps if result.culprit and s.commit == result.culprit[1]),
                                 "")))
    run.suites.append(suite)
    return run
