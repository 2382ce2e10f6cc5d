"""The Typer app: the only place that prints verdicts and picks exit codes."""

from __future__ import annotations

import functools
import os
import re
from importlib import metadata
import signal
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import typer
from typer._click import exceptions as click_exc

from pipeline import config, proc
from pipeline.build import kconfig
from pipeline.build.kernel import LOCK_TIMEOUT, default_jobs
from pipeline.guest import boot as boot_mod
from pipeline.intake import branch
from pipeline.build import sandbox
from pipeline.intake import series as series_mod
from pipeline.jobs import run as abrun
from pipeline.jobs import bisect as bisect_mod
from pipeline.jobs import bisect_steps
from pipeline.jobs import build as build_job
from pipeline.analysis import compare as compare_mod
from pipeline.analysis import sampling as sampling_mod
from pipeline.jobs import prepare as prepare_mod
from pipeline.output import report as report_mod
from pipeline.jobs import nightly as nightly_mod
from pipeline.jobs import noise as noise_mod
from pipeline.model import results as results_mod
from pipeline.jobs import variant as testrun
from pipeline.triage import findings as triage_mod
from pipeline.triage import logtext
from pipeline.analysis import rates as rates_mod
from pipeline.analysis import latency as latency_mod
from pipeline.analysis import lockab
from pipeline.analysis import touched as touched_mod
from pipeline.guest import topology as topology_mod
from pipeline.intake import tree as trees
from pipeline.output import console as ui
from pipeline.suites import config as suites_config
from pipeline.model.status import Status
from pipeline.model import verdict as verdict_mod
from pipeline.analysis.evidence import FindingClass
from pipeline.model.errors import EXIT_INFRA, UsageError, WqciError

# -h as well as --help, as kernel tools have it (subcommands inherit it from here)
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  epilog="Example: wqci run --series fastwake-v1")
series_app = typer.Typer(no_args_is_help=True, help="The series: bundled (patches/) and the user's ($WQCI_SERIES).",
                         epilog="Example: wqci series show fastwake-v1")
tree_app = typer.Typer(no_args_is_help=True, help="Base kernel trees.", epilog="Example: wqci tree fetch")
app.add_typer(series_app, name="series")
app.add_typer(tree_app, name="tree")

# Options shared by several commands (Typer reads these per command). Short flags and
# spellings as kernel tools (tuxmake, make) have them: -a, -o, -j, -K; --flavor as
# tuxmake spells it, --flavour accepted too, "flavour" in every help text.
TREE = typer.Option(None, "--tree", help="Use this git checkout instead of the base tree.",
                    show_default="the base tree of configs/trees.yaml")
NO_SANDBOX = typer.Option(False, "--no-sandbox", help="Run make without bubblewrap.")
FLAVOR = typer.Option(None, "--flavor", "--flavour", help="Kernel flavour (configs/flavors.yaml); combine with +, "
                      "e.g. lockdep+kasan.", show_default="the default of configs/flavors.yaml")
TOPOLOGY = typer.Option(None, "--topology", help="Guest layout (configs/topologies.yaml).",
                        show_default="the default of configs/topologies.yaml")
JOBS = typer.Option(None, "--jobs", "-j", min=1, help="Parallel jobs of make (make -j).", show_default="one per CPU")
KCONFIG_ADD = typer.Option(None, "--kconfig-add", "-K", metavar="CONFIG_X=VALUE",
                           help="Also ask for this option (repeatable), merged after the flavour's fragments and "
                           "checked like theirs: VALUE is y, m, n, a number or a \"string\", and it must hold in "
                           "the final .config.")
CI = typer.Option(False, "--ci", help="Plain I:/W:/E: lines instead of progress bars (so too when stdout is not "
                  "a terminal).")
PARAM = typer.Option(None, "--param", help="SUITE.KEY=VALUE module parameter override.")
APPEND = typer.Option(None, "--append", metavar="PARAM[=VALUE]",
                      help="Kernel parameter for the guest (repeatable), after configs/boot.yaml's and --amplify's, "
                      "e.g. --append kcsan.skip_watch=1000.")
KERNEL_PARAM_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(=[^\s'\"\\]+)?")
ACCELERATORS = ("auto", "kvm", "tcg")


def _accel(value: str) -> str:
    if value not in ACCELERATORS:
        raise typer.BadParameter(f"'{value}'; options are: {', '.join(ACCELERATORS)}")
    return value


def _repeat(value: str) -> int | None:
    """--repeat of `wqci run`: a number of pairs, or auto (None)."""
    if value == "auto":
        return None
    try:
        pairs = int(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}'; give a number of pairs (1 or more) or auto") from None
    if pairs < 1:
        raise typer.BadParameter(f"{pairs}; give a number of pairs (1 or more) or auto")
    return pairs


LOCK_WAIT = typer.Option(LOCK_TIMEOUT, "--lock-timeout", min=0,
                         help="Seconds to wait while another wqci builds in the same slot.")
ACCEL = typer.Option("auto", "--accel", callback=_accel, help="auto (KVM only if a real probe boots a guest), kvm or tcg.")
SERIES = typer.Option(None, "--series", help="This series (see `wqci series list`), applied on its base tree.")
BASE = typer.Option(False, "--base", help="The base tree, without patches.")
RANGE = typer.Option(None, "--range", help="With --tree PATH: the commits BASE..HEAD of that checkout as the series, "
                    "BASE as the baseline.")
ARCHES = typer.Option("x86_64", "--arch", "-a", help="x86_64, arm64, a comma list, or all.")


@dataclass(frozen=True)
class _Make:
    """-j and -K, checked before any work."""

    jobs: int
    kconfig_add: tuple[str, ...]


def _make(jobs: int | None, kconfig_add: list[str] | None) -> _Make:
    return _Make(jobs or default_jobs(), tuple(kconfig.check_added(item) for item in kconfig_add or ()))


def _kernel_params(append: list[str] | None) -> tuple[str, ...]:
    """--append values: one kernel parameter each, name[=value], nothing the shell or the
    kernel's own parser would split or quote."""
    for item in append or ():
        if not KERNEL_PARAM_RE.fullmatch(item):
            raise UsageError(detail=f"--append {item!r}: give one kernel parameter, name or name=value, without "
                             "spaces or quotes (repeat --append for more)")
    return tuple(append or ())

_state = {"debug": False}


def _version(wanted: bool) -> None:
    if wanted:
        print(f"wqci {_installed_version()}")
        raise typer.Exit(0)


def _installed_version() -> str:
    try:
        return metadata.version("wqci")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed; `make deps` installs it)"


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Echo every command as `$ cmd`."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print wqci's version and exit."),
) -> None:
    """wqci: validate mailed Linux kernel patch series."""
    _state["debug"] = debug
    ui.setup_logging(verbose or debug)


