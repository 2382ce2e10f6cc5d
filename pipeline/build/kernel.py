"""Kernel builds in persistent slots, one per (tree, arch, flavour).

A slot holds a git worktree of the tree and a build directory (O=). Moving the
slot between the baseline and a patched commit is a `git checkout` inside that
worktree, so unchanged files keep their mtimes and make rebuilds only what the
patches touched. ccache sits under the wqci cache and is shared by all slots.
Each finished build copies its artifacts to slot/out/<commit>/ with build.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ContextManager, Sequence

from pipeline import proc
from pipeline.proc import LineSink
from pipeline.build import estimate
from pipeline.build import kconfig
from pipeline.build import sandbox
from pipeline.build import slotlock
from pipeline.intake import tree as trees
from pipeline.config import Arch, Flavor, Layout
from pipeline.model import progress
from pipeline.model.errors import CommandFailed, CommandTimeout, MissingTool
from pipeline.model.status import Status

ERROR_RE = re.compile(r"^(?P<loc>[^\s:]+:\d+(?::\d+)?): (?:fatal )?error: (?P<msg>.*)$", re.M)
COMPILE_RE = re.compile(r"^\s+CC \[?M?\]?\s+(\S+\.o)$", re.M)
BUILD_TIMEOUT = 3 * 3600
LOCK_TIMEOUT = 7200.0  # default --lock-timeout


def default_jobs() -> int:
    """make -j without -j/--jobs: one job per CPU."""
    return os.cpu_count() or 1


@dataclass(frozen=True)
class BuildRequest:
    tree: trees.TreeInfo
    arch: Arch
    flavor: Flavor
    commit: str
    label: str  # "base", "fastwake-v1", "fastwake-v1 2/2"
    series: str = ""
    patches: tuple[str, ...] = ()  # the series' patch commits up to `commit`
    ccache: bool = True
    sandbox: bool = True
    ccache_remote: str = ""  # ccache's remote_storage: the shards of a nightly share one cache
    jobs: int = field(default_factory=default_jobs)  # make -j (-j/--jobs)
    lock_timeout: float = LOCK_TIMEOUT  # seconds to wait for another wqci's build in the same slot
    kconfig_add: tuple[str, ...] = ()  # -K CONFIG_X=VALUE options, merged after the fragments


@dataclass(frozen=True)
class BuildResult:
    request: BuildRequest
    status: Status
    duration: float
    log: Path
    out: Path
    config_hash: str = ""
    cached: bool = False
    compiled: int = 0  # objects compiled by this build (0 when cached)
    errors: tuple[str, ...] = ()
    artifacts: dict[str, Path] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def image(self) -> Path:
        return self.artifacts["image"]


@dataclass(frozen=True)
class Slot:
    root: Path

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def out(self, commit: str, kconfig_add: Sequence[str] = ()) -> Path:
        """A build's artifacts: out/<commit>, out/<commit>-K<hash> with -K options (so that
        builds of a commit with and without them do not replace each other)."""
        name = commit[:12]
        if kconfig_add:
            name += "-K" + hashlib.sha256("\n".join(kconfig_add).encode()).hexdigest()[:8]
        return self.root / "out" / name


def slot_for(layout: Layout, info: trees.TreeInfo, arch: Arch, flavor: Flavor) -> Slot:
    return Slot(layout.cache / "slots" / f"{info.key}-{arch.name}-{flavor.name}")


def checkout(info: trees.TreeInfo, slot: Slot, commit: str, log_path: Path) -> None:
    """Put the slot's worktree at commit; files that do not change keep their mtimes."""
    if (slot.src / ".git").exists():
        trees.git(slot.src, "checkout", "-q", "-f", "--detach", commit, log_path=log_path, timeout=600)
    else:
        trees.worktree(info, slot.src, commit, log_path=log_path)


def compiler(arch: Arch) -> str:
    return f"{arch.cross_compile}gcc"


def check_tools(arch: Arch, ccache: bool) -> None:
    if shutil.which(compiler(arch)) is None:
        package = "gcc-aarch64-linux-gnu" if arch.cross_compile.startswith("aarch64") else "gcc"
        raise MissingTool(tool=compiler(arch), hint=f"Debian package {package}; run `make deps`")
    if ccache and shutil.which("ccache") is None:
        raise MissingTool(tool="ccache", hint="Debian package ccache, or pass --no-ccache")
    for tool in ("make", "flex", "bison", "bc", "lz4"):
        if shutil.which(tool) is None:
            raise MissingTool(tool=tool, hint="run `make deps`")


