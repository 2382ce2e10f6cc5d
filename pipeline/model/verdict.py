"""The verdict of a run, computed in one place from its cases.

Every output (terminal, summary.md, report.html, results.json, JUnit, exit
code) states this verdict. The cases already carry the classification of each
finding (a pre-existing or unconfirmed finding is a passing case, a new one a
failing case), so the verdict is the worst case status, with the failing cases
as its reasons and the unconfirmed findings as its warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from pipeline.model.errors import EXIT_VERDICT
from pipeline.model.results import Run
from pipeline.model.status import Status


@dataclass(frozen=True)
class Verdict:
    status: Status
    reasons: tuple[str, ...] = ()  # why it is not a pass: "suite: case: message"
    warnings: tuple[str, ...] = ()  # unconfirmed findings, and what else deserves a look

    @property
    def exit_code(self) -> int:
        return 0 if self.status is Status.PASS else EXIT_VERDICT

    def to_dict(self) -> dict:
        return {"status": self.status.value, "reasons": list(self.reasons), "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Verdict":
        return cls(Status(data["status"]), tuple(data.get("reasons", ())), tuple(data.get("warnings", ())))


def of_run(run: Run) -> Verdict:
    reasons, warnings = [], []
    for suite in run.suites:
        for case in suite.cases:
            if case.status in (Status.FAIL, Status.ERROR):
                reasons.append(f"{suite.name}: {case.name}: {case.message}")
            elif case.properties.get("class") == "unconfirmed":
                warnings.append(f"{suite.name}: {case.message}")
    return Verdict(run.status, tuple(reasons), tuple(warnings))
