"""`wqci run`: the end-to-end job for one series.

tree -> apply -> build baseline and patched (same slot, so the second build is
incremental) -> boots interleaved A B A B ... each running the suites ->
classification of every finding (analysis/evidence.py: new, unconfirmed or
pre-existing, on counts from both sides and the base's history) -> while an
unconfirmed finding can still be confirmed, interleaved reruns of the suites
where it appeared (`--confirm N` pairs at most) -> A/B comparison of
test_workqueue -> JUnit, results.json and the report, all stating one verdict
(model/verdict.py). Findings of the baseline kernel never fail the run.
Everything measured so far is written out even when the run is interrupted.

The machine is behind a Backend (jobs/backend.py), so all of this is unit-tested
with recorded consoles.
"""

from __future__ import annotations

import os
import shlex
import time
import uuid
from datetime import datetime, timezone
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from pipeline import config
from pipeline.analysis import compare, lockab, sampling, seedclaims
from pipeline.analysis import latency as latency_mod
from pipeline.analysis import evidence
from pipeline.analysis.evidence import Boot, Classification, FindingClass
from pipeline.build.kernel import LOCK_TIMEOUT, default_jobs
from pipeline.jobs import prepare
from pipeline.jobs.backend import Backend, GuestBackend
from pipeline.jobs.variant import INTERRUPTED, exercised, interrupted_during
from pipeline.model import results
from pipeline.model.cases import Case
from pipeline.model.errors import WqciError
from pipeline.model.status import Status
from pipeline.guest.topology import Topology
from pipeline.suites import lockstat
from pipeline.suites.config import SuiteConfig
from pipeline.suites import test_workqueue
from pipeline.triage import findings as triage
from pipeline.triage.findings import Finding
from pipeline.model import progress as progress_mod
from pipeline.model.progress import Progress

#: findings this many confirmation pairs cannot settle stay unconfirmed
DEFAULT_CONFIRM = 3


@dataclass(frozen=True)
class RunRequest:
    series: str
    arches: tuple[config.Arch, ...]
    flavor: str | None
    topology: Topology
    suites: tuple[SuiteConfig, ...]
    repeat: int | None  # interleaved pairs; None: auto, as many as sampling.decide asks for
    out_dir: Path
    max_regression: float = 0.05
    ab_target: float = sampling.DEFAULT_TARGET  # auto: every scope's 95% CI within ±this (a fraction)
    ab_budget: float = sampling.DEFAULT_BUDGET  # auto: seconds of A/B pairs
    ab_max_pairs: int = sampling.DEFAULT_MAX_PAIRS
    perf_flavor: str | None = None
    each_patch: bool = False
    tree_path: Path | None = None
    accel: str = "auto"
    sandbox: bool = True
    confirm: int = DEFAULT_CONFIRM  # at most this many extra interleaved pairs to settle a finding
    strict: bool = False  # unconfirmed findings fail the run too
    touches: Callable[[Finding], str] = lambda f: ""  # "touches kick_pool (changed by 2/2)"
    ccache_remote: str = ""  # ccache's remote_storage for both builds (a nightly matrix's)
    lock_timeout: float = LOCK_TIMEOUT  # wait this long for another wqci in a build slot
    skipped: Mapping[str, str] = field(default_factory=dict)  # default suites not run -> why (Suites.by_paths)
    onto: str | None = None  # with tree_path: both sides at this revision (the series' base-commit, --range's BASE)
    range: str = ""  # --range BASE..HEAD when the series is a branch of tree_path (for reproduce.sh)
    jobs: int = field(default_factory=default_jobs)  # make -j of every build
    kconfig_add: tuple[str, ...] = ()  # -K CONFIG_X=VALUE options (build/kconfig.py) for every build
    append: tuple[str, ...] = ()  # --append: kernel parameters for every guest of the run

    @property
    def triage_suites(self) -> tuple[SuiteConfig, ...]:
        """The suites as run on the --flavor kernels: lighter when the A/B has a flavour of its own."""
        return tuple(s.for_triage() for s in self.suites) if self.perf_flavor else self.suites


