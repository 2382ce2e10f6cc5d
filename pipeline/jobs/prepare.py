"""The stages before a guest: tree, apply, build -- each a StageResult.

Shared by `wqci boot`, `wqci test` and `wqci run`. A patch that does not apply
or a kernel that does not build is a failed stage (a verdict), not an
exception; infrastructure errors still raise.

`checkout` is the same tree and apply without stages, for the commands that
stop at the first failure: `wqci apply`, `wqci build` and `wqci bisect`.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline import config
from pipeline.build import kernel as build_mod
from pipeline.intake import series as series_mod
from pipeline.intake import tree as trees
from pipeline.model.errors import ApplyFailed, BuildFailed
from pipeline.model.status import Status, StageResult


@dataclass(frozen=True)
class Variant:
    """What to build: the base (series=None) or a series, on the named tree or a user's."""

    series: str | None
    tree_path: Path | None = None
    flavor: str | None = None
    sandbox: bool = True
    ccache: bool = True
    amplify: bool = False  # the carry patch of configs/amplify.yaml on top
    ccache_remote: str = ""  # ccache's remote_storage (a nightly matrix's ccache.remote_storage)
    lock_timeout: float = build_mod.LOCK_TIMEOUT  # wait this long for another wqci in the slot
    onto: str | None = None  # this revision of the tree (wqci run's baseline: where the series is applied)
    jobs: int = field(default_factory=build_mod.default_jobs)  # make -j
    kconfig_add: tuple[str, ...] = ()  # -K CONFIG_X=VALUE options (build/kconfig.py)
    append: tuple[str, ...] = ()  # --append: kernel parameters for its guests, after --amplify's
    carry: tuple[str, ...] = ()  # carry series the suites need (patches/carry/<name>/), committed on top


@dataclass
class Prepared:
    label: str
    info: trees.TreeInfo | None = None
    commits: list[tuple[str, str]] = field(default_factory=list)
    build: build_mod.BuildResult | None = None
    stages: list[StageResult] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    cmdline: tuple[str, ...] = ()  # kernel parameters this variant needs (--amplify)

    @property
    def ok(self) -> bool:
        return self.build is not None and self.build.status is Status.PASS


@dataclass(frozen=True)
class Checkout:
    """A variant's tree and, for a series, the series applied on it (one commit per patch)."""

    name: str  # the series' name, or "base"
    info: trees.TreeInfo
    applied: series_mod.ApplyResult | None = None

    @property
    def commits(self) -> list[tuple[str, str]]:
        """("series n/m", commit) per patch; none for the base."""
        return self.applied.labelled_commits if self.applied else []


def locate(layout: config.Layout, series: str | None, tree_path: Path | None, onto: str | None = None,
           log_path: Path | None = None) -> tuple[config.Series | None, trees.TreeInfo]:
    """The series (None for the base) and the tree it applies to: its base tree from
    configs/trees.yaml (fetched once), or the user's checkout; at onto if given, else at the
    series' base-commit when the tree has it."""
    s = config.load_series(layout, series) if series else None
    tree_cfg = config.load_trees(layout).get(s.base if s else None)
    info = trees.resolve(layout, tree_cfg, tree_path, onto, log_path=log_path)
    return s, (series_mod.on_base(s, info) if s is not None and onto is None else info)


def checkout(layout: config.Layout, series: str | None, tree_path: Path | None = None, onto: str | None = None,
             log_path: Path | None = None) -> Checkout:
    """The tree and, for a series, its applied commits (`wqci apply`, `wqci build`, `wqci bisect`).
    A patch that does not apply raises ApplyFailed (a verdict)."""
    s, info = locate(layout, series, tree_path, onto, log_path)
    if s is None:
        return Checkout("base", info)
    return Checkout(s.name, info, series_mod.apply(layout, s, info, log_path=log_path))


def stamped_log(layout: config.Layout, name: str) -> Path:
    """A log under the cache for a command that has no output directory (fetch, apply)."""
    return layout.cache / "logs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}.log"