def guarded(func: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> None:
        run_guarded(lambda: func(*args, **kwargs))

    return wrapper


def _series_or_base(series: str | None, base: bool) -> None:
    if bool(series) == base:
        raise UsageError(detail="give exactly one of --series NAME or --base")


@dataclass(frozen=True)
class _Given:
    """What a command works on: the layout (which knows a --range series), the series' name
    (None: the base) and the tree revision both sides of `wqci run` use (None: the tree's)."""

    layout: config.Layout
    series: str | None
    onto: str | None = None
    range: str = ""  # BASE..HEAD of --range, HEAD filled in


def _given(series: str | None, base: bool | None, range_: str | None, tree_path: Path | None) -> _Given:
    """--series NAME, --base (base=None: the command has none), or --tree PATH --range BASE..HEAD,
    checked before any work; the series' base-commit is announced in one I:/W: line."""
    lay = layout()
    if range_ is None:
        if base is not None:
            _series_or_base(series, base)
        elif not series:
            raise UsageError(detail="give --series NAME, or --tree PATH --range BASE..HEAD")
        return _Given(lay, series, _announce_base(lay, series, tree_path) if series else None)
    if series or base:
        raise UsageError(detail=f"--range {range_}: a series of its own; give it without --series or --base")
    if tree_path is None:
        raise UsageError(detail=f"--range {range_}: give --tree PATH, the checkout the range is in")
    rng = branch.resolve(tree_path, range_)
    s = branch.series(lay, rng)
    ui.info(f"--range {rng.spec}: {len(s.patches)} commit(s) of {rng.info.repo} as series {s.name} "
            f"on {rng.base[:12]}")
    return _Given(replace(lay, given=(s,)), s.name, rng.base, rng.spec)


def _announce_base(lay: config.Layout, series: str, tree_path: Path | None) -> str | None:
    """One line on where the series goes when it names a base-commit; that commit when the tree has it."""
    choice = series_mod.announce_base(lay, config.load_series(lay, series), tree_path)
    if choice.line:
        (ui.info if choice.found else ui.warn)(choice.line)
    return choice.commit if choice.found else None


def _check_sandbox(no_sandbox: bool) -> None:
    """Refuse when bwrap cannot run (unless --no-sandbox); warn when it is off."""
    why_not = sandbox.require(not no_sandbox)
    if why_not:
        ui.warn(why_not)


def layout() -> config.Layout:
    return config.Layout()


# ---------------------------------------------------------------- series


@series_app.command("list", epilog="Example: wqci series list")
@guarded
def series_list() -> None:
    """Every series: bundled with wqci (patches/) or the user's own ($WQCI_SERIES)."""
    lay = layout()
    rows, broken = [], []
    for entry in config.series_entries(lay):
        try:
            s = config.load_series_file(entry.path)
        except WqciError as exc:  # one broken series.yaml does not hide the others
            broken.append(str(exc))
            continue
        origin = entry.origin + (", shadowed by the user's" if entry.shadowed else "")
        rows.append((s.name, origin, len(s.patches), s.base, s.title))
    print(ui.table(("series", "from", "patches", "base", "title"), rows))
    for why in broken:
        ui.error(why)
    if broken:
        raise typer.Exit(2)


@series_app.command("show", epilog="Example: wqci series show fastwake-v1")
@guarded
def series_show(name: str) -> None:
    """Subjects, authors, files, trailers, base-commit and diffstat of one series."""
    lay = layout()
    s = config.load_series(lay, name)
    origin = "bundled with wqci" if s.directory.parent == lay.patches else "the user's"
    print(f"{s.name} v{s.version}: {s.title}")
    print(f"  author: {s.author}   date: {s.date}   base: {s.base}")
    print(f"  from:   {origin}, {s.directory}")
    if s.base_commit:
        print(f"  base-commit: {s.base_commit} (applied there when the tree has it)")
    for patch_id in s.prerequisite_patch_ids:
        print(f"  prerequisite-patch-id: {patch_id} (not applied by wqci)")
    if s.cover_file:
        print(f"  cover:  {s.cover_file} {s.cover_message_id}")
    for link in s.links:
        print(f"  link:   {link}")
    if s.description:
        print("\n" + "\n".join("  " + ln for ln in s.description.splitlines()))
    print()
    for i, p in enumerate(s.patches, 1):
        print(f"  [{i}/{len(s.patches)}] {p.subject}")
        print(f"        {p.file}" + (f"  {p.message_id}" if p.message_id else ""))
        for trailer in p.trailers:
            print(f"        + {trailer}")
    for claim in s.claims:
        print(f"\n  claim:   {claim.claim}\n  measure: {claim.measure}")
    print("\n" + series_mod.diffstat(lay, s))


@series_app.command("import", epilog="Example: wqci series import thread.mbox --name wq-idle -v 1")
@guarded
def series_import(
    source: str = typer.Argument(..., help="An mbox file, a maildir, a directory of git format-patch files, or "
                                 "(with network) a message-id or lore URL."),
    name: str = typer.Option(..., "--name", help="Name of the new series (a directory under $WQCI_SERIES)."),
    revision: Optional[int] = typer.Option(None, "-v", "--revision", min=1,
                                           help="Import revision N.", show_default="the newest"),
    base: Optional[str] = typer.Option(None, "--base", help="Base tree name.",
                                       show_default="the default of configs/trees.yaml"),
    force: bool = typer.Option(False, "--force", help="Replace an existing series of that name."),
) -> None:
    """Import a mailed series, the way b4 reads it, into $WQCI_SERIES/NAME/."""
    from pipeline.intake import importer  # b4 (requests, dkim, ...) only for the command that reads mail

    lay = layout()
    req = importer.ImportRequest(source=source, name=name, home=lay.series_home, bundled=lay.patches,
                                 base=config.load_trees(lay).get(base).name, revision=revision, force=force)
    done = importer.import_series(req)
    posting = done.posting
    trailers = sum(len(p.trailers) for p in posting.patches)
    ui.info(f"{name}: v{posting.revision} (of {', '.join(f'v{r}' for r in posting.revisions)}), "
            f"{len(posting.patches)} patch(es), {trailers} trailer(s) from replies, into {done.directory}; "
            f"skipped {posting.skipped} other message(s)")
    for fname, p in zip(done.files, posting.patches):
        print(f"  {fname}")
        for trailer in p.trailers:
            print(f"      + {trailer}")
    if posting.base_commit:
        ui.info(f"{name}: base-commit {posting.base_commit[:12]}: applied there when the tree has it")
    else:
        ui.info(f"{name}: no base-commit in the posting: applied on the configured tree")
    if posting.prerequisite_patch_ids:
        ui.warn(f"{name}: needs {len(posting.prerequisite_patch_ids)} prerequisite patch(es) "
                f"(prerequisite-patch-id {posting.prerequisite_patch_ids[0][:12]}...), which wqci does not apply")
    for note in posting.notes:
        ui.warn(f"b4: {note}")


# ---------------------------------------------------------------- trees


@tree_app.command("fetch", epilog="Example: wqci tree fetch linux-7.2")
@guarded
def tree_fetch(name: Optional[str] = typer.Argument(None, help="Tree name from configs/trees.yaml.",
                                                show_default="the default of configs/trees.yaml")) -> None:
    """Download, verify and unpack a base tree into the cache (once)."""
    lay = layout()
    tree = config.load_trees(lay).get(name)
    started = time.monotonic()
    info = trees.fetch(lay, tree, log_path=prepare_mod.stamped_log(lay, f"fetch-{tree.name}"))
    ui.info(f"tree {tree.name}: {info.repo} at {info.commit[:12]} ({tree.tag}) in {time.monotonic() - started:.1f} s")


@tree_app.command("show", epilog="Example: wqci tree show")
@guarded
def tree_show() -> None:
    """The configured trees and their state in the cache."""
    lay = layout()
    cfg = config.load_trees(lay)
    rows = []
    for name in sorted(cfg.trees):
        r = trees.describe(lay, cfg.trees[name])
        rows.append((r["name"] + (" (default)" if name == cfg.default else ""), r["package"], r["state"],
                     r["commit"], r["path"]))
    print(ui.table(("tree", "package", "state", "commit", "path"), rows))


# ---------------------------------------------------------------- apply


@app.command("apply", no_args_is_help=True,
             epilog="Example: wqci apply --series fastwake-v1 --tree ~/linux --onto v7.2")
@guarded
def apply_cmd(
    series: str = typer.Option(..., "--series", help="Series name (see `wqci series list`)."),
    tree_path: Optional[Path] = TREE,
    onto: Optional[str] = typer.Option(None, "--onto", help="Apply onto this revision instead of the base.",
                                       show_default="the series' base-commit when the tree has it, else the tree's"),
    ci: bool = CI,
) -> None:
    """Apply a series in a worktree under the cache, one commit per patch."""
    lay = layout()
    if onto is None:
        _announce_base(lay, series, tree_path)
    with ui.Progress(plain=ci):
        co = prepare_mod.checkout(lay, series, tree_path, onto,
                                  log_path=prepare_mod.stamped_log(lay, f"apply-{series}"))
    result = co.applied
    ui.info(f"applied {co.name} ({len(result.patches)} patches) onto {co.info.name} {result.base[:12]}")
    print(f"worktree: {result.worktree}")
    for p in result.patches:
        print(f"  {p.commit[:12]} [{p.number}/{p.total}] {p.ref.subject}")


# ---------------------------------------------------------------- build


@app.command("build", no_args_is_help=True,
             epilog="Example: wqci build --series fastwake-v1 -a all -j 8 -K CONFIG_DEBUG_ATOMIC_SLEEP=y")
@guarded
def build_cmd(
    series: Optional[str] = SERIES,
    base: bool = BASE,
    range_: Optional[str] = RANGE,
    arch: str = ARCHES,
    flavor: Optional[str] = FLAVOR,
    jobs: Optional[int] = JOBS,
    kconfig_add: Optional[list[str]] = KCONFIG_ADD,
    each_patch: bool = typer.Option(False, "--each-patch", help="Build every patch; name the first that breaks."),
    tree_path: Optional[Path] = TREE,
    no_ccache: bool = typer.Option(False, "--no-ccache", help="Compile without ccache."),
    no_sandbox: bool = NO_SANDBOX,
    force: bool = typer.Option(False, "--force", help="Rebuild even when nothing changed."),
    lock_timeout: float = LOCK_WAIT,
    ci: bool = CI,
) -> None:
    """Build image and modules for each arch into the slot's persistent build directory."""
    make = _make(jobs, kconfig_add)
    given = _given(series, base, range_, tree_path)
    lay, series = given.layout, given.series
    req = build_job.BuildsRequest(series=series, flavor=config.load_flavors(lay).get(flavor),
                                  arches=tuple(config.select_arches(lay, arch)), tree_path=tree_path,
                                  each_patch=each_patch, ccache=not no_ccache, sandbox=not no_sandbox, force=force,
                                  lock_timeout=lock_timeout, jobs=make.jobs, kconfig_add=make.kconfig_add)
    _check_sandbox(no_sandbox)
    with ui.Progress(plain=ci) as progress:
        built = build_job.build_arches(lay, req, progress, _print_arch_build)
    if not built.ok:
        raise typer.Exit(1)


def _print_arch_build(built: build_job.ArchBuild) -> None:
    """Each build of one arch, then its verdict (with the first errors when it fails)."""
    verdict = built.verdict
    for r in verdict.results:
        state = "cached" if r.cached else r.status.value
        ui.info(f"  {r.request.label:<24} {built.arch.name:<7} {state:<6} {r.compiled:>5} objects "
                f"{r.duration:7.1f} s  {r.out}")
    if verdict.failed is None:
        ui.info(verdict.message)
        return
    ui.error(verdict.message)
    for line in verdict.failed.errors[:5]:
        print(f"  {line}", file=sys.stderr)
    print(f"  log: {verdict.failed.log}", file=sys.stderr)


# ---------------------------------------------------------------- boot


@app.command("boot", no_args_is_help=True, epilog="Example: wqci boot --series fastwake-v1 --shell")
@guarded
def boot_cmd(
    series: Optional[str] = SERIES,
    base: bool = BASE,
    arch: str = ARCHES,
    flavor: Optional[str] = FLAVOR,
    topology: Optional[str] = TOPOLOGY,
    cpus: Optional[int] = typer.Option(None, "--cpus", help="Override the topology's vCPU count.",
                                       show_default="the topology's"),
    numa: Optional[int] = typer.Option(None, "--numa", help="Override the number of NUMA nodes.",
                                       show_default="the topology's"),
    memory: Optional[str] = typer.Option(None, "--memory", help="Override the memory size, e.g. 2G.",
                                         show_default="the topology's"),
    accel: str = ACCEL,
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds until SSH must answer.",
                                            show_default="boot_timeout of configs/boot.yaml"),
    shell: bool = typer.Option(False, "--shell", help="Open an interactive shell in the guest."),
    jobs: Optional[int] = JOBS,
    kconfig_add: Optional[list[str]] = KCONFIG_ADD,
    tree_path: Optional[Path] = TREE,
    no_sandbox: bool = NO_SANDBOX,
    lock_timeout: float = LOCK_WAIT,
    append: Optional[list[str]] = APPEND,
    ci: bool = CI,
) -> None:
    """Boot the built kernel (building it if needed) and check the guest's topology."""
    make = _make(jobs, kconfig_add)
    kernel_params = _kernel_params(append)
    _series_or_base(series, base)
    lay = layout()
    arches = config.select_arches(lay, arch)
    if shell and len(arches) > 1:
        raise UsageError(detail=f"--shell: opens one guest; give one arch, not --arch {arch}")
    topo = topology_mod.load_topologies(lay).get(topology).with_overrides(cpus, numa, memory)
    config.load_flavors(lay).get(flavor)
    _check_sandbox(no_sandbox)
    variant = prepare_mod.Variant(series=series, tree_path=tree_path, flavor=flavor, sandbox=not no_sandbox,
                                  lock_timeout=lock_timeout, jobs=make.jobs, kconfig_add=make.kconfig_add,
                                  append=kernel_params)
    with ui.Progress(plain=ci) as progress:
        for a in arches:  # one guest at a time: each is shut down before the next boots
            _boot_one(lay, variant, a, topo, accel, timeout, shell, progress)