@dataclass
class Side:
    """One kernel of the A/B: its build, its JUnit suite, and every test of it."""

    label: str
    prepared: prepare.Prepared
    suite: results.SuiteResult
    boots: list[Boot] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


@dataclass
class ArchOutcome:
    arch: str
    baseline: results.SuiteResult
    patched: results.SuiteResult
    comparison: list[compare.ScopeComparison] = field(default_factory=list)
    classification: Classification = field(default_factory=Classification)
    label: str | None = None  # "not representative of hardware (...)"
    culprits: dict[str, str] = field(default_factory=dict)  # fingerprint -> first patch
    confirm_rounds: int = 0
    confirm_seconds: float = 0.0
    sampling: dict = field(default_factory=dict)  # how the A/B pairs were chosen (sampling.record)
    locks: list[lockab.LockComparison] = field(default_factory=list)  # the lock_stat A/B
    latency: list[latency_mod.LatencyComparison] = field(default_factory=list)  # enqueue latency per scope
    latency_unmeasured: list[str] = field(default_factory=list)  # the seed's latency claims we cannot measure

    def of(self, cls: FindingClass) -> list[evidence.Classified]:
        return self.classification.of(cls)


def scope_metrics(suite: results.SuiteResult) -> dict[str, list[dict[str, float]]]:
    """test_workqueue.<scope> metrics of every run, by scope."""
    out: dict[str, list[dict[str, float]]] = {}
    for case in suite.cases:
        if case.suite == test_workqueue.NAME and case.case in test_workqueue.SCOPES and case.metrics:
            out.setdefault(case.case, []).append(dict(case.metrics))
    return out


def recorded(layout: config.Layout, req: RunRequest) -> dict[str, str]:
    """The request as run properties (strings, for JUnit too): what reproduce.sh, reply.txt
    and kcidb.json need to redo and describe this run from results.json alone. The suite
    parameters are the effective ones, defaults included, so a later suites.yaml cannot
    change what reproduce.sh runs."""
    props = {
        "series": req.series, "repeat": "auto" if req.repeat is None else str(req.repeat),
        "ab_target": f"{req.ab_target:g}", "ab_budget": f"{req.ab_budget:g}", "run_id": uuid.uuid4().hex[:16],
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "arches": ",".join(a.name for a in req.arches), "flavor": req.flavor or "",
        "perf_flavor": req.perf_flavor or "", "topology": req.topology.name,
        "suites": ",".join(s.name for s in req.suites),
        "params": shlex.join(f"{s.name}.{k}={v}" for s in req.suites for k, v in s.params.items()),
        "accel": req.accel, "tree_path": str(req.tree_path or ""), "max_regression": f"{req.max_regression:g}",
        "confirm": str(req.confirm), "strict": str(req.strict).lower(), "each_patch": str(req.each_patch).lower(),
    }
    if req.range:
        props["range"] = req.range
    try:
        s = config.load_series(layout, req.series)
    except WqciError:  # a series that is not a series.yaml: the replies say the Message-IDs are unknown
        return props
    props["series_author"] = s.author
    props["patch_message_ids"] = " ".join(p.message_id or "-" for p in s.patches)
    cover = getattr(s, "cover_message_id", "")
    if cover:
        props["cover_message_id"] = cover
    return props


def run(layout: config.Layout, req: RunRequest, progress: Progress,
        backend: Backend | None = None) -> tuple[results.Run, list[ArchOutcome]]:
    """Returns the run and per-arch outcomes; results are on disk after every step."""
    backend = backend or GuestBackend(layout, req.topology, req.accel, req.sandbox)
    run_result = results.Run(name=f"wqci run {req.series}", properties=recorded(layout, req))
    outcomes: list[ArchOutcome] = []

    def checkpoint() -> None:
        write(run_result, outcomes, req)

    try:
        for arch in req.arches:
            run_arch(layout, backend, req, arch, run_result, progress, outcomes, checkpoint)
    finally:
        write(run_result, outcomes, req)
        report_write(req.out_dir)
    return run_result, outcomes