def make_env(layout: Layout, req: BuildRequest) -> dict[str, str]:
    env = {
        "ARCH": req.arch.arch,
        "CROSS_COMPILE": req.arch.cross_compile,
        # Reproducible version strings: the same commit gives the same image.
        "KBUILD_BUILD_TIMESTAMP": "1970-01-01",
        "KBUILD_BUILD_USER": "wqci",
        "KBUILD_BUILD_HOST": "wqci",
        "LC_ALL": "C",
    }
    if req.ccache:
        env.update(
            CCACHE_DIR=str(ccache_dir(layout)),
            # Paths relative to the slots root, and no cwd in the hash, so a fresh
            # slot (or another arch's slot with the same sources) hits the cache.
            CCACHE_BASEDIR=str(layout.cache / "slots"),
            CCACHE_NOHASHDIR="1",
            # Depend mode: on a miss, hash the headers the compiler's -MMD file lists instead of
            # running the preprocessor a second time. Cold builds: +13 % over plain gcc, not +40 %.
            CCACHE_DEPEND="1",
            CCACHE_SLOPPINESS="include_file_mtime,include_file_ctime,time_macros,locale",
            CCACHE_MAXSIZE=os.environ.get("CCACHE_MAXSIZE", "8G"),
        )
        if req.ccache_remote:
            env["CCACHE_REMOTE_STORAGE"] = req.ccache_remote
    return env


def ccache_dir(layout: Layout) -> Path:
    return Path(os.environ.get("WQCI_CCACHE_DIR", layout.cache / "ccache"))


def make_vars(req: BuildRequest) -> list[str]:
    # The same CC for configure and build, or kconfig sees a new compiler.
    return [f"CC=ccache {compiler(req.arch)}"] if req.ccache else []


class Runner:
    """Runs make and the tree's scripts for one build: env, sandbox, log."""

    def __init__(self, layout: Layout, req: BuildRequest, slot: Slot, log_path: Path,
                 writable: Sequence[Path], on_line: LineSink | None = None) -> None:
        self.env = {**make_env(layout, req), "TMPDIR": str(slot.tmp)}
        self.vars = make_vars(req)
        self.prefix = sandbox.bwrap_argv(writable, slot.src) if req.sandbox else []
        self.cwd = slot.src
        self.log_path = log_path
        self.on_line = on_line

    def __call__(self, argv: Sequence[str], timeout: float = 600, on_line: LineSink | None = None) -> proc.Completed:
        argv = list(argv)
        if argv[0] == "make":
            argv = [argv[0], *self.vars, *argv[1:]]
        return proc.run([*self.prefix, *argv], cwd=self.cwd, env=self.env, log_path=self.log_path,
                        on_line=_tee(self.on_line, on_line), timeout=timeout, merge_stderr=True)


def _tee(*sinks: LineSink | None) -> LineSink | None:
    """One sink that feeds each line to every given one."""
    given = [sink for sink in sinks if sink is not None]
    if len(given) < 2:
        return given[0] if given else None

    def each(line: str) -> None:
        for sink in given:
            sink(line)

    return each


def toolchain(arch: Arch) -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        done = proc.run(argv, check=False)
        return (done.stdout or done.stderr).splitlines()[0] if done.returncode == 0 else "missing"

    return {
        "cc": first_line([compiler(arch), "--version"]),
        "ld": first_line([f"{arch.cross_compile}ld", "--version"]),
        "make": first_line(["make", "--version"]),
    }


def ccache_stats(layout: Layout, enabled: bool) -> dict[str, int]:
    if not enabled:
        return {}
    done = proc.run(["ccache", "--print-stats"], env={"CCACHE_DIR": str(ccache_dir(layout))}, check=False)
    stats = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            stats[key] = int(value)
    return stats


def ccache_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    keys = ("direct_cache_hit", "preprocessed_cache_hit", "cache_miss")
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in keys if k in after}
    if delta:
        delta["hits"] = delta.get("direct_cache_hit", 0) + delta.get("preprocessed_cache_hit", 0)
    return delta


