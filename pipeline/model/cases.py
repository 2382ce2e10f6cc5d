"""What a suite run leaves behind for its parser, and the cases parsers return.

A case's identity is fields: the suite (or stage) it belongs to, the variant of
the suite's module it ran with, the test within the suite, and its run numbers.
`Case.name` is derived from them for JUnit and results.json; nothing parses it back.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field, replace
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
    lock_stat: str = ""  # /proc/lock_stat read after the run (kernels with CONFIG_LOCK_STAT)
    runs: tuple[int, ...] = ()  # the run numbers of its cases (SuiteRun.numbered)

    def case(self, suite: str, status: Status, message: str = "", text: str = "", *,
             duration: float | None = None, **identity_and_data: object) -> Case:
        """A case of this run: with its run numbers, and its duration unless another is given."""
        return Case(suite, status, self.duration if duration is None else duration, message, text,
                    runs=self.runs, **identity_and_data)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SuiteRun:
    suite: str
    runs: tuple[ModuleRun, ...]
    params: Mapping[str, str] = field(default_factory=dict)

    def numbered(self) -> list[ModuleRun]:
        """The module runs, each with the run numbers of its cases: (k,) (k counts every run of
        the suite) when some variant ran more than once (--repeat), so that cases stay distinct
        and rates.repeated groups them; () when each variant ran once."""
        repeated = len(self.runs) > len({mod.variant for mod in self.runs})
        return [replace(mod, runs=(i + 1,)) if repeated else mod for i, mod in enumerate(self.runs)]


@dataclass(frozen=True)
class Case:
    """One test case: `suite` ("test_workqueue", "boot", "apply", "finding", "ab"), the module
    `variant` it ran with ("mutex_lock"), the `case` within the suite (a scope, a KTAP test and
    its subtests, a patch number), and `runs`: its run numbers, innermost first (the run of a
    --repeat'ed suite, or the boot of a test that rebooted; then the test of `wqci run`)."""

    suite: str
    status: Status
    duration: float = 0.0
    message: str = ""
    text: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    _: KW_ONLY
    variant: str = ""
    case: str = ""
    runs: tuple[int, ...] = ()

    @property
    def run(self) -> int | None:
        """The outermost run number, the one repeated runs of this case differ in."""
        return self.runs[-1] if self.runs else None

    @property
    def test(self) -> str:
        """What the case tests, whichever run: `suite[.variant][.case]`."""
        return ".".join(part for part in (self.suite, self.variant, self.case) if part)

    @property
    def name(self) -> str:
        """The JUnit name: `suite[.variant][.case][#run...]`, e.g. `locktorture.mutex_lock#2`."""
        return self.test + "".join(f"#{k}" for k in self.runs)

    @property
    def stem(self) -> str:
        """The name without the outermost run number: what the runs of a repeated case share."""
        return replace(self, runs=self.runs[:-1]).name

    def numbered(self, run: int) -> Case:
        """This case as run number `run` of something that holds it (a test of `wqci run`)."""
        return replace(self, runs=self.runs + (run,))

    def identity(self) -> dict[str, object]:
        """The fields that make up the name, for results.json."""
        return {"suite": self.suite, "variant": self.variant, "case": self.case, "runs": list(self.runs)}