def _boot_one(lay: config.Layout, variant: prepare_mod.Variant, a: config.Arch, topo: topology_mod.Topology,
              accel: str, timeout: float | None, shell: bool, progress: ui.Progress) -> None:
    result = prepare_mod.kernel(lay, variant, a, lay.cache / "logs")
    ui.info(f"kernel {result.request.label} {a.name}/{result.request.flavor.name}: "
            f"{'cached' if result.cached else 'built'} {result.image}")
    run_dir = lay.cache / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-boot-{a.name}"
    req = boot_mod.BootRequest(arch=a, topology=topo, build=result, run_dir=run_dir, accel=accel, timeout=timeout,
                               extra_cmdline=variant.append)
    ui.info(f"booting {result.request.label} ({a.name}/{result.request.flavor.name}) as {topo.name}: "
            f"{topo.cpus} vCPUs, {topo.nodes} node(s), {topo.memory_mb} MiB")
    with boot_mod.booted(lay, req) as (vm, conn, booted):
        ui.info(f"accelerator: {booted.accel.name} ({booted.accel.reason})")
        ui.info(f"SSH answered after {booted.seconds_to_ssh:.1f} s; topology matches {topo.name}: "
                f"{booted.topology['cpus']} CPUs, nodes {sorted(booted.topology['nodes'])}")
        ssh = conn.ssh_argv(run_dir / "keys" / "known_hosts")
        print("ssh: " + proc.quote(ssh))
        print(f"console: {booted.console}")
        if shell:
            with progress.paused():  # the terminal is the shell's
                proc.interactive(ssh)
        elif sys.stdin.isatty():
            ui.info("guest is up; press Ctrl-C to shut it down")
            while vm.alive():
                time.sleep(1)
    ui.info("guest shut down")


