"""`wqci build`: the base or a series, for each arch, into the slots' build directories.

The tree and the series come from prepare.checkout (the same as `wqci apply` and
`wqci bisect`); each arch is one build_series verdict, which says whether the
series or the tree is to blame (or, per patch, which patch first breaks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline import config
from pipeline.build import kernel
from pipeline.jobs import prepare
from pipeline.model.progress import Progress


@dataclass(frozen=True)
class BuildsRequest:
    series: str | None  # None: the base tree
    arches: tuple[config.Arch, ...]
    flavor: config.Flavor
    tree_path: Path | None = None
    each_patch: bool = False  # build every patch in order and name the first that breaks
    ccache: bool = True
    sandbox: bool = True
    force: bool = False  # rebuild even when nothing changed
    lock_timeout: float = kernel.LOCK_TIMEOUT  # wait this long for another wqci in the slot
    jobs: int = field(default_factory=kernel.default_jobs)  # make -j
    kconfig_add: tuple[str, ...] = ()  # -K CONFIG_X=VALUE options (build/kconfig.py)


@dataclass(frozen=True)
class ArchBuild:
    arch: config.Arch
    slot: Path
    verdict: kernel.Verdict


@dataclass(frozen=True)
class Builds:
    name: str  # the series, or "base"
    arches: tuple[ArchBuild, ...]

    @property
    def ok(self) -> bool:
        return all(b.verdict.ok for b in self.arches)


def build_arches(layout: config.Layout, req: BuildsRequest, progress: Progress,
                 on_arch: Callable[[ArchBuild], None] = lambda b: None) -> Builds:
    """Build each arch in turn; on_arch sees each arch's verdict as soon as it is known."""
    log = prepare.stamped_log(layout, f"apply-{req.series}") if req.series else None
    co = prepare.checkout(layout, req.series, req.tree_path, log_path=log)
    done = []
    for arch in req.arches:
        base = kernel.BuildRequest(tree=co.info, arch=arch, flavor=req.flavor, commit=co.info.commit, label="base",
                                   series=co.name, ccache=req.ccache, sandbox=req.sandbox,
                                   lock_timeout=req.lock_timeout, jobs=req.jobs, kconfig_add=req.kconfig_add)
        slot = kernel.slot_for(layout, co.info, arch, req.flavor).root
        progress(f"building {co.name} for {arch.name}/{req.flavor.name} in {slot}")
        built = ArchBuild(arch, slot, kernel.build_series(layout, base, co.commits, req.each_patch, force=req.force))
        on_arch(built)
        done.append(built)
    return Builds(co.name, tuple(done))