def prepare(layout: config.Layout, variant: Variant, arch: config.Arch, log_dir: Path) -> Prepared:
    flavors = config.load_flavors(layout)
    flavor = flavors.get(variant.flavor)
    started = time.monotonic()
    s, info = locate(layout, variant.series, variant.tree_path, variant.onto, log_path=log_dir / "tree.log")
    out = Prepared(label=s.name if s else "base")
    out.info = info
    out.stages.append(StageResult("tree", Status.PASS, time.monotonic() - started, log_dir / "tree.log",
                                  message=f"{info.name} {info.version} at {info.commit[:12]}"))
    out.properties.update(tree=info.name, base_version=info.version, base_commit=info.commit, arch=arch.name,
                          flavor=flavor.name)
    if s is not None:
        out.properties.update(series=s.name, series_title=s.title, series_version=str(s.version))
        if not _apply(layout, s, info, out, log_dir):
            return out
    label, commit = out.commits[-1] if out.commits else ("base", info.commit)
    patches = tuple(c for _, c in out.commits)
    if variant.amplify:
        amp = config.load_amplify(layout)
        carried = _carry(layout, amp, info, (out.label, commit), out, log_dir)
        if carried is None:
            return out
        flavor = amp.flavor(flavor)
        label, commit, patches = f"{label} + {amp.carry.name}", carried, patches + (carried,)
        out.cmdline = amp.cmdline
    bare = (label, commit, patches)
    for name in variant.carry:
        carried = _carry_for_suites(layout, info, name, commit, out, log_dir)
        if carried is not None:
            label, commit, patches = f"{label} + {name}", carried, patches + (carried,)
    req = build_mod.BuildRequest(tree=info, arch=arch, flavor=flavor, commit=commit, label=label,
                                 series=out.label, patches=patches, sandbox=variant.sandbox, ccache=variant.ccache,
                                 ccache_remote=variant.ccache_remote, lock_timeout=variant.lock_timeout,
                                 jobs=variant.jobs, kconfig_add=variant.kconfig_add)
    if variant.kconfig_add:  # reproduce.sh passes them again
        out.properties["kconfig_add"] = shlex.join(variant.kconfig_add)
    if variant.append:
        out.cmdline += variant.append
        out.properties["cmdline_append"] = " ".join(variant.append)
    result = None
    if out.properties.get("carried"):
        result = build_mod.build(layout, req)
        if result.status is not Status.PASS:
            _drop_carry(out, build_mod.first_errors(result))
            req, result = replace(req, label=bare[0], commit=bare[1], patches=bare[2]), None
    _build(layout, req, s, variant.amplify, out, result)
    return out


def _drop_carry(out: Prepared, errors: str) -> None:
    """The tree does not build with the suites' carry series on top (a series can change the
    file a carry patches): their stages say so, and the tree is built without them, so that
    the verdict is about the tree and the series."""
    names = out.properties.pop("carried").split()
    why = f"skipped: the tree does not build with it ({errors}); the suites run without it"
    out.stages = [replace(st, status=Status.SKIP, message=why) if st.name == "apply" and st.case in names else st
                  for st in out.stages]


def _build(layout: config.Layout, req: build_mod.BuildRequest, s: config.Series | None, amplify: bool,
           out: Prepared, result: build_mod.BuildResult | None = None) -> None:
    """The build stage (its result, if already built); when it fails, what is to blame: the
    base tree, the carry patch, or the first patch of the series that does not build (also
    as a property)."""
    result = result or build_mod.build(layout, req)
    out.build = result
    out.properties.update(commit=req.commit, config_hash=result.config_hash,
                          toolchain=result.info.get("key", {}).get("toolchain", {}).get("cc", ""))
    props = {"cached": str(result.cached).lower(), "compiled_objects": str(result.compiled)}
    if result.status is Status.PASS:
        message = "cached" if result.cached else f"{result.compiled} objects compiled"
    elif amplify:
        message = f"the tree with the carry patch does not build: {build_mod.first_errors(result)}"
    elif s is None:
        message = f"the base tree does not build: {build_mod.first_errors(result)}"
    else:
        number = first_breaking(layout, req, out.commits)
        props["breaking_patch"] = str(number)
        message = (f"patch {number}/{len(out.commits)} \"{s.patches[number - 1].subject}\" does not build: "
                   f"{build_mod.first_errors(result)}")
    out.stages.append(StageResult("build", result.status, result.duration, result.log, message=message,
                                  properties=props))


def _apply(layout: config.Layout, s: config.Series, info: trees.TreeInfo, out: Prepared, log_dir: Path) -> bool:
    started = time.monotonic()
    try:
        applied = series_mod.apply(layout, s, info, log_path=log_dir / "apply.log")
    except ApplyFailed as exc:
        failed = exc.patch
        for i, ref in enumerate(s.patches, 1):
            status = Status.PASS if i < failed else Status.FAIL if i == failed else Status.SKIP
            message = str(exc) if i == failed else ("" if i < failed else "not applied: an earlier patch failed")
            out.stages.append(StageResult("apply", status, 0.0, log_dir / "apply.log", message=message,
                                          properties={"subject": ref.subject}, case=str(i)))
        out.stages.append(StageResult("build", Status.SKIP, 0.0, message="skipped: the series does not apply"))
        return False
    share = (time.monotonic() - started) / max(len(applied.patches), 1)
    for p in applied.patches:
        out.stages.append(StageResult("apply", Status.PASS, share, log_dir / "apply.log", message=p.ref.subject,
                                      properties={"commit": p.commit, "subject": p.ref.subject}, case=str(p.number)))
    out.commits = applied.labelled_commits
    out.properties["patch_commits"] = " ".join(c for _, c in out.commits)
    return True