# ---------------------------------------------------------------- test and triage


@app.command("test", no_args_is_help=True,
             epilog="Example: wqci test --base --suite test_workqueue --param test_workqueue.wq_items=500")
@guarded
def test_cmd(
    series: Optional[str] = typer.Option(None, "--series", help="Test this series."),
    base: bool = typer.Option(False, "--base", help="Test the base tree."),
    range_: Optional[str] = RANGE,
    suite: Optional[list[str]] = typer.Option(None, "--suite", help="Suite to run (repeatable).", show_default="all"),
    arch: str = ARCHES,
    flavor: Optional[str] = FLAVOR,
    topology: Optional[str] = TOPOLOGY,
    repeat: Optional[int] = typer.Option(None, "--repeat", min=1, help="Run each suite N times.",
                                         show_default="repeats of configs/suites.yaml"),
    param: Optional[list[str]] = PARAM,
    suite_timeout: Optional[list[str]] = typer.Option(None, "--suite-timeout", help="SUITE=SECONDS override.",
                                                      show_default="timeout of configs/suites.yaml"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (DIR/<arch> for several arches).",
                                       show_default="out/test-<variant>-<arch>"),
    jobs: Optional[int] = JOBS,
    kconfig_add: Optional[list[str]] = KCONFIG_ADD,
    accel: str = ACCEL,
    tree_path: Optional[Path] = TREE,
    no_sandbox: bool = NO_SANDBOX,
    amplify: bool = typer.Option(False, "--amplify", help="Add the race-amplification carry patch "
                                 "(configs/amplify.yaml) and its boot parameters."),
    append: Optional[list[str]] = APPEND,
    lock_timeout: float = LOCK_WAIT,
    ci: bool = CI,
) -> None:
    """Boot the kernel, run the suites, triage the console; write JUnit and results.json."""
    make = _make(jobs, kconfig_add)
    kernel_params = _kernel_params(append)
    given = _given(series, base, range_, tree_path)
    lay, series = given.layout, given.series
    arches = config.select_arches(lay, arch)
    topo = topology_mod.load_topologies(lay).get(topology)
    suites = _select_suites(lay, suite, repeat, param, suite_timeout)
    label = series or "base"
    config.load_flavors(lay).get(flavor)  # a typo is an E: line now, not an empty JUnit later
    if series:
        config.load_series(lay, series)
    _check_sandbox(no_sandbox)
    variant = prepare_mod.Variant(series, tree_path, flavor, not no_sandbox, amplify=amplify, lock_timeout=lock_timeout,
                                  jobs=make.jobs, kconfig_add=make.kconfig_add, append=kernel_params)
    verdicts = []
    with ui.Progress(plain=ci) as progress:
        for a in arches:  # one after the other: one guest at a time
            out_dir = _arch_dir(out, Path("out") / f"test-{label}-{a.name}", a, len(arches))
            run = testrun.test_one(lay, variant, a, topo, suites, out_dir, accel, progress)
            _print_cases(run.suites[0])
            _print_rates(run.suites[0])
            print(f"junit: {out_dir / 'junit.xml'}")
            verdicts.append((verdict_mod.of_run(run), out_dir / "results.json"))
    worst_verdict, where = max(verdicts, key=lambda v: v[0].exit_code)
    _end_with(worst_verdict, label, where)


