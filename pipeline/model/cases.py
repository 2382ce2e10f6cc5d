"""What a suite run leaves behind for its parser, and the cases parsers return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from pipeline.model.status import Status


@dataclass(frozen=True)
class ModuleRun:
    """One load (and unload) of the suite's module in the guest."""

    variant: str  # "" or e.g. "mutex_lock"
    command: str
    exit_code: int
    output: str  # stdout + stderr of the load command
    log: str  # the kernel log between this run's markers
    duration: float
    timed_out: bool = False


@dataclass(frozen=True)
class SuiteRun:
    suite: str
    runs: tuple[ModuleRun, ...]
    params: Mapping[str, str] = field(default_factory=dict)

    def numbered(self) -> list[tuple[ModuleRun, str]]:
        """Each run with the suffix of its case names: "#k" (k counts every run of the suite)
        when some variant ran more than once (--repeat), so names stay unique and
        rates.repeated groups them; variants that each ran once keep their plain names."""
        repeated = len(self.runs) > len({mod.variant for mod in self.runs})
        return [(mod, f"#{i + 1}" if repeated else "") for i, mod in enumerate(self.runs)]


@dataclass(frozen=True)
class Case:
    name: str
    status: Status
    duration: float = 0.0
    message: str = ""
    text: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