def _suite(req: RunRequest, arch: config.Arch, flavor: str, label: str) -> results.SuiteResult:
    return results.SuiteResult(name=f"{arch.name}/{flavor}/{req.topology.name}/{label}",
                               properties={"variant": label, "topology": req.topology.name})


def run_arch(layout: config.Layout, backend: Backend, req: RunRequest, arch: config.Arch,
             run_result: results.Run, progress: Progress, outcomes: list[ArchOutcome],
             checkpoint: Callable[[], None] = lambda: None) -> ArchOutcome:
    """One arch of the run; its outcome is in outcomes from the start, so an
    interrupted arch is still reported."""
    flavor_name = config.load_flavors(layout).get(req.flavor).name
    base_suite = _suite(req, arch, flavor_name, "baseline")
    patched_suite = _suite(req, arch, flavor_name, req.series)
    run_result.suites += [base_suite, patched_suite]
    outcome = ArchOutcome(arch=arch.name, baseline=base_suite, patched=patched_suite)
    for name, why in req.skipped.items():  # said in every output, so nobody takes them for run and passed
        patched_suite.cases.append(Case(name, Status.SKIP, message=f"not run: {why}"))
    outcomes.append(outcome)
    arch_dir = req.out_dir / arch.name
    progress(f"{arch.name}: tree and baseline build")
    base = _prepare(backend, req, arch, None, req.flavor, base_suite, arch_dir / "baseline")
    progress(f"{arch.name}: apply and build {req.series}")
    patched = _prepare(backend, req, arch, req.series, req.flavor, patched_suite, arch_dir / req.series)
    checkpoint()
    if not (base.ok and patched.ok):
        return outcome
    sides = (Side("baseline", base, base_suite), Side(req.series, patched, patched_suite))
    store = backend.history(base)
    past = store.boots() if store is not None else []
    listed = triage.load_known(layout.configs / "known-findings.yaml", base.info.name if base.info else "")
    suites = req.triage_suites
    ab_only = tuple(s for s in suites if s.parser == "test_workqueue") or suites
    # with a perf flavour the A/B is measured there: here one pair for triage (confirmation adds more)
    plan = sampling.Plan(pairs=1) if req.perf_flavor and req.repeat is None else _plan(req)

    def pair(number: int) -> None:
        # A B A B ...: slow drift of the host hits both sides alike. The first boot of
        # each side runs every suite; the repeats only what the A/B comparison needs.
        _pair(backend, req, arch, sides, number, suites if number == 1 else ab_only, arch_dir, progress, store,
              checkpoint)

    try:
        pairs = _sample(plan, pair, sides, {} if req.perf_flavor else outcome.sampling, progress, arch.name,
                        budget_from=1 if ab_only == suites else 2)
        outcome.classification = _classify(sides, past, listed, req)
        started = time.monotonic()
        for r in range(req.confirm):
            pending = [c for c in outcome.of(FindingClass.UNCONFIRMED) if evidence.reachable(c, req.confirm - r)]
            if not pending:
                break
            outcome.confirm_rounds += 1
            progress(f"{arch.name}: confirming {len(pending)} finding(s), pair {r + 1}/{req.confirm}")
            _pair(backend, req, arch, sides, pairs + r + 1, _where(pending, suites), arch_dir, progress,
                  store, checkpoint, "confirm")
            outcome.classification = _classify(sides, past, listed, req)
        outcome.confirm_seconds = time.monotonic() - started
        if req.each_patch and outcome.of(FindingClass.NEW):
            outcome.culprits = _first_patches(backend, req, arch, sides[1], outcome, arch_dir, progress)
    finally:
        # an interruption keeps what was seen so far, classified
        outcome.classification = _classify(sides, past, listed, req)
        base_suite.add_classified(outcome.classification.baseline)
        patched_suite.add_classified(outcome.classification.patched, req.strict, outcome.culprits)
    ab_base, ab_patched = base_suite, patched_suite
    if req.perf_flavor:
        ab_base, ab_patched = _perf_ab(layout, backend, req, arch, run_result, progress, checkpoint,
                                       outcome.sampling)
    _compare(outcome, ab_base, ab_patched, req, _claims(layout, req))
    return outcome


