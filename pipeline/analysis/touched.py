"""Which code a series changes, and whether a finding's stacks pass through it.

`changes_of()` reads the diffs of a series' format-patch files. For each patch it
lists the files it changes, the functions whose code it changes, and the changed
lines, numbered as in the final patched tree. `touches()` then walks every frame
of a finding: all stacks of a lockdep or KCSAN report, `? ` frames, inline frames
and decoded `file:line` locations. It names the changed functions the report
passes through: "touches kick_pool (changed by 1/2), __queue_work (changed by 2/2)".

Only the diff is read, never a source tree, so function names come from what the
diff shows. A hunk header names the function that encloses the hunk's start in
the pre-image. The definition lines inside the hunk override it. A header that
is only a lock annotation (`__acquires(&pool->lock)`) names nothing. Code in such
a hunk is still found through decoded file:line locations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from pipeline.triage.findings import Finding

# ---------------------------------------------------------------- reading the diff

DIFF_GIT_RE = re.compile(r"^diff --git a/(.+) b/(.+)$")
HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
COVER_RE = re.compile(r"^Subject:.*\[[^\]]*\b0+/\d+\]", re.M)


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    context: str  # the text after the second @@: git's guess at the enclosing function
    lines: tuple[str, ...]  # each starts with " ", "-" or "+"

    @property
    def old_first(self) -> int:
        # "-10,0" means "after line 10"; the hunk's first line is then 11
        return self.old_start if self.old_len else self.old_start + 1

    @property
    def new_first(self) -> int:
        return self.new_start if self.new_len else self.new_start + 1


@dataclass(frozen=True)
class FileDiff:
    old: str | None  # None for a new file
    new: str | None  # None for a deleted file
    hunks: tuple[Hunk, ...]


def _path(header: str) -> str | None:
    name = header[4:].split("\t")[0].strip()
    if name == "/dev/null":
        return None
    return name[2:] if name.startswith(("a/", "b/")) else name


def _read_hunk(lines: Sequence[str], i: int, m: re.Match) -> tuple[Hunk, int]:
    """The hunk whose header is lines[i], and the index after it; the counts say where it ends."""
    old_len = int(m[2]) if m[2] is not None else 1
    new_len = int(m[4]) if m[4] is not None else 1
    body, old_left, new_left, i = [], old_len, new_len, i + 1
    while i < len(lines) and (old_left > 0 or new_left > 0):
        line = lines[i] or " "  # some mailers strip the space of an empty context line
        i += 1
        if line.startswith("\\"):
            continue  # "\ No newline at end of file"
        if line[0] not in " -+":
            i -= 1
            break  # a truncated hunk: keep what was there
        body.append(line)
        old_left -= line[0] in " -"
        new_left -= line[0] in " +"
    return Hunk(int(m[1]), old_len, int(m[3]), new_len, m[5].strip(), tuple(body)), i


def parse_diff(text: str) -> list[FileDiff]:
    """The file diffs of one patch (git or plain unified format); a cover letter has none."""
    lines = text.splitlines()
    files: list[dict] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := DIFF_GIT_RE.match(line):
            files.append({"old": m[1], "new": m[2], "hunks": []})
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            if not files or files[-1]["hunks"]:
                files.append({"hunks": []})  # a plain unified diff has no "diff --git" line
            files[-1].update(old=_path(line), new=_path(lines[i + 1]))
            i += 1
        elif files and (m := HUNK_RE.match(line)):
            hunk, i = _read_hunk(lines, i, m)
            files[-1]["hunks"].append(hunk)
            continue
        elif files and line.startswith(("rename from ", "rename to ")):
            files[-1]["old" if line.startswith("rename from ") else "new"] = line.split(" ", 2)[2]
        elif files and line.startswith("new file mode"):
            files[-1]["old"] = None
        elif files and line.startswith("deleted file mode"):
            files[-1]["new"] = None
        i += 1
    return [FileDiff(f["old"], f["new"], tuple(f["hunks"])) for f in files]


# ---------------------------------------------------------------- which function a line is in

# Lock and attribute annotations look like calls but name no function.
ANNOTATIONS = {
    "__acquires", "__releases", "__must_hold", "__acquire", "__release", "__cond_acquires", "__cond_releases",
    "__attribute__", "__printf", "__scanf", "__aligned", "__section", "__alloc_size", "__no_context_analysis",
}
CALL_RE = re.compile(r"([A-Za-z_]\w*)?\(|\)")
LABEL_RE = re.compile(r"^[A-Za-z_]\w*:(?!:)")
TYPE_ONLY_RE = re.compile(r"^[A-Za-z_][\w \t*]*$")  # "static struct task_struct *" on its own line
SUFFIX_RE = re.compile(r"(?:\.(?:constprop|isra|part|cold|llvm|lto_priv)(?:\.\d+)?)+$")


def _definition(code: str) -> str | None:
    """The function a column-0 line starts to define or declare, e.g. "static bool kick_pool(...)"."""
    if not re.match(r"[A-Za-z_]", code) or code.startswith(("extern ", "typedef ")):
        return None
    if code.rstrip().endswith(";"):
        return None  # a prototype or a statement-like macro (EXPORT_SYMBOL(...);)
    depth = 0
    for m in CALL_RE.finditer(code):
        if m[0] == ")":
            depth -= 1
            continue
        if depth == 0 and m[1] and m[1] not in ANNOTATIONS:
            return m[1]
        depth += 1
    return None


def _is_code(code: str) -> bool:
    """A line that is neither blank nor a comment line: changing it changes what runs."""
    text = code.strip()
    return bool(text) and not text.startswith(("/*", "//", "*/")) and not re.match(r"\*(\s|/|$)", text)


def _side(lines: Sequence[str], side: str, start: int, step: int) -> Iterator[tuple[int, str]]:
    """(index, code) of the hunk's lines seen from one side ("-" pre-image, "+" post-image)."""
    k = start
    while 0 <= k < len(lines):
        if lines[k][0] in (" ", side):
            yield k, lines[k][1:]
        k += step


