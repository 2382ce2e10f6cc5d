"""kernel/locking/test-ww_mutex.c: wound and die selftests, including A/B cycles."""

from __future__ import annotations

import re
from functools import partial

from pipeline.model.status import Status
from pipeline.model.cases import Case, ModuleRun, SuiteRun

NAME = "ww_mutex_selftest"
PASSED = "All ww mutex selftests passed"
# The stress tests run for a fixed time; one still backing off from a deadlock when
# the time is up reports -EDEADLK (-35). Under emulation that is slowness, not a bug.
DEADLINE_EDEADLK_RE = re.compile(r"stress \(\w+\) failed with -35\b")
FAILURE_RE = re.compile(
    r"^(?:\[[\s\d.]+\] )?(.*(?:mutual exclusion failure|initial (?:try)?lock failed|trylocked itself|missed deadlock|"
    r"failed to resolve ABBA deadlock|missed ABBA deadlock|cyclic deadlock not resolved|stress \(\w+\) failed)"
    r".*)$", re.M)


def parse(run: SuiteRun) -> list[Case]:
    return [parse_one(mod) for mod in run.numbered()]


def parse_one(mod: ModuleRun) -> Case:
    case = partial(mod.case, NAME)
    if mod.timed_out:
        return case(Status.ERROR, "timed out", mod.log[-4000:])
    failures = [m.group(1).strip() for m in FAILURE_RE.finditer(mod.log)
                if not DEADLINE_EDEADLK_RE.match(m.group(1))]
    notes = {"note": "; ".join(m.group(0) for m in DEADLINE_EDEADLK_RE.finditer(mod.log))}
    notes = notes if notes["note"] else {}
    if failures:
        return case(Status.FAIL, failures[0], "\n".join(failures) + "\n\n" + mod.log[-2000:])
    if mod.exit_code != 0:
        return case(Status.FAIL, f"load exited {mod.exit_code}", mod.output)
    if PASSED not in mod.log:
        return case(Status.FAIL, f"'{PASSED}' missing", mod.log[-4000:])
    return case(Status.PASS, f"passed ({notes['note']}: a stress test ran out of time while backing off)" if notes
                else "", properties=notes)