def _prepare(backend: Backend, req: RunRequest, arch: config.Arch, series: str | None, flavor: str | None,
             suite: results.SuiteResult, out_dir: Path, carry: tuple[str, ...] = ()) -> prepare.Prepared:
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = prepare.Variant(series=series, tree_path=req.tree_path, flavor=flavor, sandbox=req.sandbox,
                             ccache_remote=req.ccache_remote, lock_timeout=req.lock_timeout, onto=req.onto,
                             jobs=req.jobs, kconfig_add=req.kconfig_add, carry=carry, append=req.append)
    prepared = interrupted_during(f"tree, apply and build of {series or 'the baseline'}", suite, backend.prepare,
                                  wanted, arch, out_dir)
    suite.properties.update(prepared.properties)
    for stage in prepared.stages:
        suite.add_stage(stage)
    return prepared


def _pair(backend: Backend, req: RunRequest, arch: config.Arch, sides: Sequence[Side], number: int,
          suites: Sequence[SuiteConfig], arch_dir: Path, progress: Progress, store, checkpoint: Callable[[], None],
          why: str = "run") -> None:
    """One test of each side, baseline first; each is one Boot of evidence, and the
    results on disk are brought up to date after each."""
    for side in sides:
        progress(f"{arch.name}: {why} {number} {side.label}")
        suite = side.suite
        before, seen_before = len(suite.cases), len(suite.findings)
        try:
            backend.test(arch, side.prepared, suites, arch_dir / side.label / f"run-{number}", suite, progress)
        except KeyboardInterrupt:
            if not suite.cases[before:] or suite.cases[-1].name != INTERRUPTED:
                suite.cases.append(Case(INTERRUPTED, Status.ERROR, 0.0, f"interrupted during {why} {number}"))
            raise
        finally:  # what an interrupted test saw still counts
            if req.repeat != 1 or number > 1:  # keep case names unique across repeats
                suite.cases[before:] = [c if c.suite == INTERRUPTED else c.numbered(number)
                                        for c in suite.cases[before:]]
            found = suite.findings[seen_before:]
            side.boots.append(Boot.of(exercised(suite.cases[before:]), found))
            side.findings.extend(found)
            checkpoint()
        if side is sides[0] and store is not None and not req.append:  # the base's history: stock settings only
            store.add(side.boots[-1], f"run {req.series}")


def _classify(sides: Sequence[Side], past: Sequence[Boot], listed: Sequence[triage.KnownFinding],
              req: RunRequest) -> Classification:
    base, patched = sides
    out = evidence.classify(patched.findings, base.findings, patched.boots, base.boots, past, listed)
    out.patched = [replace(c, touches=req.touches(c.finding)) for c in out.patched]
    out.baseline = [replace(c, touches=req.touches(c.finding)) for c in out.baseline]
    return out


def _where(pending: Sequence[evidence.Classified], suites: Sequence[SuiteConfig]) -> tuple[SuiteConfig, ...]:
    """The suites in which the pending findings appeared (none for boot-time findings)."""
    places = {c.finding.where for c in pending}
    return tuple(s for s in suites if s.name in places)


def _first_patches(backend: Backend, req: RunRequest, arch: config.Arch, patched: Side, outcome: ArchOutcome,
                   arch_dir: Path, progress: Progress) -> dict[str, str]:
    """Test each intermediate patch once; a new finding belongs to the first patch that shows it."""
    culprits: dict[str, str] = {}
    wanted = {c.fingerprint for c in outcome.of(FindingClass.NEW)}
    for label, commit in patched.prepared.commits[:-1]:
        progress(f"{arch.name}: each-patch {label}")
        step = backend.prepare_commit(patched.prepared, arch, label, commit)
        if not step.ok:
            continue
        scratch = results.SuiteResult(name=f"{arch.name}/each-patch/{label}")
        step_dir = arch_dir / "each-patch" / label.replace(" ", "-").replace("/", "of")
        for f in backend.test(arch, step, req.triage_suites, step_dir, scratch, progress):
            if f.fingerprint in wanted:
                culprits.setdefault(f.fingerprint, label)
    last = patched.prepared.commits[-1][0]
    return {fp: culprits.get(fp, last) for fp in wanted}


