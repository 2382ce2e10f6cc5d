"""The stage result model: every stage takes a request and returns one of these.

JUnit and JSON are written from these results and nowhere else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


def worst(statuses: Iterable[Status]) -> Status:
    """error beats fail beats pass; skips alone are a pass."""
    seen = set(statuses)
    for status in (Status.ERROR, Status.FAIL):
        if status in seen:
            return status
    return Status.PASS


@dataclass(frozen=True)
class StageResult:
    name: str  # the stage: "tree", "apply", "build"
    status: Status
    duration: float
    log: Path | None = None
    message: str = ""
    artifacts: Mapping[str, Path] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    case: str = ""  # which one, for a stage that runs per item: the patch ("2", "carry") of an apply
