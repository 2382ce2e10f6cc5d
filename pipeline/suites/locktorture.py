"""kernel/locking/locktorture.c: one case per torture type, ended by rmmod.

Its cleanup prints the final statistics and "<type>-torture:--- End of test:
SUCCESS|FAILURE|LOCK_HOTPLUG".
"""

from __future__ import annotations

import re
from functools import partial

from pipeline.model.status import Status
from pipeline.model.cases import Case, ModuleRun, SuiteRun

NAME = "locktorture"
END_RE = re.compile(r"(\w+)-torture:--- End of test: (\w+)")
STATS_RE = re.compile(r"(Writes|Reads)\s*:\s+Total: (\d+)\s+Max/Min: (-?\d+)/(-?\d+)\s*(\?\?\?)?\s+Fail: (\d+)")


def parse(run: SuiteRun) -> list[Case]:
    return [parse_one(mod) for mod in run.numbered()]


def parse_one(mod: ModuleRun) -> Case:
    case = partial(mod.case, NAME, variant=mod.variant or "default")
    if mod.timed_out:
        return case(Status.ERROR, "timed out", mod.log[-4000:])
    if mod.exit_code != 0:
        return case(Status.FAIL, f"load or unload exited {mod.exit_code}", mod.output + "\n" + mod.log[-2000:])
    ends = [m for m in END_RE.finditer(mod.log) if not mod.variant or m.group(1) == mod.variant]
    metrics = {}
    for m in STATS_RE.finditer(mod.log):  # the last statistics line of each kind wins
        kind = m.group(1).lower()
        metrics.update({f"{kind}_total": float(m.group(2)), f"{kind}_fail": float(m.group(6))})
    if not ends:
        return case(Status.FAIL, "no 'End of test' line after rmmod", mod.log[-4000:], metrics=metrics)
    verdict = ends[-1].group(2)
    if verdict != "SUCCESS" or any(v > 0 for k, v in metrics.items() if k.endswith("_fail")):
        return case(Status.FAIL, f"End of test: {verdict}", mod.log[-4000:], metrics=metrics)
    return case(Status.PASS, metrics=metrics, properties={k: f"{v:.0f}" for k, v in metrics.items()})