def _opens_body(lines: Sequence[str], k: int, side: str) -> bool:
    """Whether the definition at lines[k] is followed by a body, not by ";" (a multi-line prototype)."""
    for n, (_, code) in enumerate(_side(lines, side, k, 1)):
        text = code.rstrip()
        if text.endswith(";"):
            return False
        if "{" in text or n > 12:
            return True
    return True  # the hunk ends inside the signature: its body is off-screen


def _scope(lines: Sequence[str], k: int, side: str, current: str | None) -> str | None:
    """The function that side is in after lines[k]. Code in a function body is indented, so
    only column-0 lines change it: a definition starts one, anything else ends it."""
    code = lines[k][1:]
    if not code or code[0] in " \t#{" or not _is_code(code) or LABEL_RE.match(code):
        return current
    name = _definition(code)
    if name and _opens_body(lines, k, side):
        return name
    if (m := CALL_RE.match(code)) and m[1] in ANNOTATIONS:
        return current  # "__releases(&pool->lock)" between a signature and its "{"
    if TYPE_ONLY_RE.match(code):
        # "static unsigned int" on its own line: the signature goes on below
        following = next(_side(lines, side, k + 1, 1), None)
        if following and (name := _definition(following[1])) and _opens_body(lines, following[0], side):
            return name
    return None  # "}", a declaration, a struct


def _header_function(context: str) -> str | None:
    return _definition(context) if context and context[0] not in " \t" else None


@dataclass(frozen=True)
class _Walk:
    functions: tuple[str, ...]  # changed, in diff order
    lines: dict[int, str | None]  # changed post-image line -> function at that position
    ends: tuple[str | None, str | None]  # (pre-image, post-image) function at the hunk's end


def _walk(hunk: Hunk, start: tuple[str | None, str | None]) -> _Walk:
    """Follow the function each side is in through the hunk; record where code changed.
    A removed line is recorded at the post-image line that now stands in its place."""
    current = {"-": start[0], "+": start[1]}
    functions: list[str] = []
    changed: dict[int, str | None] = {}
    new = hunk.new_first
    for k, line in enumerate(hunk.lines):
        mark, code = line[0], line[1:]
        owner = {}  # the function the line belongs to: a closing "}" still belongs to the one it closes
        for side in ("-+" if mark == " " else mark):
            before = current[side]
            current[side] = _scope(hunk.lines, k, side, before)
            owner[side] = before if code.startswith("}") else current[side]
        if mark != " " and _is_code(code):
            if owner[mark]:
                functions.append(owner[mark])
            changed[new] = owner[mark] if mark == "+" else current["+"]
        new += mark in " +"
    return _Walk(tuple(dict.fromkeys(functions)), changed, (current["-"], current["+"]))