def cache_key(req: BuildRequest, config_hash: str, tools: dict[str, str]) -> dict:
    """Everything that decides the artifacts; equal keys mean the build can be skipped."""
    key = {
        "tree": req.tree.name, "tree_commit": req.tree.commit, "commit": req.commit,
        "patches": list(req.patches), "arch": req.arch.name, "flavor": req.flavor.name,
        "config_hash": config_hash, "toolchain": tools,
    }
    if req.kconfig_add:  # only then, so that the builds cached before -K existed stay cached
        key["kconfig_add"] = list(req.kconfig_add)
    return key


def cached(out: Path, key: dict) -> dict | None:
    try:
        info = json.loads((out / "build.json").read_text())
    except (OSError, ValueError):
        return None
    if info.get("result") != "pass" or info.get("key") != key:
        return None
    if not all(Path(p).exists() for p in info.get("artifacts", {}).values()):
        return None
    return info


def build(layout: Layout, req: BuildRequest, on_line: LineSink | None = None,
          force: bool = False) -> BuildResult:
    """Configure, verify and build req.commit in its slot; skip when nothing changed.
    The slot has one writer at a time (build/slotlock.py)."""
    check_tools(req.arch, req.ccache)
    slot = slot_for(layout, req.tree, req.arch, req.flavor)
    with slotlock.held(slot.root / "lock", req.lock_timeout):
        return _build_locked(layout, req, slot, on_line, force)


def _repair(slot: Slot, log_path: Path) -> None:
    """A slot left by a killed wqci: a stale git index lock goes (we hold the slot's
    lock, so nobody else is in it). A make cut short needs nothing: Kbuild rebuilds
    every object whose .cmd file is missing, and those are written last."""
    marker = slot.root / "building"
    if marker.exists():
        slot_lock_notice(f"{slot.root}: the last build here was cut short ({marker.read_text().strip()}); "
                         "continuing from its state")
        marker.unlink()
    if (slot.src / ".git").exists():
        index_lock = Path(trees.git(slot.src, "rev-parse", "--git-path", "index.lock", check=False).stdout.strip())
        index_lock = index_lock if index_lock.is_absolute() else slot.src / index_lock
        if index_lock.exists():
            slot_lock_notice(f"{slot.root}: removing a stale {index_lock.name} left by a killed checkout")
            index_lock.unlink()


def slot_lock_notice(text: str) -> None:
    slotlock.notice.info("%s", text)


def _build_locked(layout: Layout, req: BuildRequest, slot: Slot, on_line: LineSink | None,
                  force: bool) -> BuildResult:
    started = time.monotonic()
    out = slot.out(req.commit, req.kconfig_add)
    log_path = slot.root / "logs" / f"{req.commit[:12]}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    slot.build.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    _repair(slot, log_path)
    checkout(req.tree, slot, req.commit, log_path)
    writable = [slot.src, slot.build, out.parent, slot.tmp] + ([ccache_dir(layout)] if req.ccache else [])
    for path in writable:
        path.mkdir(parents=True, exist_ok=True)
    run = Runner(layout, req, slot, log_path, writable, on_line)
    kc = kconfig.configure(layout, req.arch, req.flavor, slot.src, slot.build, run, req.kconfig_add)
    tools = toolchain(req.arch)
    key = {**cache_key(req, kc.config_hash, tools), "own_modules": own_modules_hash(layout)}
    if not force and (info := cached(out, key)) is not None:
        return BuildResult(request=req, status=Status.PASS, duration=time.monotonic() - started, log=log_path,
                           out=out, config_hash=kc.config_hash, cached=True,
                           artifacts={k: Path(v) for k, v in info["artifacts"].items()}, info=info)
    before = ccache_stats(layout, req.ccache)
    compile_started = time.monotonic()
    # The completion marker (build.json) goes first and comes back last: artifacts of a
    # build that was cut short never count as cached.
    (out / "build.json").unlink(missing_ok=True)
    (slot.root / "building").write_text(f"{req.label} {req.commit[:12]} by pid {os.getpid()}\n")
    try:
        with compile_task(req, slot, kc) as objects:
            run(["make", f"O={slot.build}", f"-j{req.jobs}", req.arch.image_target, "modules"], timeout=BUILD_TIMEOUT,
                on_line=lambda line: objects.advance() if COMPILE_RE.match(line) else None)
        failed = None
    except CommandTimeout as exc:
        failed = str(exc)
    except CommandFailed:
        failed = "make failed"
    text = log_path.read_text(errors="replace")
    compiled = len(COMPILE_RE.findall(text))
    info = {
        "label": req.label, "series": req.series, "key": key, "jobs": req.jobs, "ccache_enabled": req.ccache,
        "sandbox": req.sandbox, "compiled_objects": compiled,
        "compile_seconds": round(time.monotonic() - compile_started, 1),
    }
    if not failed:
        artifacts = collect(req, slot, out, run)
        try:
            build_own_modules(layout, slot, out, run)
        except CommandFailed:
            failed = "wqci's own modules (guest/modules) do not build"
    (slot.root / "building").unlink(missing_ok=True)
    if failed:
        return _failed(layout, req, out, log_path, info, before, started, failed, kc.config_hash, compiled)
    info.update(result="pass", artifacts={k: str(v) for k, v in artifacts.items()},
                modules=sorted(Path(m).name for m in list_modules(out)),
                ccache=ccache_delta(before, ccache_stats(layout, req.ccache)),
                duration=round(time.monotonic() - started, 1))
    _write_info(out, info, log_path)
    return BuildResult(request=req, status=Status.PASS, duration=time.monotonic() - started, log=log_path, out=out,
                       config_hash=kc.config_hash, compiled=compiled, artifacts=artifacts, info=info)


