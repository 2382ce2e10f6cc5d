"""KTAP (Documentation/dev-tools/ktap.rst) read out of a kernel log into frozen results.

The log may be `dmesg` output with `<6>` levels, `[   12.345678]` timestamps and
`[    T1]` caller ids, and unrelated kernel lines before, after and between the KTAP
lines; those are skipped. Nesting follows indentation (the spec says two spaces;
kunit used tabs, our modules four): a `KTAP version` or `# Subtest:` line indented
deeper than the current document opens a nested one, and the next KTAP line at the
outer level closes it. Other deeper lines belong to the current document.

Conventions (kunit's, and our modules'):
- `# text` belongs to the next result line at the same level; those left at the end
  of a nested document go to its parent's result line, those at the end of a
  top-level document are the document's `diagnostics`.
- `# metric: key=value ...` (numbers) fills that result's `metrics`.
- A nested document whose parent result line never came (a crash, a hang) still
  becomes a result: `not ok` with the directive ERROR and a problem saying so.

Nothing here raises on malformed input: what is wrong goes in `problems`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from pipeline.model.status import Status

PREFIX_RE = re.compile(r"^(?:<\d{1,3}>)?(?:\[\s*\d+\.\d+\])?(?:\[\s*[TC]\d+\])?")
VERSION_RE = re.compile(r"^(?:KTAP|TAP) version \d+$")
PLAN_RE = re.compile(r"^1\.\.(\d+)(?:\s|$)")
# the number is optional in TAP, but kernel lines such as "ok, ..." must not pass for results
RESULT_RE = re.compile(r"^(?P<ok>not ok|ok) (?P<number>\d+)\b\s*(?:-\s+)?(?P<rest>.*)$")
DIRECTIVE_RE = re.compile(r"^(SKIP|TODO|XFAIL|TIMEOUT|ERROR)\b\s*(.*)$", re.I)
BAIL_RE = re.compile(r"^Bail out!\s*(.*)$")
SUBTEST_RE = re.compile(r"^Subtest:\s*(.*)$")
METRIC_RE = re.compile(r"^metric:\s*(.*)$")
METRIC_PAIR_RE = re.compile(r"^([\w.-]+)=([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)$")


@dataclass(frozen=True)
class KtapResult:
    number: int
    name: str
    ok: bool
    directive: str = ""  # upper case: SKIP, TODO, XFAIL, TIMEOUT, ERROR or ""
    reason: str = ""  # what follows the directive (or the whole `# ...` when there is none)
    diagnostics: tuple[str, ...] = ()  # without the leading "# "
    metrics: Mapping[str, float] = field(default_factory=dict)
    subtests: tuple[KtapResult, ...] = ()

    @property
    def status(self) -> Status:
        """SKIP whatever ok says; TODO and XFAIL are expected failures, so a pass;
        other directives (TIMEOUT, ERROR) fall back to ok / not ok, as the spec asks."""
        if self.directive == "SKIP":
            return Status.SKIP
        if self.ok or self.directive in ("TODO", "XFAIL"):
            return Status.PASS
        return Status.FAIL


@dataclass(frozen=True)
class KtapDocument:
    version: str  # the version line, e.g. "KTAP version 1"
    plan: int | None
    results: tuple[KtapResult, ...]
    diagnostics: tuple[str, ...] = ()  # the trailing ones, after the last result
    problems: tuple[str, ...] = ()  # of nested documents too, prefixed with the test's name


def strip_prefix(line: str) -> str:
    """The message of a kernel log line: without `<level>`, timestamp, caller id and the space after them."""
    line = line.rstrip("\r\n")
    end = PREFIX_RE.match(line).end()
    if end and line[end:end + 1] == " ":
        end += 1
    return line[end:]


def parse(text: str) -> list[KtapDocument]:
    """Every top-level KTAP document in a log, in order (e.g. one per module load)."""
    parser = _Parser()
    for line in text.splitlines():
        parser.feed(strip_prefix(line))
    parser.end_document()
    return parser.documents


def render(result: KtapResult, indent: str = "") -> list[str]:
    """A result back as KTAP-like lines for people: subtests (indented), diagnostics, the result line."""
    out = [line for sub in result.subtests for line in render(sub, indent + "    ")]
    out += [f"{indent}# {d}" for d in result.diagnostics]
    comment = " ".join(part for part in (result.directive, result.reason) if part)
    line = f"{indent}{'ok' if result.ok else 'not ok'} {result.number}" + (f" {result.name}" if result.name else "")
    out.append(line + (f" # {comment}" if comment else ""))
    return out


@dataclass
class _Frame:
    """A document being read; a nested one waits in its parent's `child` for its result line."""

    indent: int
    version: str = ""
    name: str = ""  # from "# Subtest: name"
    plan: int | None = None
    results: list[KtapResult] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)  # waiting for the next result line
    problems: list[str] = field(default_factory=list)
    child: _Frame | None = None

    def fresh(self) -> bool:
        return self.plan is None and not self.results and self.child is None