def _carry(layout: config.Layout, amp: config.Amplify, info: trees.TreeInfo, onto: tuple[str, str], out: Prepared,
           log_dir: Path) -> str | None:
    """Apply the amplification carry patch on top; its commit, or None (a failed stage) when it does not apply."""
    started = time.monotonic()
    try:
        applied = series_mod.apply(layout, amp.carry, info, log_path=log_dir / "apply.log", onto=onto)
    except ApplyFailed as exc:
        out.stages.append(StageResult("apply", Status.FAIL, time.monotonic() - started, log_dir / "apply.log",
                                      message=str(exc), case="carry"))
        out.stages.append(StageResult("build", Status.SKIP, 0.0, message="skipped: the carry patch does not apply"))
        return None
    out.stages.append(StageResult("apply", Status.PASS, time.monotonic() - started, log_dir / "apply.log",
                                  message=amp.carry.title, properties={"commit": applied.head}, case="carry"))
    out.properties.update(amplify=amp.carry.name, amplify_commit=applied.head, amplify_cmdline=" ".join(amp.cmdline))
    return applied.head


def _carry_for_suites(layout: config.Layout, info: trees.TreeInfo, name: str, onto: str, out: Prepared,
                      log_dir: Path) -> str | None:
    """A carry series a suite needs (its ab_carry), committed on top; its commit, or None and a
    skipped stage when it does not apply (a tree whose benchmark has changed): the suites then
    run without what it gives them, which is not the series' fault."""
    started = time.monotonic()
    carry = config.load_series_file(layout.carry_series(name))
    log = log_dir / "apply.log"
    try:
        head = series_mod.commit_onto(info, carry, onto, log_path=log)
    except ApplyFailed as exc:
        out.stages.append(StageResult("apply", Status.SKIP, time.monotonic() - started, log,
                                      message=f"{exc}; the suites run without it", case=name))
        return None
    out.stages.append(StageResult("apply", Status.PASS, time.monotonic() - started, log, message=carry.title,
                                  properties={"commit": head}, case=name))
    out.properties["carried"] = " ".join(filter(None, (out.properties.get("carried"), name)))
    return head


def kernel(layout: config.Layout, variant: Variant, arch: config.Arch, log_dir: Path) -> build_mod.BuildResult:
    """The built kernel of one variant (cached when built before, else built now), or
    BuildFailed naming the stage that failed (`wqci boot`)."""
    return built(prepare(layout, variant, arch, log_dir))


def built(prepared: Prepared) -> build_mod.BuildResult:
    """The kernel of a prepared variant, or BuildFailed naming the stage that failed."""
    failed = next((st for st in prepared.stages if st.status is Status.FAIL), None)
    if failed is not None:
        stage = ".".join(part for part in (failed.name, failed.case) if part)  # "apply.2"
        raise BuildFailed(detail=f"{stage}: {failed.message}" + (f"; log: {failed.log}" if failed.log else ""))
    if prepared.build is None:
        raise BuildFailed(detail=f"{prepared.label}: no kernel was built")
    return prepared.build


def prepare_commit(layout: config.Layout, base: Prepared, arch: config.Arch, label: str, commit: str,
                   sandbox: bool = True) -> Prepared:
    """Build one intermediate commit of an applied series in the same slot (incremental)."""
    assert base.build is not None and base.info is not None
    upto = [c for _, c in base.commits].index(commit) + 1
    req = replace(build_mod.patch_request(base.build.request, base.commits, upto - 1), label=label, sandbox=sandbox)
    result = build_mod.build(layout, req)
    return Prepared(label=label, info=base.info, commits=base.commits[:upto], build=result,
                    properties={**base.properties, "commit": commit})


def first_breaking(layout: config.Layout, head: build_mod.BuildRequest, commits: list[tuple[str, str]]) -> int:
    """The number (1-based) of the first patch that does not build, given that the head
    (the last of commits) does not: the patches before it are built in order, each an
    incremental build in the slot, until one fails."""
    _, broken = build_mod.first_breaking(layout, head, commits[:-1])
    return len(commits) if broken is None else broken + 1