def _arch_dir(out: Path | None, default: Path, a: config.Arch, count: int) -> Path:
    """--out DIR as given for one arch, DIR/<arch> for several; else the command's default."""
    return ((out / a.name if count > 1 else out) if out else default).resolve()


def _select_suites(lay: config.Layout, names: list[str] | None, repeat: int | None,
                   params: list[str] | None, timeouts: list[str] | None = None) -> list:
    return suites_config.load_suites(lay).resolve(names, repeat, params, timeouts)


def _print_cases(suite: results_mod.SuiteResult) -> None:
    rows = []
    for case in suite.cases:
        metric = ""
        if "items_per_sec" in case.metrics:
            metric = f"{case.metrics['items_per_sec']:.0f} items/s p50={case.metrics['p50_ns']:.0f} ns"
        rows.append((case.name, case.status.value, f"{case.duration:.1f}", metric or case.message[:70]))
    print(ui.table(("case", "status", "seconds", "detail"), rows))


def _print_rates(suite: results_mod.SuiteResult) -> None:
    """For --repeat: how many runs of each case failed, and how many runs printed each finding,
    with a 95% bound on the rate."""
    found = rates_mod.repeated(suite.cases)
    if found:
        rows = [(r.name, f"{r.failed}/{r.runs}", r.bound, ", ".join(f"{k}={v:.0f}" for k, v in r.events()))
                for r in found]
        print(ui.table(("repeated case", "failed", "rate (95%)", "totals"), rows))
    printed = rates_mod.incidence(suite.findings, suite.cases).values()
    if printed:
        print(ui.table(("finding", "runs that printed it", "rate (95%)"),
                       [(r.name, f"{r.failed}/{r.runs}", r.bound) for r in printed]))


@app.command("triage", epilog="Example: dmesg | wqci triage - --known configs/known-findings.yaml")
@guarded
def triage_cmd(
    logfile: str = typer.Argument(..., help="A console log, dmesg, syslog or journal excerpt, as pasted (quoted or "
                                  "indented text is fine); gzip/xz/bzip2 files; - for stdin."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write the findings as JUnit to this file."),
    known: Optional[Path] = typer.Option(None, "--known", help="Findings this YAML lists (configs/known-findings.yaml "
                                         "format) are expected: reported, not counted."),
) -> None:
    """Find kernel reports (KCSAN, lockdep, WARN, stalls...) in a log. Exit 0: none, 1: findings, 2: unreadable."""
    if junit is not None and junit.is_dir():
        raise UsageError(detail=f"--junit {junit}: a directory; give the file to write, e.g. {junit / 'triage.xml'}")
    listed = triage_mod.load_known(known, None, must_exist=True) if known else ()
    findings = triage_mod.triage(logtext.read_log(logfile))
    new = 0
    for f in findings:
        reason = triage_mod.known_reason(f, listed)
        new += reason is None
        print(f"{f.kind:<16} {f.count}x  {f.title}  [{f.fingerprint}] ({f.where}, line {f.first_line})"
              + (f"  known: {reason}" if reason else ""))
    print(f"{len(findings)} finding(s)" + (f", {len(findings) - new} known" if listed else ""))
    if junit:
        name = "stdin" if logfile == "-" else Path(logfile).name
        run = results_mod.Run(name=f"wqci triage {name}")
        suite = results_mod.SuiteResult(name=f"triage/{name}", findings=list(findings))
        suite.add_findings(findings, listed)
        if not findings:
            suite.cases.append(results_mod.Case("triage", Status.PASS))
        run.suites.append(suite)
        results_mod.write_junit(run, junit)
    if new:
        raise typer.Exit(1)


# ---------------------------------------------------------------- run and report


@app.command("run", no_args_is_help=True,
             epilog="Example: wqci run --series fastwake-v1 -a x86_64,arm64 --repeat 3 -o out/fastwake")
@guarded
def run_cmd(
    series: Optional[str] = typer.Option(None, "--series", help="The series to validate."),
    range_: Optional[str] = RANGE,
    arch: str = ARCHES,
    flavor: Optional[str] = FLAVOR,
    topology: Optional[str] = TOPOLOGY,
    suite: Optional[list[str]] = typer.Option(None, "--suite", help="Suite to run (repeatable).",
                                              show_default="the suites whose paths in configs/suites.yaml the "
                                              "series changes"),
    repeat: str = typer.Option("auto", "--repeat", callback=_repeat, help="Interleaved baseline/patched pairs for "
                               "the A/B: N, or auto (until every scope's 95% CI is within --ab-target, or "
                               "--ab-budget runs out)."),
    ab_target: float = typer.Option(sampling_mod.DEFAULT_TARGET * 100, "--ab-target", min=0.1,
                                    help="--repeat auto: the CI half-width to reach in every scope, percent."),
    ab_budget: float = typer.Option(sampling_mod.DEFAULT_BUDGET, "--ab-budget", min=0,
                                    help="--repeat auto: seconds of A/B pairs at most (2 pairs always run)."),
    param: Optional[list[str]] = PARAM,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory.", show_default="out/run-<series>"),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also copy the JUnit file here."),
    max_regression: float = typer.Option(5.0, "--max-regression", help="Allowed throughput loss, percent."),
    perf_flavor: str = typer.Option("lockstat", "--perf-flavor", "--perf-flavour", help="Flavour for the A/B runs "
                                    "(throughput and lock_stat); 'none' compares on --flavor itself."),
    each_patch: bool = typer.Option(False, "--each-patch", help="Name the first patch of each new finding."),
    accel: str = ACCEL,
    tree_path: Optional[Path] = TREE,
    no_sandbox: bool = NO_SANDBOX,
    jobs: Optional[int] = JOBS,
    kconfig_add: Optional[list[str]] = KCONFIG_ADD,
    ci: bool = CI,
    confirm: int = typer.Option(abrun.DEFAULT_CONFIRM, "--confirm", min=0, help="At most N extra interleaved "
                                "baseline/patched pairs to confirm a finding seen on the patched kernel only."),
    strict: bool = typer.Option(False, "--strict", help="Unconfirmed findings fail the run too."),
    lock_timeout: float = LOCK_WAIT,
    append: Optional[list[str]] = APPEND,
) -> None:
    """The whole job: apply, build baseline and patched, boot both interleaved, suites, triage, A/B, report."""
    make = _make(jobs, kconfig_add)
    kernel_params = _kernel_params(append)
    given = _given(series, None, range_, tree_path)
    lay, series = given.layout, given.series
    s = config.load_series(lay, series)
    flavors = config.load_flavors(lay)
    ab_flavor = None if perf_flavor == "none" else perf_flavor
    for name in (flavor, ab_flavor) if ab_flavor else (flavor,):
        flavors.get(name)  # typos are E: lines before any build
    _check_sandbox(no_sandbox)
    suites = suites_config.load_suites(lay)
    names, skipped = (suite, {}) if suite else suites.by_paths(touched_mod.changed_paths(s.patch_paths()))
    req = abrun.RunRequest(
        series=series, arches=tuple(config.select_arches(lay, arch)), flavor=flavor,
        topology=topology_mod.load_topologies(lay).get(topology), suites=tuple(suites.resolve(names, None, param)),
        repeat=repeat, ab_target=ab_target / 100, ab_budget=ab_budget, out_dir=(out or Path("out") / f"run-{series}").resolve(),
        max_regression=max_regression / 100, perf_flavor=ab_flavor, each_patch=each_patch, tree_path=tree_path,
        accel=accel, sandbox=not no_sandbox, confirm=confirm, strict=strict, lock_timeout=lock_timeout,
        touches=_touches_of(s), onto=given.onto, range=given.range, skipped=skipped, jobs=make.jobs,
        kconfig_add=make.kconfig_add, append=kernel_params,
    )
    for name, why in skipped.items():
        ui.info(f"skipping {name}: {why}")
    with ui.Progress(plain=ci) as progress:
        run_result, outcomes = abrun.run(lay, req, progress)
    for o in outcomes:
        _print_ab(o, series)
        _print_classified(o)
    if junit:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_bytes((req.out_dir / "junit.xml").read_bytes())
    counts = run_result.counts()
    print(f"\n{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, {counts['skip']} skipped")
    for name in ("junit.xml", "results.json", "summary.md", "report.html", "reproduce.sh", "reply.txt", "kcidb.json"):
        print(f"{name}: {req.out_dir / name}")
    _end_with(verdict_mod.of_run(run_result), series, req.out_dir / "summary.md")