class _Parser:
    def __init__(self) -> None:
        self.documents: list[KtapDocument] = []
        self.stack: list[_Frame] = []

    def feed(self, line: str) -> None:
        body = line.strip()
        indent = len(line) - len(line.lstrip())
        is_version = VERSION_RE.match(body) is not None
        if not self.stack:
            if is_version:
                self.stack.append(_Frame(indent, version=body))
            return  # nothing is KTAP before a version line
        if not (is_version or body.startswith("#") or PLAN_RE.match(body) or RESULT_RE.match(body)
                or BAIL_RE.match(body)):
            return  # an unknown line: never part of the structure, wherever it is indented
        while len(self.stack) > 1 and indent < self.stack[-1].indent:
            self.close_nested()
        top = self.stack[-1]
        subtest = SUBTEST_RE.match(body[1:].strip()) if body.startswith("#") else None
        if is_version or subtest:
            self.opener(top, indent, body, subtest.group(1) if subtest else "")
        else:
            self.line(top, body)

    def opener(self, top: _Frame, indent: int, body: str, name: str) -> None:
        """A version or "# Subtest:" line: a nested document, more of a fresh one, or the next document."""
        if indent > top.indent:
            self.stack.append(_Frame(indent, version="" if name else body, name=name))
        elif name:
            if top.fresh() and not top.name:
                top.name = name
            else:
                top.diagnostics.append(f"Subtest: {name}")  # not indented: nothing to nest
        elif top.fresh():
            top.version = body
        elif len(self.stack) > 1:  # a sibling nested document
            self.close_nested()
            self.stack.append(_Frame(indent, version=body))
        else:
            self.end_document()
            self.stack.append(_Frame(indent, version=body))

    def line(self, top: _Frame, body: str) -> None:
        if body.startswith("#"):
            top.diagnostics.append(body[1:].strip())
        elif m := PLAN_RE.match(body):
            if top.plan is not None:
                top.problems.append(f"second plan line 1..{m.group(1)}")
            else:
                top.plan = int(m.group(1))
        elif m := BAIL_RE.match(body):
            top.problems.append(f"bail out: {m.group(1)}" if m.group(1) else "bail out")
        elif m := RESULT_RE.match(body):
            name, _, comment = m.group("rest").partition("#")
            _add_result(top, int(m.group("number")), name.strip(), m.group("ok") == "ok", comment.strip())

    def close_nested(self) -> None:
        frame = self.stack.pop()
        _finish(frame)
        parent = self.stack[-1]
        if parent.child is not None:
            _add_missing(parent)
        parent.child = frame
        parent.diagnostics += frame.diagnostics

    def end_document(self) -> None:
        if not self.stack:
            return
        while len(self.stack) > 1:
            self.close_nested()
        root = self.stack.pop()
        _finish(root)
        if root.plan is None and not root.results:
            root.problems.append("no plan and no results")
        self.documents.append(KtapDocument(root.version, root.plan, tuple(root.results), tuple(root.diagnostics),
                                           tuple(root.problems)))


def _add_result(frame: _Frame, number: int, name: str, ok: bool, comment: str) -> None:
    """A result line: it takes the waiting diagnostics and the nested document before it."""
    expected = len(frame.results) + 1
    if number != expected:
        frame.problems.append(f"result {number} out of order (expected {expected})")
    child, frame.child = frame.child, None
    name = name or (child.name if child else "")
    label = name or str(number)
    directive = DIRECTIVE_RE.match(comment)
    diagnostics = tuple(frame.diagnostics)
    frame.diagnostics = []
    metrics, bad = parse_metrics(diagnostics)
    frame.problems += [f"{label}: metric {token!r} is not key=number" for token in bad]
    if child:
        frame.problems += [f"{label}: {p}" for p in child.problems]
    frame.results.append(KtapResult(
        number=number, name=name, ok=ok, directive=directive.group(1).upper() if directive else "",
        reason=directive.group(2) if directive else comment, diagnostics=diagnostics, metrics=metrics,
        subtests=tuple(child.results) if child else ()))


def _add_missing(frame: _Frame) -> None:
    """The waiting nested document never got its result line: it failed, and that is a problem."""
    name = frame.child.name if frame.child else ""
    number = len(frame.results) + 1
    frame.problems.append(f"test {number}{f' {name!r}' if name else ''}: no result line after its subtests")
    _add_result(frame, number, name, False, "ERROR no result line after its subtests")


def _finish(frame: _Frame) -> None:
    if frame.child is not None:
        _add_missing(frame)
    if frame.plan is not None and frame.plan != len(frame.results):
        frame.problems.append(f"plan 1..{frame.plan} but {len(frame.results)} results")


def parse_metrics(diagnostics: tuple[str, ...]) -> tuple[dict[str, float], list[str]]:
    """`metric: key=value ...` diagnostics as numbers, and the tokens that were not key=number."""
    metrics: dict[str, float] = {}
    bad: list[str] = []
    for diag in diagnostics:
        m = METRIC_RE.match(diag)
        for token in m.group(1).split() if m else ():
            if pair := METRIC_PAIR_RE.match(token):
                metrics[pair.group(1)] = float(pair.group(2))
            else:
                bad.append(token)
    return metrics, bad
