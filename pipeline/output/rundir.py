"""A run directory's results.json, read once for every file written from it.

results.json is the record of a run: summary.md, report.html, reproduce.sh,
reply.txt and kcidb.json are all written from it, so each can be rewritten after
an interrupted run or by `wqci report DIR`. Files written by older wqci lack some
fields (the typed case identity, the request's properties); every reader here
falls back to what such a file has, and says so where it matters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.model.errors import UsageError

#: case groups that are stages of a variant rather than suites run in the guest
STAGES = ("tree", "apply", "build", "boot", "finding", "ab", "interrupted")
FINDING_KEYS = ("new_findings", "unconfirmed_findings", "preexisting_findings", "baseline_findings")


def load(run_dir: Path) -> dict:
    path = run_dir / "results.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(detail=f"{path}: no results.json here (is this a wqci run directory?)") from None
    except ValueError as exc:
        raise UsageError(detail=f"{path}: not valid JSON: {exc}") from None


def clip(text: str, width: int) -> str:
    """text on one line, at most width characters, cut between words (never inside one)."""
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    cut = line[:width - 1].rsplit(" ", 1)[0] if " " in line[:width - 1] else line[:width - 1]
    return cut.rstrip(" ,;:") + "…"


@dataclass(frozen=True)
class CaseRow:
    """One case of results.json by its identity: group (the suite or stage), label (variant
    and case within it), runs (innermost first)."""

    name: str  # the JUnit name, as the verdict's reasons quote it
    group: str
    label: str
    runs: tuple[int, ...]
    status: str
    message: str
    metrics: Mapping[str, float]
    properties: Mapping[str, str]
    duration: float = 0.0

    @property
    def test(self) -> str:
        return f"{self.group}.{self.label}" if self.label else self.group

    @property
    def run(self) -> int | None:
        return self.runs[-1] if self.runs else None

    @classmethod
    def of(cls, case: Mapping) -> "CaseRow":
        if "suite" in case:
            label = ".".join(str(p) for p in (case.get("variant"), case.get("case")) if p)
            runs = case.get("runs")
            if runs is None:
                runs = [case["run"]] if case.get("run") else []
            return cls(case.get("name", ""), case["suite"], label, tuple(int(r) for r in runs), case["status"], case.get("message", ""),
                       case.get("metrics", {}), case.get("properties", {}), case.get("duration", 0.0))
        # results.json before the typed fields: the identity is only in the JUnit-style name
        stem, *runs = case["name"].split("#")
        group, _, label = stem.partition(".")
        return cls(case["name"], group, label, tuple(int(r) for r in runs if r.isdigit()), case["status"],
                   case.get("message", ""), case.get("metrics", {}), case.get("properties", {}),
                   case.get("duration", 0.0))


@dataclass(frozen=True)
class Side:
    """One kernel tested in the run: a suite of results.json."""

    name: str
    variant: str  # "baseline" or the series' name
    properties: Mapping[str, str]
    cases: tuple[CaseRow, ...]

    @property
    def baseline(self) -> bool:
        return self.variant == "baseline"

    def prop(self, key: str, default: str = "") -> str:
        return str(self.properties.get(key, default) or default)

    def group(self, name: str) -> list[CaseRow]:
        return [c for c in self.cases if c.group == name]

    @classmethod
    def of(cls, suite: Mapping) -> "Side":
        props = suite.get("properties", {})
        variant = props.get("variant") or suite["name"].rsplit("/", 1)[-1]
        return cls(suite["name"], variant, props, tuple(CaseRow.of(c) for c in suite.get("cases", [])))


@dataclass(frozen=True)
class ArchRun:
    """One arch of the run: the two kernels the verdict is about, any further pair
    (--perf-flavor), and the arch's outcome (findings by class, the A/B rows)."""

    arch: str
    baseline: Side | None
    patched: Side | None
    more: tuple[Side, ...] = ()
    outcome: Mapping = field(default_factory=dict)

    @property
    def sides(self) -> tuple[Side, ...]:
        return tuple(s for s in (self.baseline, self.patched) if s is not None)

    def findings(self, key: str) -> list[dict]:
        return list(self.outcome.get(key, []))

    @property
    def comparison(self) -> list[dict]:
        return list(self.outcome.get("comparison", []))

    @property
    def note(self) -> str:
        return self.outcome.get("note") or ""