def _print_ab(o: abrun.ArchOutcome, series: str) -> None:
    """The throughput table, how its pairs were chosen, and the lock_stat table."""
    note = f"  [{o.label}]" if o.label else ""
    if o.comparison:
        runs = max(max(r.n_baseline, r.n_patched) for r in o.comparison)
        print(f"\n{o.arch}: test_workqueue, baseline vs {series}, geometric mean of up to {runs} run(s) each "
              f"({compare_mod.METHOD}){note}")
        print(ui.table(compare_mod.TABLE_HEADERS, compare_mod.table_rows(o.comparison)))
    if o.sampling:
        ui.info(f"{o.arch}: A/B {sampling_mod.describe(o.sampling)}")
    if o.locks:
        per = "per scope (one module load each)" if any(r.scope for r in o.locks) else "whole test_workqueue runs"
        print(f"\n{o.arch}: /proc/lock_stat per acquisition, baseline vs {series}, {per} "
              f"(Welch t on log values, Holm over the scopes of each class and metric){note}")
        shown = lockab.summary(o.locks)
        print(ui.table(lockab.TABLE_HEADERS, lockab.table_rows(shown)))
        if len(shown) < len(o.locks):
            ui.info(f"{o.arch}: {len(o.locks) - len(shown)} more lock_stat rows (the other classes scope by scope, "
                    "locks nobody waited for) in results.json and report.html")
    if o.latency:
        print(f"\n{o.arch}: test_workqueue enqueue latency per scope, baseline vs {series} "
              f"(Welch t on log ns, Holm over the scopes of each percentile){note}")
        print(ui.table(latency_mod.TABLE_HEADERS, latency_mod.table_rows(o.latency)))
    for line in o.latency_unmeasured:
        ui.info(f"{o.arch}: the seed's latency claim {line}")


def _touches_of(s: config.Series) -> Callable[[triage_mod.Finding], str]:
    changes = touched_mod.changes_of(s.patch_paths())
    return lambda f: touched_mod.describe(touched_mod.touches(f, changes))


def _print_classified(o: abrun.ArchOutcome) -> None:
    """Each finding with its class and evidence; the baseline's own findings last."""
    for c in o.classification.patched:
        first = f", first in {o.culprits[c.fingerprint]}" if c.fingerprint in o.culprits else ""
        touches = f"; {c.touches}" if c.touches else ""
        line = f"{c.cls.value.upper()} {c.finding.kind}: {c.finding.title} ({c.evidence.describe()}{first}{touches})"
        if c.cls is not FindingClass.UNCONFIRMED:
            print(f"{o.arch}: {line}")
        elif c.touches:  # louder: the series changed code on its stacks
            ui.warn(f"{o.arch}: {line} -- IN CODE THIS SERIES CHANGES; rerun with --confirm N or --strict")
        else:
            ui.warn(f"{o.arch}: {line}")
    for c in o.classification.baseline:
        print(f"{o.arch}: baseline {c.finding.kind}: {c.finding.title} (pre-existing: {c.evidence.describe()})")
    if o.confirm_rounds:
        ui.info(f"{o.arch}: {o.confirm_rounds} confirmation pair(s) in {o.confirm_seconds / 60:.1f} min")


def _end_with(verdict: verdict_mod.Verdict, name: str, summary: Path) -> None:
    """The verdict's last lines and its exit code."""
    if verdict.status is Status.PASS:
        ui.info(f"{name}: pass" + (f" ({len(verdict.warnings)} unconfirmed finding(s), see above)"
                                   if verdict.warnings else ""))
        return
    for reason in verdict.reasons[:10]:
        print(f"  {reason[:200]}", file=sys.stderr)
    ui.error(f"{name}: {verdict.status.value} (see {summary})")
    raise typer.Exit(verdict.exit_code)


