"""kernel/locking/test-ww_mutex.c: wound and die selftests, including A/B cycles."""

from __future__ import annotations

import re

from pipeline.result import Status
from pipeline.suites.model import Case, ModuleRun, SuiteRun

PASSED = "All ww mutex selftests passed"
FAILURE_RE = re.compile(
    r"(mutual exclusion failure|initial (?:try)?lock failed|trylocked itself|missed deadlock|"
    r"failed to resolve ABBA deadlock|missed ABBA deadlock|cyclic deadlock not resolved|stress \(\w+\) failed)"
    r".*$", re.M)


def parse(run: SuiteRun) -> list[Case]:
    return [parse_one(mod, i, len(run.runs)) for i, mod in enumerate(run.runs)]


def parse_one(mod: ModuleRun, index: int = 0, total: int = 1) -> Case:
    name = "ww_mutex_selftest" + (f"#{index + 1}" if total > 1 else "")
    if mod.timed_out:
        return Case(name, Status.ERROR, mod.duration, "timed out", mod.log[-4000:])
    failures = [m.group(0).strip() for m in FAILURE_RE.finditer(mod.log)]
    if failures:
        return Case(name, Status.FAIL, mod.duration, failures[0], "\n".join(failures) + "\n\n" + mod.log[-2000:])
    if mod.exit_code != 0:
        return Case(name, Status.FAIL, mod.duration, f"load exited {mod.exit_code}", mod.output)
    if PASSED not in mod.log:
        return Case(name, Status.FAIL, mod.duration, f"'{PASSED}' missing", mod.log[-4000:])
    return Case(name, Status.PASS, mod.duration)