def compile_task(req: BuildRequest, slot: Slot, kc: kconfig.KconfigResult) -> ContextManager[progress.Task]:
    """The progress of make: objects compiled of those expected (build/estimate.py)."""
    guess = estimate.expected(slot.root, slot.build, kc.config_hash, kconfig.parse_config(kc.config.read_text()),
                              slot.src, req.arch.srcarch)
    return progress.task(f"build {req.label} {req.arch.name}/{req.flavor.name}", guess.count, "objects",
                         basis=guess.basis, rough=guess.rough)


def _failed(layout: Layout, req: BuildRequest, out: Path, log_path: Path, info: dict, before: dict[str, int],
            started: float, failed: str, config_hash: str, compiled: int) -> BuildResult:
    text = log_path.read_text(errors="replace")
    errors = tuple(f"{m.group('loc')}: error: {m.group('msg')}" for m in ERROR_RE.finditer(text))[:10]
    info.update(result="fail", errors=list(errors), ccache=ccache_delta(before, ccache_stats(layout, req.ccache)),
                duration=round(time.monotonic() - started, 1))
    _write_info(out, info, log_path)
    return BuildResult(request=req, status=Status.FAIL, duration=time.monotonic() - started, log=log_path, out=out,
                       config_hash=config_hash, compiled=compiled, errors=errors or (failed,), info=info)