@dataclass(frozen=True)
class Patch:
    number: int
    total: int
    subject: str
    commit: str
    message_id: str  # "" when the series does not record it
    status: str
    message: str

    def label(self, series: str) -> str:
        """The name wqci gives this patch elsewhere (first_patch, bisect): "series n/m"."""
        return f"{series} {self.number}/{self.total}"


@dataclass(frozen=True)
class RunView:
    data: Mapping
    arches: tuple[ArchRun, ...]
    patches: tuple[Patch, ...]

    @property
    def name(self) -> str:
        return self.data.get("name", "wqci run")

    @property
    def props(self) -> Mapping[str, str]:
        return self.data.get("properties", {})

    @property
    def series(self) -> str:
        return self.props.get("series", "")

    @property
    def verdict(self) -> dict:
        """The verdict results.json states (older files: their status only)."""
        return dict(self.data.get("verdict") or {"status": self.data.get("status", "error"), "reasons": [],
                                                  "warnings": []})

    @property
    def status(self) -> str:
        return self.verdict["status"]

    def prop(self, key: str) -> str:
        """A property of the run, else of its first kernel that has it (tree, commits, toolchain)."""
        if self.props.get(key):
            return str(self.props[key])
        for a in self.arches:
            for side in (a.patched, a.baseline):
                if side is not None and side.prop(key):
                    return side.prop(key)
        return ""

    def patch_of(self, label: str | None) -> Patch | None:
        return next((p for p in self.patches if label and p.label(self.series) == label), None)

    def list_prop(self, key: str) -> list[str]:
        return self.prop(key).split()


def _arch_of(suite: Side) -> str:
    # `wqci run` names its suites arch/flavour/topology/variant; an interrupted run may have
    # stopped before the tree stage recorded the arch property
    return suite.prop("arch") or suite.name.split("/", 1)[0]


def _patches(patched: Side | None, message_ids: Sequence[str]) -> tuple[Patch, ...]:
    if patched is None:
        return ()
    applies = [c for c in patched.group("apply") if c.label.isdigit()]
    total = len(applies)
    out = []
    for c in sorted(applies, key=lambda c: int(c.label)):
        n = int(c.label)
        mid = message_ids[n - 1] if n <= len(message_ids) and message_ids[n - 1] != "-" else ""
        subject = c.properties.get("subject") or (c.message if c.status == "pass" else "")
        out.append(Patch(n, total, subject, c.properties.get("commit", ""), mid, c.status,
                         "" if c.status == "pass" else c.message))
    return tuple(out)


def view(data: Mapping) -> RunView:
    sides = [Side.of(s) for s in data.get("suites", [])]
    outcomes = {a["arch"]: a for a in data.get("arches", [])}
    order = list(dict.fromkeys([_arch_of(s) for s in sides] + list(outcomes)))
    arches = []
    for arch in order:
        mine = [s for s in sides if _arch_of(s) == arch]
        base = next((s for s in mine if s.baseline), None)
        patched = next((s for s in mine if not s.baseline), None)
        more = tuple(s for s in mine if s is not base and s is not patched)
        arches.append(ArchRun(arch, base, patched, more, outcomes.get(arch, {})))
    first_patched = next((a.patched for a in arches if a.patched is not None), None)
    ids = data.get("properties", {}).get("patch_message_ids", "").split()
    return RunView(data, tuple(arches), _patches(first_patched, ids))


def read(run_dir: Path) -> RunView:
    return view(load(run_dir))
