"""The Typer app: the only place that prints verdicts and picks exit codes."""

from __future__ import annotations

import functools
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import typer

from pipeline import boot as boot_mod, build as build_mod, config, mbox, proc, sandbox, series as series_mod
from pipeline import topology as topology_mod, tree as trees, ui
from pipeline.result import Status
from pipeline.errors import BuildFailed, WqciError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
series_app = typer.Typer(no_args_is_help=True, help="The series in patches/.")
tree_app = typer.Typer(no_args_is_help=True, help="Base kernel trees.")
app.add_typer(series_app, name="series")
app.add_typer(tree_app, name="tree")

_state = {"debug": False}


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Echo every command as `$ cmd`."),
) -> None:
    """wqci: validate mailed Linux kernel patch series."""
    _state["debug"] = debug
    ui.setup_logging(verbose or debug)


def guarded(func: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> None:
        run_guarded(lambda: func(*args, **kwargs))

    return wrapper


def layout() -> config.Layout:
    return config.Layout()


def log_file(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return layout().cache / "logs" / f"{stamp}-{name}.log"


# ---------------------------------------------------------------- series


@series_app.command("list")
@guarded
def series_list() -> None:
    """Name, patches, base and title of every series."""
    lay = layout()
    rows = []
    for name in config.series_names(lay):
        s = config.load_series(lay, name)
        rows.append((s.name, len(s.patches), s.base, s.title))
    print(ui.table(("series", "patches", "base", "title"), rows))


@series_app.command("show")
@guarded
def series_show(name: str) -> None:
    """Subjects, authors, files and diffstat of one series."""
    lay = layout()
    s = config.load_series(lay, name)
    print(f"{s.name} v{s.version}: {s.title}")
    print(f"  author: {s.author}   date: {s.date}   base: {s.base}")
    for link in s.links:
        print(f"  link:   {link}")
    if s.description:
        print("\n" + "\n".join("  " + ln for ln in s.description.splitlines()))
    print()
    for i, p in enumerate(s.patches, 1):
        print(f"  [{i}/{len(s.patches)}] {p.subject}")
        print(f"        {p.file}")
    for claim in s.claims:
        print(f"\n  claim:   {claim.claim}\n  measure: {claim.measure}")
    print("\n" + series_mod.diffstat(lay, s))


@series_app.command("import")
@guarded
def series_import(
    file: Path = typer.Argument(..., help="An mbox file or a maildir."),
    name: str = typer.Option(..., "--name", help="Name of the new series (directory under patches/)."),
    base: Optional[str] = typer.Option(None, "--base", help="Base tree name (default: the default tree)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing series of that name."),
) -> None:
    """Import a mailed series into patches/NAME/."""
    lay = layout()
    base_name = config.load_trees(lay).get(base).name
    done = mbox.import_series(file, name, lay.patches, base=base_name, force=force)
    ui.info(f"imported {len(done.patches)} patches (v{done.version}) into {done.directory}, "
            f"skipped {done.skipped} other messages")
    for p in done.patches:
        print(f"  {p}")


# ---------------------------------------------------------------- trees


@tree_app.command("fetch")
@guarded
def tree_fetch(name: Optional[str] = typer.Argument(None, help="Tree name from configs/trees.yaml.")) -> None:
    """Download, verify and unpack a base tree into the cache (once)."""
    lay = layout()
    tree = config.load_trees(lay).get(name)
    started = time.monotonic()
    info = trees.fetch(lay, tree, log_path=log_file(f"fetch-{tree.name}"))
    ui.info(f"tree {tree.name}: {info.repo} at {info.commit[:12]} ({tree.tag}) in {time.monotonic() - started:.1f} s")


@tree_app.command("show")
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


@app.command("apply")
@guarded
def apply_cmd(
    series: str = typer.Option(..., "--series", help="Series name (see `wqci series list`)."),
    tree_path: Optional[Path] = typer.Option(None, "--tree", help="Use this git checkout instead of the base tree."),
    onto: Optional[str] = typer.Option(None, "--onto", help="Apply onto this revision instead of the base."),
) -> None:
    """Apply a series in a worktree under the cache, one commit per patch."""
    lay = layout()
    s = config.load_series(lay, series)
    tree = config.load_trees(lay).get(s.base)
    log = log_file(f"apply-{s.name}")
    info = trees.resolve(lay, tree, tree_path, onto, log_path=log)
    result = series_mod.apply(lay, s, info, log_path=log)
    ui.info(f"applied {s.name} ({len(result.patches)} patches) onto {info.name} {result.base[:12]}")
    print(f"worktree: {result.worktree}")
    for p in result.patches:
        print(f"  {p.commit[:12]} [{p.number}/{p.total}] {p.ref.subject}")


# ---------------------------------------------------------------- build


@app.command("build")
@guarded
def build_cmd(
    series: Optional[str] = typer.Option(None, "--series", help="Build this series (applied on its base)."),
    base: bool = typer.Option(False, "--base", help="Build the base tree without patches."),
    arch: str = typer.Option("x86_64", "--arch", help="x86_64, arm64, a comma list, or all."),
    flavor: Optional[str] = typer.Option(None, "--flavor", help="Kernel flavour (configs/flavors.yaml)."),
    each_patch: bool = typer.Option(False, "--each-patch", help="Build every patch; name the first that breaks."),
    tree_path: Optional[Path] = typer.Option(None, "--tree", help="Use this git checkout instead of the base tree."),
    no_ccache: bool = typer.Option(False, "--no-ccache", help="Compile without ccache."),
    no_sandbox: bool = typer.Option(False, "--no-sandbox", help="Run make without bubblewrap."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when nothing changed."),
) -> None:
    """Build image and modules for each arch into the slot's persistent build directory."""
    if bool(series) == base:
        raise typer.BadParameter("give exactly one of --series NAME or --base")
    lay = layout()
    flavors = config.load_flavors(lay)
    flav = flavors.get(flavor)
    arches = config.select_arches(lay, arch)
    why_not = sandbox.require(not no_sandbox)
    if why_not:
        ui.warn(why_not)
    info, commits, base_name = _resolve_variant(lay, series, tree_path)
    failed = []
    for a in arches:
        req = build_mod.BuildRequest(tree=info, arch=a, flavor=flav, commit=info.commit, label="base",
                                     series=base_name, ccache=not no_ccache, sandbox=not no_sandbox)
        ui.info(f"building {base_name} for {a.name}/{flav.name} in {build_mod.slot_for(lay, info, a, flav).root}")
        verdict = build_mod.build_series(lay, req, commits, each_patch)
        for r in verdict.results:
            state = "cached" if r.cached else r.status.value
            ui.info(f"  {r.request.label:<24} {a.name:<7} {state:<6} {r.compiled:>5} objects "
                    f"{r.duration:7.1f} s  {r.out}")
        if verdict.ok:
            ui.info(verdict.message)
        else:
            failed.append(verdict)
            ui.error(verdict.message)
            for line in verdict.results[-1 if 'base tree' in verdict.message else 0].errors[:5]:
                print(f"  {line}", file=sys.stderr)
            print(f"  log: {verdict.results[0].log}", file=sys.stderr)
    if failed:
        raise typer.Exit(1)


def _resolve_variant(lay: config.Layout, series: str | None, tree_path: Path | None):
    """The tree and, for a series, its applied (label, commit) pairs."""
    if series is None:
        tree = config.load_trees(lay).get(None)
        return trees.resolve(lay, tree, tree_path, None), [], "base"
    s = config.load_series(lay, series)
    tree = config.load_trees(lay).get(s.base)
    log = log_file(f"apply-{s.name}")
    info = trees.resolve(lay, tree, tree_path, None, log_path=log)
    applied = series_mod.apply(lay, s, info, log_path=log)
    commits = [(f"{s.name} {p.number}/{p.total}", p.commit) for p in applied.patches]
    return info, commits, s.name


# ---------------------------------------------------------------- boot


@app.command("boot")
@guarded
def boot_cmd(
    series: Optional[str] = typer.Option(None, "--series", help="Boot this series' kernel."),
    base: bool = typer.Option(False, "--base", help="Boot the base tree's kernel."),
    arch: str = typer.Option("x86_64", "--arch", help="x86_64 or arm64."),
    flavor: Optional[str] = typer.Option(None, "--flavor", help="Kernel flavour (configs/flavors.yaml)."),
    topology: Optional[str] = typer.Option(None, "--topology", help="Guest layout (configs/topologies.yaml)."),
    cpus: Optional[int] = typer.Option(None, "--cpus", help="Override the topology's vCPU count."),
    numa: Optional[int] = typer.Option(None, "--numa", help="Override the number of NUMA nodes."),
    memory: Optional[str] = typer.Option(None, "--memory", help="Override the memory size, e.g. 2G."),
    accel: str = typer.Option("auto", "--accel", help="auto (KVM only if a real probe works), kvm or tcg."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds until SSH must answer."),
    shell: bool = typer.Option(False, "--shell", help="Open an interactive shell in the guest."),
    tree_path: Optional[Path] = typer.Option(None, "--tree", help="Use this git checkout instead of the base tree."),
    no_sandbox: bool = typer.Option(False, "--no-sandbox", help="Run make without bubblewrap."),
) -> None:
    """Boot the built kernel (building it if needed) and check the guest's topology."""
    if bool(series) == base:
        raise typer.BadParameter("give exactly one of --series NAME or --base")
    lay = layout()
    a = config.load_arch(lay, arch)
    topo = topology_mod.load_topologies(lay).get(topology).with_overrides(cpus, numa, memory)
    result = _build_one(lay, series, a, flavor, tree_path, no_sandbox)
    run_dir = lay.cache / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-boot-{a.name}"
    req = boot_mod.BootRequest(arch=a, topology=topo, build=result, run_dir=run_dir, accel=accel, timeout=timeout)
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
            proc.interactive(ssh)
        elif sys.stdin.isatty():
            ui.info("guest is up; press Ctrl-C to shut it down")
            while vm.alive():
                time.sleep(1)
    ui.info("guest shut down")


def _build_one(lay: config.Layout, series: str | None, arch: config.Arch, flavor: str | None,
               tree_path: Path | None, no_sandbox: bool) -> build_mod.BuildResult:
    """The kernel for one variant: cached when built before, else built now."""
    flav = config.load_flavors(lay).get(flavor)
    why_not = sandbox.require(not no_sandbox)
    if why_not:
        ui.warn(why_not)
    info, commits, name = _resolve_variant(lay, series, tree_path)
    label, commit = commits[-1] if commits else ("base", info.commit)
    req = build_mod.BuildRequest(tree=info, arch=arch, flavor=flav, commit=commit, label=label, series=name,
                                 patches=tuple(c for _, c in commits), sandbox=not no_sandbox)
    result = build_mod.build(lay, req)
    if result.status is not Status.PASS:
        raise BuildFailed(detail=f"{label} does not build ({arch.name}/{flav.name}): "
                          f"{build_mod.first_errors(result)}; log: {result.log}")
    ui.info(f"kernel {label} {arch.name}/{flav.name}: {'cached' if result.cached else 'built'} {result.image}")
    return result


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


def main() -> None:
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so children are reaped.
    signal.signal(signal.SIGTERM, _terminate)
    app()