def _file_changes(diff: FileDiff) -> tuple[tuple[str, ...], dict[int, str | None]]:
    """Changed functions and changed post-image lines of one file of one patch."""
    functions: list[str] = []
    lines: dict[int, str | None] = {}
    ends: tuple[str | None, str | None] = (None, None)
    for hunk in diff.hunks:
        header = _header_function(hunk.context)
        # The header comes from the pre-image. If it names the function the previous hunk
        # ended in, nothing was defined in between: the post-image is still where that hunk
        # left it (kick_pool renamed to kick_pool_pick in an earlier hunk).
        post = ends[1] if header is not None and header == ends[0] else header
        walk = _walk(hunk, (header, post))
        functions += walk.functions
        lines.update(walk.lines)
        ends = walk.ends
    return tuple(dict.fromkeys(functions)), lines


def _map_line(n: int, hunks: Sequence[Hunk]) -> int:
    """Where pre-image line n of a later patch ends up in its post-image."""
    shift = 0
    for h in hunks:
        if n < h.old_first:
            break
        if n >= h.old_first + h.old_len:
            shift = (h.new_first + h.new_len) - (h.old_first + h.old_len)
            continue
        old, new = h.old_first, h.new_first
        for line in h.lines:
            if line[0] != "+" and old == n:
                return new  # a context line, or a removed one: the line now in its place
            old += line[0] != "+"
            new += line[0] != "-"
    return n + shift


# ---------------------------------------------------------------- what a series changes


@dataclass(frozen=True)
class Span:
    """Changed code lines first..last of one function (None: outside any named one)."""

    first: int
    last: int
    function: str | None

    def to_dict(self) -> dict:
        return {"first": self.first, "last": self.last, "function": self.function}


@dataclass(frozen=True)
class FileChange:
    path: str  # in the final tree; for a file a later patch deletes, as this patch leaves it
    status: str  # modified, added, deleted or renamed
    functions: tuple[str, ...]  # functions whose code this patch changes, in diff order
    spans: tuple[Span, ...]  # changed code lines, numbered as in the final patched tree

    def to_dict(self) -> dict:
        return {"path": self.path, "status": self.status, "functions": list(self.functions),
                "spans": [s.to_dict() for s in self.spans]}


@dataclass(frozen=True)
class PatchChange:
    index: int  # 1-based
    total: int
    file: str  # the format-patch file's name
    files: tuple[FileChange, ...]

    @property
    def label(self) -> str:
        return f"{self.index}/{self.total}"

    def to_dict(self) -> dict:
        return {"patch": self.label, "file": self.file, "files": [f.to_dict() for f in self.files]}


@dataclass(frozen=True)
class SeriesChanges:
    patches: tuple[PatchChange, ...]

    def to_dict(self) -> dict:
        return {"patches": [p.to_dict() for p in self.patches]}


def _spans(lines: dict[int, str | None]) -> tuple[Span, ...]:
    """Runs of consecutive changed lines in the same function."""
    spans: list[Span] = []
    for n in sorted(lines):
        last = spans[-1] if spans else None
        if last and last.last == n - 1 and last.function == lines[n]:
            spans[-1] = Span(last.first, n, last.function)
        else:
            spans.append(Span(n, n, lines[n]))
    return tuple(spans)


def _to_final(path: str, lines: dict[int, str | None],
              later: Sequence[list[FileDiff]]) -> tuple[str, dict[int, str | None]]:
    """Follow a file's changed lines (and its name) through the patches after this one."""
    for diffs in later:
        diff = next((d for d in diffs if d.old == path), None)
        if diff is None:
            continue
        if diff.new is None:
            return path, {}  # deleted later: no line of it is in the final tree
        lines = {_map_line(n, diff.hunks): f for n, f in lines.items()}
        path = diff.new
    return path, lines


def _status(diff: FileDiff) -> str:
    if diff.old is None:
        return "added"
    if diff.new is None:
        return "deleted"
    return "renamed" if diff.old != diff.new else "modified"


def changes_of(patch_files: Sequence[Path]) -> SeriesChanges:
    """What each patch of a series changes. A cover letter ("[PATCH 0/N]") is not numbered."""
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in patch_files]
    kept = [(path, text) for path, text in zip(patch_files, texts) if not COVER_RE.search(text)]
    diffs = [parse_diff(text) for _, text in kept]
    patches = []
    for i, (path, _) in enumerate(kept):
        files = []
        for diff in diffs[i]:
            functions, lines = _file_changes(diff)
            name = diff.new or diff.old or "?"
            final, lines = _to_final(name, lines if diff.new else {}, diffs[i + 1:])
            files.append(FileChange(final, _status(diff), functions, _spans(lines)))
        patches.append(PatchChange(i + 1, len(kept), path.name, tuple(files)))
    return SeriesChanges(tuple(patches))