@app.command("noise", no_args_is_help=True, epilog="Example: wqci noise --base --boots 5 --suite test_workqueue")
@guarded
def noise_cmd(
    base: bool = typer.Option(False, "--base", help="The base kernel (required: the noise of a base tree)."),
    boots: int = typer.Option(0, "--boots", min=0, help="Boot the base N more times first (each adds to the history)."),
    arch: str = ARCHES,
    flavor: Optional[str] = FLAVOR,
    topology: Optional[str] = TOPOLOGY,
    suite: Optional[list[str]] = typer.Option(None, "--suite", help="Suite to run per boot (repeatable).",
                                              show_default="all"),
    param: Optional[list[str]] = PARAM,
    write_known: Optional[Path] = typer.Option(None, "--write-known", help="Add the findings, with their evidence, "
                                               "to this known-findings YAML file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where the boots' consoles go (DIR/<arch> for "
                                       "several arches).", show_default="runs/noise-<arch> in the cache"),
    jobs: Optional[int] = JOBS,
    kconfig_add: Optional[list[str]] = KCONFIG_ADD,
    accel: str = ACCEL,
    tree_path: Optional[Path] = TREE,
    no_sandbox: bool = NO_SANDBOX,
    ci: bool = CI,
) -> None:
    """Each finding of the base kernel's history, with its rate and exact 95% bound."""
    make = _make(jobs, kconfig_add)
    if not base:
        raise UsageError(detail="--base: wqci noise measures the base kernel; give --base")
    lay = layout()
    arches = config.select_arches(lay, arch)
    topo = topology_mod.load_topologies(lay).get(topology)
    suites = tuple(_select_suites(lay, suite, None, param))
    config.load_flavors(lay).get(flavor)
    if boots:
        _check_sandbox(no_sandbox)
    with ui.Progress(plain=ci) as progress:
        for a in arches:
            req = noise_mod.NoiseRequest(arch=a, topology=topo, flavor=flavor, suites=suites, boots=boots,
                                         out_dir=_arch_dir(out, lay.cache / "runs" / f"noise-{a.name}", a,
                                                           len(arches)),
                                         accel=accel, sandbox=not no_sandbox, tree_path=tree_path, jobs=make.jobs,
                                         kconfig_add=make.kconfig_add)
            _noise_one(lay, req, write_known, progress)


def _noise_one(lay: config.Layout, req: noise_mod.NoiseRequest, write_known: Path | None,
               progress: ui.Progress) -> None:
    result = noise_mod.noise(lay, req, progress)
    print(f"{result.key.describe()}: {result.boots} boot(s) in the history")
    print(ui.table(("finding", "where", "seen", "rate (95%)", "fingerprint"),
                   [(f"{r.sighting.kind}: {r.sighting.title}", r.sighting.where, f"{r.seen} of {r.boots}", r.bound,
                     r.sighting.fingerprint) for r in result.rows]))
    if write_known:
        added = noise_mod.write_known(write_known, result)
        ui.info(f"{write_known}: {added} new entr{'y' if added == 1 else 'ies'} under {result.tree}")


@app.command("report", epilog="Example: wqci report out/run-fastwake-v1")
@guarded
def report_cmd(run_dir: Path = typer.Argument(..., help="A directory written by wqci run.")) -> None:
    """(Re)write summary.md, report.html and the throughput plot of a run directory."""
    md, page = report_mod.write(run_dir)
    print(f"summary: {md}\nreport:  {page}")


# ---------------------------------------------------------------- bisect


@app.command("bisect", no_args_is_help=True, epilog="Example: wqci bisect --series wake-prefer --build-fails -j 8")
@guarded
def bisect_cmd(
    series: Optional[str] = typer.Option(None, "--series", help="Find the first bad patch of this series."),
    tree_path: Optional[Path] = typer.Option(None, "--tree", help="Bisect a range of this git checkout instead."),
    good: Optional[str] = typer.Option(None, "--good", help="With --tree: a good revision."),
    bad: Optional[str] = typer.Option(None, "--bad", help="With --tree: a bad revision."),
    range_: Optional[str] = typer.Option(None, "--range", help="With --tree: the commits BASE..HEAD, BASE the good end "
                                         "(instead of --good/--bad)."),
    build_fails: bool = typer.Option(False, "--build-fails", help="Bad: the build fails."),
    finding: Optional[str] = typer.Option(None, "--finding", help="Bad: a finding whose fingerprint is this, or "
                                          "whose 'kind: title' matches this regex, appears."),
    suite_fails: Optional[str] = typer.Option(None, "--suite-fails", help="Bad: this suite fails."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Bad: SUITE.CASE.METRIC drops below the good end."),
    threshold: str = typer.Option("5%", "--threshold", help="Allowed drop for --metric."),
    suite: Optional[list[str]] = typer.Option(None, "--suite", help="Suites to run per step (guest predicates).",
                                              show_default="the suite the predicate names"),
    param: Optional[list[str]] = PARAM,
    repeat: int = typer.Option(1, "--repeat", min=1, help="Runs per step: bad if any run is bad, good if all pass."),
    arch: str = ARCHES,
    flavor: Optional[str] = FLAVOR,
    topology: Optional[str] = TOPOLOGY,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (DIR/<arch> for several arches).",
                                       show_default="out/bisect-<name>"),
    jobs: Optional[int] = JOBS,
    kconfig_add: Optional[list[str]] = KCONFIG_ADD,
    no_sandbox: bool = NO_SANDBOX,
    ci: bool = CI,
) -> None:
    """Find the first patch (or commit) where a predicate turns bad; every step is an incremental build."""
    make = _make(jobs, kconfig_add)
    lay = layout()
    if range_ is not None:
        good, bad = _range_ends(range_, series, tree_path, good, bad)
    predicate = bisect_mod.parse_predicate(build_fails, finding, suite_fails, metric, threshold)
    arches = config.select_arches(lay, arch)
    reqs = [bisect_steps.BisectRequest(
        predicate=predicate, arch=a, flavor=config.load_flavors(lay).get(flavor),
        topology=topology_mod.load_topologies(lay).get(topology),
        suites=bisect_steps.suites_for(lay, predicate, suite, param), series=series, tree_path=tree_path, good=good,
        bad=bad, repeat=repeat, sandbox=not no_sandbox, out_dir=_bisect_dir(out, series, tree_path, a, len(arches)),
        jobs=make.jobs, kconfig_add=make.kconfig_add)
        for a in arches]
    _check_sandbox(no_sandbox)
    with ui.Progress(plain=ci) as progress:
        found = [_bisect_one(lay, req, len(arches) > 1, progress) for req in reqs]
    if not all(found):
        raise typer.Exit(1)


def _range_ends(range_: str, series: str | None, tree_path: Path | None, good: str | None,
                bad: str | None) -> tuple[str, str]:
    """bisect --tree PATH --range BASE..HEAD: the range's commits, BASE the good end, HEAD the bad."""
    if series or good or bad:
        raise UsageError(detail=f"--range {range_}: give it instead of --series, --good and --bad")
    if tree_path is None:
        raise UsageError(detail=f"--range {range_}: give --tree PATH, the checkout the range is in")
    rng = branch.resolve(tree_path, range_)
    return rng.base, rng.head


