"""`wqci run`: the end-to-end job for one series.

tree -> apply -> build baseline and patched (same slot, so the second build is
incremental) -> boots interleaved A B A B ... each running the suites ->
differential triage (a finding seen on the baseline is known, otherwise new)
-> A/B comparison of test_workqueue -> JUnit, results.json and the report.
Everything measured so far is written out even when the run is interrupted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from pipeline import config
from pipeline.analysis import compare
from pipeline.jobs import prepare
from pipeline.model import results
from pipeline.jobs import variant as testrun
from pipeline.triage import findings as triage
from pipeline.model.status import Status
from pipeline.suites.config import SuiteConfig
from pipeline.model.cases import Case
from pipeline.guest.topology import Topology
from pipeline.triage.findings import Finding

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunRequest:
    series: str
    arches: tuple[config.Arch, ...]
    flavor: str | None
    topology: Topology
    suites: tuple[SuiteConfig, ...]
    repeat: int
    out_dir: Path
    max_regression: float = 0.05
    perf_flavor: str | None = None
    each_patch: bool = False
    tree_path: Path | None = None
    accel: str = "auto"
    sandbox: bool = True


@dataclass
class ArchOutcome:
    arch: str
    baseline: results.SuiteResult
    patched: results.SuiteResult
    comparison: list[compare.ScopeComparison] = field(default_factory=list)
    new_findings: list[Finding] = field(default_factory=list)
    known_findings: list[Finding] = field(default_factory=list)
    label: str | None = None  # "not representative of hardware (...)"
    culprits: dict[str, str] = field(default_factory=dict)  # fingerprint -> first patch


def scope_metrics(suite: results.SuiteResult) -> dict[str, list[dict[str, float]]]:
    """test_workqueue.<scope> metrics of every run, by scope."""
    out: dict[str, list[dict[str, float]]] = {}
    for case in suite.cases:
        parts = case.name.split("#")[0].split(".")
        if parts[0] == "test_workqueue" and len(parts) == 2 and case.metrics:
            out.setdefault(parts[1], []).append(dict(case.metrics))
    return out


def run(layout: config.Layout, req: RunRequest, progress: Progress) -> tuple[results.Run, list[ArchOutcome]]:
    """Returns the run and per-arch outcomes; results are on disk after every step."""
    run_result = results.Run(name=f"wqci run {req.series}", properties={"series": req.series,
                                                                       "repeat": str(req.repeat)})
    outcomes: list[ArchOutcome] = []
    try:
        for arch in req.arches:
            outcomes.append(run_arch(layout, req, arch, run_result, progress))
    finally:
        finish(run_result, outcomes, req)
    return run_result, outcomes


def _suite(req: RunRequest, arch: config.Arch, flavor: str, label: str) -> results.SuiteResult:
    return results.SuiteResult(name=f"{arch.name}/{flavor}/{req.topology.name}/{label}",
                               properties={"variant": label, "topology": req.topology.name})


def run_arch(layout: config.Layout, req: RunRequest, arch: config.Arch, run_result: results.Run,
             progress: Progress) -> ArchOutcome:
    flavor_name = config.load_flavors(layout).get(req.flavor).name
    base_suite = _suite(req, arch, flavor_name, "baseline")
    patched_suite = _suite(req, arch, flavor_name, req.series)
    run_result.suites += [base_suite, patched_suite]
    outcome = ArchOutcome(arch=arch.name, baseline=base_suite, patched=patched_suite)
    arch_dir = req.out_dir / arch.name
    progress(f"{arch.name}: tree and baseline build")
    base = _prepare(layout, req, arch, None, req.flavor, base_suite, arch_dir / "baseline")
    progress(f"{arch.name}: apply and build {req.series}")
    patched = _prepare(layout, req, arch, req.series, req.flavor, patched_suite, arch_dir / req.series)
    if not (base.ok and patched.ok):
        return outcome
    known: set[str] = set()
    ab_only = tuple(s for s in req.suites if s.parser == "test_workqueue") or req.suites
    for i in range(req.repeat):
        # A B A B ...: slow drift of the host hits both sides alike. The first boot of
        # each side runs every suite; the repeats only what the A/B comparison needs.
        for prepared, suite, name in ((base, base_suite, "baseline"), (patched, patched_suite, req.series)):
            progress(f"{arch.name}: run {i + 1}/{req.repeat} {name}")
            found = _test(layout, req, arch, prepared, suite, arch_dir / name / f"run-{i + 1}", progress,
                          known if name != "baseline" else set(), None if i == 0 else ab_only)
            if name == "baseline":
                known |= {f.fingerprint for f in found}
    _classify(outcome, known, triage.load_known(layout.configs / "known-findings.yaml", base.info.name))
    if req.each_patch and outcome.new_findings:
        outcome.culprits = _first_patches(layout, req, arch, patched, outcome, arch_dir, progress)
    ab_base, ab_patched = base_suite, patched_suite
    if req.perf_flavor:
        ab_base, ab_patched = _perf_ab(layout, req, arch, run_result, progress)
    _compare(outcome, ab_base, ab_patched, req)
    return outcome


def _prepare(layout: config.Layout, req: RunRequest, arch: config.Arch, series: str | None, flavor: str | None,
             suite: results.SuiteResult, out_dir: Path) -> prepare.Prepared:
    out_dir.mkdir(parents=True, exist_ok=True)
    variant = prepare.Variant(series=series, tree_path=req.tree_path, flavor=flavor, sandbox=req.sandbox)
    prepared = prepare.prepare(layout, variant, arch, out_dir)
    suite.properties.update(prepared.properties)
    for stage in prepared.stages:
        suite.add_stage(stage)
    return prepared


def _test(layout: config.Layout, req: RunRequest, arch: config.Arch, prepared: prepare.Prepared,
          suite: results.SuiteResult, out_dir: Path, progress: Progress, known: set[str],
          suites: tuple[SuiteConfig, ...] | None = None) -> list[Finding]:
    out_dir.mkdir(parents=True, exist_ok=True)
    treq = testrun.TestRequest(arch=arch, topology=req.topology, build=prepared.build,
                               suites=suites or req.suites, out_dir=out_dir, accel=req.accel)
    before = len(suite.cases)
    found = testrun.run_variant(layout, treq, suite, progress, known)
    run_no = out_dir.name.split("-")[-1]
    if req.repeat > 1:  # keep case names unique across repeats
        suite.cases[before:] = [replace(c, name=f"{c.name}#{run_no}") for c in suite.cases[before:]]
    return found


def _classify(outcome: ArchOutcome, known: set[str], listed: tuple = ()) -> None:
    """New: seen on the patched kernel only. Known: seen on the baseline in any of the
    interleaved boots, or listed for the base tree in configs/known-findings.yaml."""
    outcome.patched.mark_known(known)
    seen: dict[str, Finding] = {}
    for f in outcome.patched.findings:
        seen.setdefault(f.fingerprint, f)
    is_known = {fp: fp in known or triage.known_reason(f, listed) is not None for fp, f in seen.items()}
    outcome.new_findings = [f for fp, f in seen.items() if not is_known[fp]]
    outcome.known_findings = [f for fp, f in seen.items() if is_known[fp]]


def _first_patches(layout: config.Layout, req: RunRequest, arch: config.Arch, patched: prepare.Prepared,
                   outcome: ArchOutcome, arch_dir: Path, progress: Progress) -> dict[str, str]:
    """Test each intermediate patch once; a new finding belongs to the first patch that shows it."""
    culprits: dict[str, str] = {}
    wanted = {f.fingerprint for f in outcome.new_findings}
    for label, commit in patched.commits[:-1]:
        progress(f"{arch.name}: each-patch {label}")
        step = prepare.prepare_commit(layout, patched, arch, label, commit, req.sandbox)
        if not step.ok:
            continue
        scratch = results.SuiteResult(name=f"{arch.name}/each-patch/{label}")
        found = _test(layout, req, arch, step, scratch, arch_dir / "each-patch" / label.replace(" ", "-").replace(
            "/", "of"), progress, set())
        for f in found:
            if f.fingerprint in wanted:
                culprits.setdefault(f.fingerprint, label)
    last = patched.commits[-1][0]
    return {fp: culprits.get(fp, last) for fp in wanted}


def _perf_ab(layout: config.Layout, req: RunRequest, arch: config.Arch, run_result: results.Run,
             progress: Progress) -> tuple[results.SuiteResult, results.SuiteResult]:
    """Interleaved test_workqueue runs on the sanitizer-free flavour."""
    flavor = config.load_flavors(layout).get(req.perf_flavor).name
    a = _suite(req, arch, flavor, "baseline")
    b = _suite(req, arch, flavor, req.series)
    run_result.suites += [a, b]
    arch_dir = req.out_dir / arch.name / f"perf-{flavor}"
    base = _prepare(layout, req, arch, None, req.perf_flavor, a, arch_dir / "baseline")
    patched = _prepare(layout, req, arch, req.series, req.perf_flavor, b, arch_dir / req.series)
    if not (base.ok and patched.ok):
        return a, b
    wq = tuple(s for s in req.suites if s.parser == "test_workqueue")
    for i in range(req.repeat):
        for prepared, suite, name in ((base, a, "baseline"), (patched, b, req.series)):
            progress(f"{arch.name}: perf run {i + 1}/{req.repeat} {name}")
            _test(layout, req, arch, prepared, suite, arch_dir / name / f"run-{i + 1}", progress, set(), wq)
    return a, b


def _compare(outcome: ArchOutcome, a: results.SuiteResult, b: results.SuiteResult, req: RunRequest) -> None:
    outcome.comparison = compare.compare(scope_metrics(a), scope_metrics(b), req.max_regression)
    accel = a.properties.get("accelerator", "tcg").split()[0]
    outcome.label = compare.representativeness(accel, req.topology.cpus, os.cpu_count() or 1)
    for row in outcome.comparison:
        status = Status.FAIL if row.verdict == "regression" else Status.PASS
        props = {k: (f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in row.to_dict().items()
                 if v is not None}
        if outcome.label:
            props["note"] = outcome.label
        message = (f"{row.scope}: {row.gain:+.1f}% ({row.verdict})" if status is Status.PASS else
                   f"{row.scope}: {row.gain:+.1f}%, beyond the allowed -{req.max_regression * 100:.0f}%")
        b.cases.append(Case(f"ab.{row.scope}", status, 0.0, message, properties=props))
    if outcome.label:
        b.properties["ab_note"] = outcome.label


def finish(run_result: results.Run, outcomes: list[ArchOutcome], req: RunRequest) -> None:
    """Write JUnit, results.json and the report, whatever state the run is in."""
    from pipeline.output import report

    req.out_dir.mkdir(parents=True, exist_ok=True)
    results.write_junit(run_result, req.out_dir / "junit.xml")
    extra = {"arches": [_outcome_dict(o) for o in outcomes], "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    results.write_json(run_result, req.out_dir / "results.json", extra)
    report.write(req.out_dir)


def _outcome_dict(o: ArchOutcome) -> dict:
    return {
        "arch": o.arch, "note": o.label, "comparison": [r.to_dict() for r in o.comparison],
        "new_findings": [f.to_dict() | {"first_patch": o.culprits.get(f.fingerprint)} for f in o.new_findings],
        "known_findings": [f.to_dict() for f in o.known_findings],
    }