# ---------------------------------------------------------------- what a finding passes through

FRAME_RE = re.compile(
    r"(?P<guess>\? )?(?<![\w.$])(?P<name>[A-Za-z_$][\w.$]*)"
    r"(?:\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[[\w-]+\])?(?: (?P<at>[\w./+-]+:\d+))?"  # raw; syzbot adds file:line
    r"| \((?P<locs>[\w./+-]+:\d+(?:[^()]|\([^()]*\))*)\)"  # decode_stacktrace.sh: (file:line [file:line...])
    r"| (?P<inline>[\w./+-]+:\d+) \[inline\])")  # syzbot's inline frame
LOCATION_RE = re.compile(r"([\w./+-]+):(\d+)")


@dataclass(frozen=True)
class Frame:
    name: str
    guessed: bool  # a "? " frame: a stale return address the unwinder found on the stack
    locations: tuple[tuple[str, int], ...]  # innermost inlined first; the last is in `name`


def frames_in(text: str) -> Iterator[Frame]:
    """Every frame of every stack in a report, in order, raw or decoded."""
    for m in FRAME_RE.finditer(text):
        locs = m["locs"] or m["at"] or m["inline"] or ""
        yield Frame(SUFFIX_RE.sub("", m["name"]), bool(m["guess"]),
                     tuple((f, int(n)) for f, n in LOCATION_RE.findall(locs)))


def _same_file(reported: str, path: str) -> bool:
    # decoded paths are relative to the source tree, or absolute when the build used absolute paths
    return reported == path or reported.endswith("/" + path)


def _matches(frame: Frame, changes: SeriesChanges) -> Iterator[tuple[str, str, int]]:
    """(function, file, patch index) for each change this frame passes through."""
    own_file = frame.locations[-1][0] if frame.locations else None
    for patch in changes.patches:
        for fc in patch.files:
            if frame.name in fc.functions and (own_file is None or _same_file(own_file, fc.path)):
                yield frame.name, fc.path, patch.index
            for k, (file, line) in enumerate(frame.locations):
                if not _same_file(file, fc.path):
                    continue
                for span in fc.spans:
                    if span.first <= line <= span.last:
                        # the last location is in the frame's own function; earlier ones were inlined
                        own = k == len(frame.locations) - 1
                        yield (frame.name if own else span.function or frame.name), fc.path, patch.index


@dataclass(frozen=True)
class Touch:
    function: str
    file: str
    patches: tuple[int, ...]  # 1-based indexes of the patches that change it
    total: int
    guessed: bool = False  # seen only in "? " frames

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(f"{i}/{self.total}" for i in self.patches)

    def to_dict(self) -> dict:
        return {"function": self.function, "file": self.file, "patches": list(self.labels),
                "guessed": self.guessed}


def touches(finding: Finding, changes: SeriesChanges) -> list[Touch]:
    """The changed functions the finding's stacks pass through, in order of first appearance."""
    total = len(changes.patches)
    found: dict[tuple[str, str], tuple[set[int], bool]] = {}
    # the decoded report first: the same report, with file:line on each frame
    for frame in [*frames_in(finding.decoded), *frames_in(finding.text)]:
        for function, file, index in _matches(frame, changes):
            patches, guessed = found.get((function, file), (set(), True))
            found[(function, file)] = (patches | {index}, guessed and frame.guessed)
    return [Touch(function, file, tuple(sorted(patches)), total, guessed)
            for (function, file), (patches, guessed) in found.items()]


def describe(found: Sequence[Touch]) -> str:
    """One line, e.g. "touches kick_pool (changed by 1/2), __queue_work (changed by 2/2)"; "" for none."""
    if not found:
        return ""
    names = [t.function for t in found]
    parts = []
    for t in found:
        name = f"{t.function} in {t.file}" if names.count(t.function) > 1 else t.function
        note = "; only in ? frames" if t.guessed else ""
        parts.append(f"{name} (changed by {', '.join(t.labels)}{note})")
    return "touches " + ", ".join(parts)


def changed_paths(patch_files: Sequence[Path]) -> list[str]:
    """Every path a series adds, changes, renames or removes, in first-seen order
    (what selects the default suites of `wqci run`, configs/suites.yaml `paths`)."""
    out: list[str] = []
    for path in patch_files:
        for diff in parse_diff(path.read_text(encoding="utf-8", errors="replace")):
            for name in (diff.old, diff.new):
                if name and name not in out:
                    out.append(name)
    return out