def _write_info(out: Path, info: dict, log_path: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(log_path, out / "build.log")
    tmp = out / "build.json.tmp"
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    tmp.rename(out / "build.json")


def collect(req: BuildRequest, slot: Slot, out: Path, run: Runner) -> dict[str, Path]:
    """Copy what later stages need out of the build directory, which the next build reuses."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = {
        "image": slot.build / req.arch.image_path,
        "system_map": slot.build / "System.map",
        "vmlinux": slot.build / "vmlinux",
        "config": slot.build / ".config",
    }
    artifacts = {}
    for name, src in files.items():
        dest = out / src.name
        shutil.copy2(src, dest)
        artifacts[name] = dest
    run(["make", f"O={slot.build}", f"INSTALL_MOD_PATH={out / 'modules'}", "INSTALL_MOD_STRIP=1",
         "modules_install"])
    artifacts["modules"] = out / "modules"
    artifacts["module_list"] = out / "modules.txt"  # written by list_modules() once all are installed
    return artifacts


def list_modules(out: Path) -> list[str]:
    """Every installed module (the kernel's and guest/modules'), into modules.txt."""
    listed = sorted(str(p.relative_to(out / "modules")) for p in (out / "modules").rglob("*.ko"))
    (out / "modules.txt").write_text("\n".join(listed) + "\n")
    return listed


def own_modules(layout: Layout) -> list[Path]:
    """wqci's own test modules: guest/modules/<name>/ with a Kbuild file each."""
    return sorted(p.parent for p in (layout.guest / "modules").glob("*/Kbuild"))


def own_modules_hash(layout: Layout) -> str:
    """Changes to guest/modules/ invalidate cached builds (the modules are built with the kernel)."""
    digest = hashlib.sha256()
    root = layout.guest / "modules"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_own_modules(layout: Layout, slot: Slot, out: Path, run: Runner) -> None:
    """Build guest/modules/* out of tree against this build; install them under extra/ and depmod."""
    mods = own_modules(layout)
    if not mods:
        return
    # A private copy, since kbuild writes its objects next to the sources. It is kept between
    # builds and sources keep their mtimes, so an unchanged module is not recompiled
    # (kbuild still rebuilds it when the kernel's headers or flags change).
    copy = slot.tmp / "guest-modules"
    shutil.copytree(layout.guest / "modules", copy, dirs_exist_ok=True)
    for mod in mods:
        run(["make", "-C", str(slot.build), f"M={copy / mod.name}", f"INSTALL_MOD_PATH={out / 'modules'}",
             "INSTALL_MOD_DIR=extra", "INSTALL_MOD_STRIP=1", "modules", "modules_install"])


def first_errors(result: BuildResult, count: int = 3) -> str:
    return "; ".join(result.errors[:count]) or "see the log"


@dataclass(frozen=True)
class Verdict:
    """The outcome of building a series (or the base) for one arch."""

    results: tuple[BuildResult, ...]
    message: str
    failed: BuildResult | None = None  # the build whose errors explain a failing verdict

    @property
    def ok(self) -> bool:
        return self.failed is None


def patch_request(base: BuildRequest, commits: Sequence[tuple[str, str]], i: int) -> BuildRequest:
    """The build of the series up to and including its i-th (0-based) patch."""
    label, commit = commits[i]
    return replace(base, label=label, commit=commit, patches=tuple(c for _, c in commits[: i + 1]))


def first_breaking(layout: Layout, base: BuildRequest, commits: Sequence[tuple[str, str]],
                   on_line: LineSink | None = None, force: bool = False) -> tuple[list[BuildResult], int | None]:
    """Build the patches in order, each in the slot on top of the last (incremental),
    and stop at the first that does not build: the builds, and the index of that
    patch in commits (None when every patch builds). The one first-breaking-patch
    search, for `wqci build --each-patch` and for a failed build of a series' head."""
    results = []
    for i in range(len(commits)):
        result = build(layout, patch_request(base, commits, i), on_line, force)
        results.append(result)
        if result.status is not Status.PASS:
            return results, i
    return results, None


def build_series(layout: Layout, base: BuildRequest, commits: Sequence[tuple[str, str]], each_patch: bool,
                 on_line: LineSink | None = None, force: bool = False) -> Verdict:
    """Build the series' head (or, with each_patch, every patch in order).

    `commits` are (label, commit) pairs, one per patch. When the head does not
    build, the baseline is built too, so the verdict can say whether the series
    or the tree is to blame.
    """
    where = f"{base.arch.name}/{base.flavor.name}"
    if not commits:
        result = build(layout, base, on_line, force)
        if result.status is Status.PASS:
            return Verdict((result,), f"base builds ({where})")
        return Verdict((result,), f"the base tree does not build ({where}): {first_errors(result)}", result)
    if each_patch:
        results, broken = first_breaking(layout, base, commits, on_line, force)
        if broken is None:
            return Verdict(tuple(results), f"{base.series} builds ({where})")
        return Verdict(tuple(results), f"{commits[broken][0]} is the first patch that breaks the build ({where}): "
                       f"{first_errors(results[-1])}", results[-1])
    head = build(layout, patch_request(base, commits, len(commits) - 1), on_line, force)
    if head.status is Status.PASS:
        return Verdict((head,), f"{base.series} builds ({where})")
    base_result = build(layout, base, on_line, force)
    if base_result.status is Status.PASS:
        return Verdict((head, base_result), f"the base builds but {base.series} does not ({where}): "
                       f"{first_errors(head)}", head)
    return Verdict((head, base_result), f"the base tree itself does not build ({where}): "
                   f"{first_errors(base_result)}", base_result)
