"""The seam between the jobs and the machine: prepare a kernel, test it in a guest.

`wqci run` takes a Backend. GuestBackend is the real one (tree, apply and build
through prepare.py, QEMU guests through variant.run_variant). Unit tests pass a
backend that replays recorded consoles and suite logs, so the orchestration
(interleaving, confirmation reruns, each-patch culprits, the verdict) runs in
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from pipeline import config
from pipeline.guest.topology import Topology
from pipeline.jobs import prepare
from pipeline.jobs import variant
from pipeline.model.results import SuiteResult
from pipeline.suites.config import SuiteConfig
from pipeline.triage import history
from pipeline.triage.findings import Finding
from pipeline.model.progress import Progress



class Backend(Protocol):
    def prepare(self, wanted: prepare.Variant, arch: config.Arch, out_dir: Path) -> prepare.Prepared:
        """Tree, apply and build; failures are failed stages, not exceptions."""

    def prepare_commit(self, head: prepare.Prepared, arch: config.Arch, label: str,
                       commit: str) -> prepare.Prepared:
        """An intermediate commit of an applied series, built in the same slot."""

    def test(self, arch: config.Arch, prepared: prepare.Prepared, suites: Sequence[SuiteConfig], out_dir: Path,
             result: SuiteResult, progress: Progress) -> list[Finding]:
        """Boot, run the suites (their cases go into result), triage the console."""

    def history(self, prepared: prepare.Prepared) -> history.History | None:
        """Where the boots of this (base) kernel are recorded."""


@dataclass(frozen=True)
class GuestBackend:
    layout: config.Layout
    topology: Topology
    accel: str = "auto"
    sandbox: bool = True

    def prepare(self, wanted: prepare.Variant, arch: config.Arch, out_dir: Path) -> prepare.Prepared:
        return prepare.prepare(self.layout, wanted, arch, out_dir)

    def prepare_commit(self, head: prepare.Prepared, arch: config.Arch, label: str,
                       commit: str) -> prepare.Prepared:
        return prepare.prepare_commit(self.layout, head, arch, label, commit, self.sandbox)

    def test(self, arch: config.Arch, prepared: prepare.Prepared, suites: Sequence[SuiteConfig], out_dir: Path,
             result: SuiteResult, progress: Progress) -> list[Finding]:
        out_dir.mkdir(parents=True, exist_ok=True)
        req = variant.TestRequest(arch=arch, topology=self.topology, build=prepared.build, suites=tuple(suites),
                                  out_dir=out_dir, accel=self.accel, extra_cmdline=prepared.cmdline)
        return variant.run_variant(self.layout, req, result, progress)

    def history(self, prepared: prepare.Prepared) -> history.History | None:
        return history.for_build(self.layout, prepared.build)