def _perf_ab(layout: config.Layout, backend: Backend, req: RunRequest, arch: config.Arch, run_result: results.Run,
             progress: Progress, checkpoint: Callable[[], None],
             record: dict) -> tuple[results.SuiteResult, results.SuiteResult]:
    """Interleaved test_workqueue runs on the sanitizer-free flavour, as many pairs as
    the plan asks for (record: how they were chosen)."""
    flavor = config.load_flavors(layout).get(req.perf_flavor).name
    a = _suite(req, arch, flavor, "baseline")
    b = _suite(req, arch, flavor, req.series)
    run_result.suites += [a, b]
    arch_dir = req.out_dir / arch.name / f"perf-{flavor}"
    wq = tuple(s for s in req.suites if s.parser == "test_workqueue")
    carry = tuple(dict.fromkeys(s.ab_carry for s in wq if s.ab_carry))
    base = _prepare(backend, req, arch, None, req.perf_flavor, a, arch_dir / "baseline", carry)
    patched = _prepare(backend, req, arch, req.series, req.perf_flavor, b, arch_dir / req.series, carry)
    if not (base.ok and patched.ok):
        return a, b
    # one load per scope where both sides carry what that needs; else whole runs, as on any tree
    both = set.intersection(*(set(p.properties.get("carried", "").split()) for p in (base, patched)))
    wq = tuple(s.for_ab() if s.ab_carry in both else s for s in wq)
    sides = (Side("baseline", base, a), Side(req.series, patched, b))

    def pair(number: int) -> None:
        _pair(backend, req, arch, sides, number, wq, arch_dir, progress, None, checkpoint, "perf run")

    _sample(_plan(req), pair, sides, record, progress, arch.name)
    return a, b


def _plan(req: RunRequest) -> sampling.Plan:
    return sampling.Plan(pairs=req.repeat, target=req.ab_target, budget=req.ab_budget, max_pairs=req.ab_max_pairs)


def _samples(sides: Sequence[Side]) -> dict[str, tuple[list[float], list[float]]]:
    """Scope -> items/s of the baseline's runs and the patched kernel's, where both have some."""
    a, b = (scope_metrics(side.suite) for side in sides)
    return {s: (compare.throughputs(a[s]), compare.throughputs(b[s])) for s in a if s in b}


def _sample(plan: sampling.Plan, pair: Callable[[int], None], sides: Sequence[Side], record: dict,
            progress: Progress, arch: str, budget_from: int = 1) -> int:
    """Interleaved pairs while the plan says so (sampling.decide); returns how many ran.
    The record is brought up to date before each pair, so an interrupted run keeps it
    too. Pairs before `budget_from` (a first pair that runs every suite, not only the
    A/B's) do not count against the budget."""
    pairs, spent, last = 0, 0.0, 0.0
    with progress_mod.task(f"{arch}: baseline/patched pairs", plan.pairs, "pairs") as done:  # auto: no total
        while True:
            decision = sampling.decide(plan, _samples(sides), pairs, spent, last)
            record.update(sampling.record(plan, decision, pairs, spent))
            if not decision.more:
                return pairs
            if plan.auto and pairs:
                progress(f"{arch}: A/B {decision.detail}")
            started = time.monotonic()
            pair(pairs + 1)
            pairs += 1
            done.advance()
            last = time.monotonic() - started
            if pairs >= budget_from:
                spent += last


def _claims(layout: config.Layout, req: RunRequest) -> tuple[config.Claim, ...]:
    """The series' claims, where the seed's published numbers are (seedclaims.py, latency.py)."""
    try:
        return config.load_series(layout, req.series).claims
    except WqciError:  # a series that is not a series.yaml (as in recorded())
        return ()