def _bisect_dir(out: Path | None, series: str | None, tree_path: Path | None, a: config.Arch,
                count: int) -> Path | None:
    """Several arches bisect into a directory each (the default is bisect_steps')."""
    if count == 1:
        return out
    return (out or Path("out") / f"bisect-{series or (tree_path.name if tree_path else 'tree')}") / a.name


def _bisect_one(lay: config.Layout, req: bisect_steps.BisectRequest, named: bool, progress: ui.Progress) -> bool:
    """One arch's bisect and its culprit; False when it found none."""
    prefix = f"{req.arch.name}: " if named else ""
    outcome = bisect_steps.run_bisect(lay, req, progress)
    print(f"{prefix}{len(outcome.result.steps)} step(s); junit: {outcome.junit}")
    if outcome.culprit is None:
        ui.error(prefix + outcome.result.message)
        return False
    label, commit = outcome.result.culprit
    print(f"{prefix}culprit: {label} {commit}\nevidence:\n{outcome.culprit.evidence[:3000]}")
    return True


# ---------------------------------------------------------------- nightly

nightly_app = typer.Typer(
    help="The nightly matrix (see configs/nightly.yaml): run every cell of the matrix (or of one shard), a wqci run "
    "per series cell and a wqci test per base cell. A night takes hours, so nothing starts without --matrix FILE: "
    "a bare `wqci nightly` shows this help, other options without --matrix are a usage error (exit 2 for both).",
    short_help="The nightly matrix (see configs/nightly.yaml).", invoke_without_command=True, no_args_is_help=True,
    epilog="Example: wqci nightly --matrix configs/nightly.yaml --shard 1/2 -o out/s1")
app.add_typer(nightly_app, name="nightly")


@nightly_app.callback()
@guarded
def nightly_cmd(
    ctx: typer.Context,
    matrix: Optional[Path] = typer.Option(None, "--matrix", help="The matrix YAML, e.g. configs/nightly.yaml "
                                          "(required: nothing runs without it)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Run only shard I/N of the matrix.",
                                        show_default="the whole matrix"),
    out: Path = typer.Option(Path("out/nightly"), "--out", "-o", help="Output directory."),
    previous: Optional[Path] = typer.Option(None, "--previous", help="Last night's output, to compare with."),
    list_only: bool = typer.Option(False, "--list", help="Print this shard's cells and stop."),
    jobs: Optional[int] = JOBS,
    no_sandbox: bool = NO_SANDBOX,
    ci: bool = CI,
) -> None:
    """Run every cell of the matrix (or of one shard); nothing without --matrix (see the group's help)."""
    if ctx.invoked_subcommand:
        return
    if matrix is None:
        raise UsageError(detail="--matrix FILE: wqci nightly runs only the matrix it is given, "
                         "e.g. --matrix configs/nightly.yaml")
    req = nightly_mod.NightlyRequest(matrix=matrix, out_dir=out.resolve(), shard=nightly_mod.parse_shard(shard),
                                     sandbox=not no_sandbox, jobs=jobs or default_jobs())
    if list_only:
        for cell in nightly_mod.plan(req)[1]:
            print(cell.id)
        return
    with ui.Progress(plain=ci) as progress:
        night = nightly_mod.nightly(layout(), req, progress)
    _print_merged(night.rows, night.junit, previous)
    if not night.ok:
        raise typer.Exit(1)


@nightly_app.command("merge", epilog="Example: wqci nightly merge out/s1 out/s2 -o out/nightly-merged")
@guarded
def nightly_merge(
    directories: list[Path] = typer.Argument(..., help="Shard output directories."),
    out: Path = typer.Option(Path("out/nightly-merged"), "--out", "-o", help="Where the merged JUnit goes."),
    previous: Optional[Path] = typer.Option(None, "--previous", help="Last night's merged output."),
) -> None:
    """Combine the shards' outputs into one JUnit and one summary."""
    path, rows = nightly_mod.merge([d.resolve() for d in directories], out.resolve())
    _print_merged(rows, path, previous)
    if any(r["status"] != "pass" for r in rows):
        raise typer.Exit(1)


def _print_merged(rows: list[dict], junit: Path, previous: Path | None) -> None:
    """The cells' table, the merged JUnit, and what changed since the previous night."""
    print(nightly_mod.summary(rows))
    print(f"junit: {junit}")
    if previous:
        for key, items in nightly_mod.diff_previous(rows, previous).items():
            print(f"{key.replace('_', ' ')}: {len(items)}")
            for item in items:
                print(f"  {item}")


# ---------------------------------------------------------------- entry point


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_guarded(func: Callable[[], None]) -> None:
    """Run one command body; WqciError becomes one `E:` line and its exit code."""
    try:
        func()
    except WqciError as exc:
        if _state["debug"]:
            traceback.print_exc()
        ui.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        report = exc.fields.get("report")
        if report:
            # The first line of the report is already in the E: line.
            print("\n".join(str(report).splitlines()[1:]), file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        ui.error("interrupted")
        raise typer.Exit(130) from None
    except BrokenPipeError:  # the reader went away (`wqci triage log | head`): end quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(128 + signal.SIGPIPE) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug of wqci's, never a verdict: exit 2, the traceback with --debug
        if _state["debug"]:
            traceback.print_exc()
        where = traceback.extract_tb(exc.__traceback__)[-1]
        ui.error(f"internal error: {type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno}; "
                 f"--debug shows the traceback)")
        raise typer.Exit(EXIT_INFRA) from None


def main() -> None:
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so children are reaped.
    signal.signal(signal.SIGTERM, _terminate)
    # SIGINT too, even when it came in ignored: a shell without job control starts `cmd &` so,
    # and Python then leaves it ignored, so `kill -INT` (or a runner's stop) would be lost.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = app(standalone_mode=False)
    except click_exc.NoArgsIsHelpError as exc:  # a bare command that needs arguments: its help
        exc.show()
        code = 2
    except click_exc.UsageError as exc:  # a wrong flag or value: one E: line, like every other user error
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        ui.error(" ".join(exc.format_message().split()) + hint)
        code = 2
    except click_exc.ClickException as exc:
        ui.error(" ".join(exc.format_message().split()))
        code = exc.exit_code
    except typer.Abort:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
