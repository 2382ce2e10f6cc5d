"""One kernel variant under test: boot it, run the suites, triage the console.

The chain is boot -> suites -> triage, each step adding cases to one
SuiteResult. A hung suite costs a reboot, not the run: the remaining suites run
in a fresh guest. Whatever happens (panic, hang, Ctrl-C), the cases gathered so
far stay in the result and the console logs stay on disk.

The guest is started through a Booter (guest/boot.py's booted: QEMU and SSH);
unit tests pass one whose guests replay recorded module output
(tests/fakes/guest.py), so the reboot after a hang runs in seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Sequence, TypeVar

from pipeline.guest import boot as boot_mod
from pipeline.guest import qemu
from pipeline.guest.ssh import Guest
from pipeline.jobs import prepare
from pipeline.analysis import rates
from pipeline.model import results
from pipeline.triage import findings as triage
from pipeline.triage import history
from pipeline.analysis.evidence import Boot
from pipeline.build.kernel import BuildResult
from pipeline.config import Arch, Layout
from pipeline.model.errors import GuestError
from pipeline.model import progress as progress_mod
from pipeline.model.progress import Progress
from pipeline.model.status import Status
from pipeline.model.results import SuiteResult
from pipeline.suites.runner import run_suite
from pipeline.suites.config import SuiteConfig
from pipeline.model.cases import Case
from pipeline.guest.topology import Topology

T = TypeVar("T")
#: starts the guest of a BootRequest: (the VM, an SSH connection to it, how the boot went)
Booter = Callable[[Layout, boot_mod.BootRequest], ContextManager[tuple[qemu.Vm, Guest, boot_mod.BootResult]]]
MAX_BOOTS = 4
#: the error case of a run cut short (Ctrl-C, SIGTERM): it is never green
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class TestRequest:
    arch: Arch
    topology: Topology
    build: BuildResult
    suites: tuple[SuiteConfig, ...]
    out_dir: Path
    accel: str = "auto"
    boot_timeout: float | None = None
    extra_cmdline: tuple[str, ...] = ()


def run_variant(layout: Layout, req: TestRequest, result: SuiteResult, progress: Progress = lambda s: None,
                checkpoint: Callable[[], None] = lambda: None,
                booted: Booter = boot_mod.booted) -> list[triage.Finding]:
    """Boot, run every suite (rebooting after a hang), triage. The stage and suite cases
    go into result, the findings into result.findings and the return value; how a
    finding is judged is the caller's decision (a case per finding). booted starts the
    guest (QEMU and SSH; unit tests pass one that replays recorded output)."""
    pending = list(req.suites)
    consoles: list[Path] = []
    boots = 0
    stage = "boot"
    try:
        while pending or boots == 0:
            boots += 1
            boot_dir = req.out_dir / f"boot-{boots}"
            breq = boot_mod.BootRequest(arch=req.arch, topology=req.topology, build=req.build, run_dir=boot_dir,
                                        accel=req.accel, timeout=req.boot_timeout, extra_cmdline=req.extra_cmdline)
            consoles.append(boot_dir / "console.log")
            stage = f"boot {boots}"
            progress(f"boot {boots}: {req.arch.name} {req.topology.name}")
            started = time.monotonic()
            try:
                with booted(layout, breq) as (vm, conn, up):
                    _record_boot(result, up, boots, time.monotonic() - started)
                    checkpoint()
                    while pending:
                        cfg = pending.pop(0)
                        stage = f"suite {cfg.name}"
                        progress(f"suite {cfg.name}")
                        # every run of the module may take up to the suite's timeout
                        limit = cfg.timeout * cfg.repeats * len(cfg.variants)
                        with progress_mod.task(f"suite {cfg.name}", limit, "s", clock=True, kind=f"suite {cfg.name}"):
                            outcome = run_suite(conn, vm, cfg, req.out_dir)
                        result.cases.extend(outcome.cases)
                        checkpoint()
                        if outcome.needs_reboot:
                            break
                    try:
                        (req.out_dir / "dmesg.txt").write_text(conn.dmesg())
                    except GuestError:
                        pass
            except GuestError as exc:
                result.cases.append(_boot_case(boots, Status.FAIL, time.monotonic() - started, str(exc),
                                               str(exc.fields.get("report", ""))))
                for cfg in pending:
                    result.cases.append(Case(cfg.name, Status.SKIP, 0.0, f"skipped: the guest failed ({exc})"))
                pending = []
            if boots >= MAX_BOOTS and pending:
                for cfg in pending:
                    result.cases.append(Case(cfg.name, Status.SKIP, 0.0, f"skipped after {MAX_BOOTS} boots"))
                pending = []
    except KeyboardInterrupt:
        # Ctrl-C, SIGTERM: an error case says where, and the console read so far is triaged
        result.cases.append(Case(INTERRUPTED, Status.ERROR, 0.0, f"interrupted during {stage}"))
        result.findings.extend(triage.triage(_join_consoles(consoles, req.out_dir / "console.log")))
        raise
    console = _join_consoles(consoles, req.out_dir / "console.log")
    findings = triage.triage(console)
    src = req.build.out.parent.parent / "src"
    findings = triage.decode(findings, src, req.build.artifacts.get("vmlinux", Path("/nonexistent")))
    result.findings.extend(findings)
    return findings


def _boot_case(number: int, status: Status, seconds: float, message: str = "", text: str = "",
               properties: dict[str, str] | None = None) -> Case:
    """The case of the number-th boot of a test: `boot`, then `boot#2`... after a hang."""
    return Case("boot", status, seconds, message, text, properties=properties or {},
                runs=(number,) if number > 1 else ())


def _record_boot(result: SuiteResult, booted: boot_mod.BootResult, number: int, seconds: float) -> None:
    result.cases.append(_boot_case(number, Status.PASS, seconds, properties={
        "seconds_to_ssh": f"{booted.seconds_to_ssh:.1f}", "accelerator": booted.accel.name}))
    result.properties.setdefault("accelerator", f"{booted.accel.name} ({booted.accel.reason})")
    result.properties.setdefault("qemu_argv", " ".join(booted.argv))
    result.properties.setdefault("kernel_cmdline", booted.cmdline)
    result.properties.setdefault("guest_cpus", str(booted.topology.get("cpus")))


def _join_consoles(consoles: Sequence[Path], dest: Path) -> str:
    parts = []
    for path in consoles:
        if path.exists():
            parts.append(path.read_text(errors="replace"))
    text = "\n".join(parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    return text


def test_one(layout: Layout, variant: prepare.Variant, arch: Arch, topology: Topology,
             suites: Sequence[SuiteConfig], out_dir: Path, accel: str = "auto",
             progress: Progress = lambda s: None) -> results.Run:
    """`wqci test`: prepare one variant, boot it, run the suites; JUnit and results.json
    are written even when something raises on the way."""
    label = variant.series or "base"
    run = results.Run(name=f"wqci test {label}")
    flavor = variant.flavor or "debug"
    suite = SuiteResult(name=f"{arch.name}/{flavor}/{topology.name}/{label}")
    suite.properties.update(topology=topology.name, suites=",".join(s.name for s in suites))
    run.suites.append(suite)
    out_dir.mkdir(parents=True, exist_ok=True)

    def checkpoint() -> None:  # after every case: a kill -9 keeps everything up to it
        results.write_junit(run, out_dir / "junit.xml")
        results.write_json(run, out_dir / "results.json")

    try:
        progress(f"preparing {label} for {arch.name}")
        prepared = interrupted_during("tree, apply and build", suite, prepare.prepare, layout, variant, arch, out_dir)
        suite.properties.update(prepared.properties)
        for stage in prepared.stages:
            suite.add_stage(stage)
        if prepared.ok:
            before = len(suite.cases)
            req = TestRequest(arch=arch, topology=topology, build=prepared.build, suites=tuple(suites),
                              out_dir=out_dir, accel=accel, extra_cmdline=prepared.cmdline)
            listed = triage.load_known(layout.configs / "known-findings.yaml", prepared.info.name)
            try:
                found = run_variant(layout, req, suite, progress, checkpoint)
            except KeyboardInterrupt:
                suite.add_findings(suite.findings, listed, _incidence(suite))
                raise
            suite.add_findings(found, listed, _incidence(suite))
            if variant.series is None and not variant.amplify and not variant.append:  # stock settings only
                record_base_boot(layout, prepared, suite.cases[before:], found, "test")
    finally:
        suite.properties.update(rates.properties(rates.repeated(suite.cases)))
        checkpoint()
    return run


def _incidence(suite: SuiteResult) -> dict[str, str]:
    """For suites run with --repeat: in how many runs each finding was printed."""
    return {fp: r.text for fp, r in rates.incidence(suite.findings, suite.cases).items()}


def exercised(cases: Sequence[Case]) -> frozenset[str]:
    """The suites a test really ran (not skipped), and its stages ("boot"): each case's suite."""
    return frozenset(c.suite for c in cases if c.status is not Status.SKIP)


def record_base_boot(layout: Layout, prepared: prepare.Prepared, cases: Sequence[Case],
                     found: Sequence[triage.Finding], source: str) -> None:
    """Add one boot of a base kernel to its history (triage/history.py)."""
    store = history.for_build(layout, prepared.build)
    if store is not None:
        store.add(Boot.of(exercised(cases), found), source)


def interrupted_during(stage: str, result: SuiteResult, func: Callable[..., T], *args: object) -> T:
    """func(*args); when Ctrl-C or SIGTERM cuts it short, result gets the error case first."""
    try:
        return func(*args)
    except KeyboardInterrupt:
        result.cases.append(Case(INTERRUPTED, Status.ERROR, 0.0, f"interrupted during {stage}"))
        raise