def _compare(outcome: ArchOutcome, a: results.SuiteResult, b: results.SuiteResult, req: RunRequest,
             claims: Sequence[config.Claim]) -> None:
    base_runs, patched_runs = scope_metrics(a), scope_metrics(b)
    outcome.comparison = compare.compare(base_runs, patched_runs, req.max_regression, seedclaims.published(claims),
                                         req.ab_target)
    seed_latency = latency_mod.published(claims)
    outcome.latency = latency_mod.compare(base_runs, patched_runs, seed_latency, req.ab_target)
    outcome.latency_unmeasured = latency_mod.unmeasured(seed_latency) if outcome.latency else []
    accel = a.properties.get("accelerator", "tcg").split()[0]
    outcome.label = compare.representativeness(accel, req.topology.cpus, os.cpu_count() or 1)
    for row in outcome.comparison:
        status = Status.FAIL if row.regressed else Status.PASS
        props = _properties(row) | ({"note": outcome.label} if outcome.label else {})
        message = (f"{row.scope}: {row.gain:+.1f}%, {row.statement}" if status is Status.PASS else
                   f"{row.scope}: {row.gain:+.1f}%, beyond the allowed -{req.max_regression * 100:.0f}%")
        b.cases.append(Case("ab", status, 0.0, message, properties=props, case=row.scope))
    outcome.locks = lockab.compare(lockab.lock_metrics(a.cases), lockab.lock_metrics(b.cases))
    # the mechanism and the latency inform; they never fail a run on their own
    for lock in outcome.locks:
        where = f"{lock.scope}: " if lock.scope else ""
        b.cases.append(Case("ab", Status.PASS, 0.0, f"{where}{lock.lock_class} {lock.metric}: {lock.change:+.1f}%, "
                            f"{lock.statement}", properties=_properties(lock), variant=lock.scope,
                            case=f"lockstat.{lockstat.slug(lock.lock_class)}.{lock.metric}"))
    for row in outcome.latency:
        seed = f"; the seed: {row.seed_change:+.1f}%, {row.seed_verdict}" if row.seed_verdict else ""
        b.cases.append(Case("ab", Status.PASS, 0.0, f"{row.scope}: enqueue latency {row.percentile} "
                            f"{row.change:+.1f}%, {row.statement}{seed}", properties=_properties(row),
                            variant=row.scope, case=f"latency.{row.percentile}"))
    if outcome.label:
        b.properties["ab_note"] = outcome.label
    if outcome.sampling:
        b.properties["ab_pairs"] = str(outcome.sampling["pairs"])
        b.properties["ab_stopped"] = f"{outcome.sampling['stopped']}: {outcome.sampling['detail']}"


def _properties(row: compare.ScopeComparison | lockab.LockComparison | latency_mod.LatencyComparison) -> dict[str, str]:
    """An A/B row's fields as JUnit properties."""
    return {k: (f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in row.to_dict().items() if v is not None}


def write(run_result: results.Run, outcomes: list[ArchOutcome], req: RunRequest) -> None:
    """JUnit and results.json as they stand (each replaced atomically), whatever state the run is in."""
    req.out_dir.mkdir(parents=True, exist_ok=True)
    results.write_junit(run_result, req.out_dir / "junit.xml")
    extra = {"arches": [_outcome_dict(o) for o in outcomes], "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    results.write_json(run_result, req.out_dir / "results.json", extra)


def report_write(out_dir: Path) -> None:
    from pipeline.output import report

    report.write(out_dir)


def _outcome_dict(o: ArchOutcome) -> dict:
    def rows(items: Sequence[evidence.Classified]) -> list[dict]:
        return [c.to_dict() | {"first_patch": o.culprits.get(c.fingerprint)} for c in items]

    return {
        "arch": o.arch, "note": o.label, "comparison": [r.to_dict() for r in o.comparison],
        "lock_comparison": [r.to_dict() for r in o.locks],
        "latency_comparison": [r.to_dict() for r in o.latency], "latency_unmeasured": o.latency_unmeasured,
        "new_findings": rows(o.of(FindingClass.NEW)),
        "unconfirmed_findings": rows(o.of(FindingClass.UNCONFIRMED)),
        "preexisting_findings": rows(o.of(FindingClass.PRE_EXISTING)),
        "baseline_findings": rows(o.classification.baseline),
        "confirm": {"rounds": o.confirm_rounds, "seconds": round(o.confirm_seconds, 1)},
        "ab_sampling": o.sampling,
    }
