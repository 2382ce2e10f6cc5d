"""Applying a series the b4 way: each patch fed to `git am -3` on stdin, in a
worktree under the cache that the user's branches never see; on the series'
`base-commit:` when the tree has it (base_choice, the one place that decides).
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.intake import tree as trees
from pipeline.config import Layout, PatchRef, Series, load_trees
from pipeline.model.errors import ApplyFailed
from pipeline.model.status import Status

HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
FAILED_RE = re.compile(r"^error: patch failed: (.+):(\d+)$", re.M)


@dataclass(frozen=True)
class AppliedPatch:
    number: int
    total: int
    ref: PatchRef
    commit: str


@dataclass(frozen=True)
class ApplyResult:
    series: str
    worktree: Path
    base: str
    patches: tuple[AppliedPatch, ...]
    duration: float
    status: Status = Status.PASS
    log: Path | None = None

    @property
    def labelled_commits(self) -> list[tuple[str, str]]:
        """("series n/m", commit) per patch, in order: what builds and bisects step through."""
        return [(f"{self.series} {p.number}/{p.total}", p.commit) for p in self.patches]

    @property
    def head(self) -> str:
        return self.patches[-1].commit if self.patches else self.base


@dataclass(frozen=True)
class Hunk:
    path: str
    old_start: int
    header: str
    old_lines: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class BaseChoice:
    """Where a series goes: on its `base-commit:` when the tree has it, else on the tree as given."""

    commit: str  # the commit to apply on ("" for a configured tree not fetched yet: its import commit)
    found: bool  # the series' base-commit is in the tree and is that commit
    line: str  # one line for the user; "" when the series names no base-commit


def base_choice(s: Series, info: trees.TreeInfo) -> BaseChoice:
    """The one decision about a series' base. A configured tree is a Debian source package
    imported as one commit of wqci's own, so no upstream base-commit can be in it; a user's
    checkout is asked with git."""
    if not s.base_commit:
        return BaseChoice(info.commit, False, "")
    if info.user:
        done = trees.git(info.repo, "rev-parse", "--verify", "--quiet", f"{s.base_commit}^{{commit}}", check=False)
        if done.returncode == 0:
            commit = done.stdout.strip()
            return BaseChoice(commit, True, f"{s.name}: applying on its base-commit {commit[:12]} (in {info.repo})")
        why = f"not in {info.repo}"
    else:
        why = f"not in tree {info.name} (a Debian source import, without upstream history)"
    return BaseChoice(info.commit, False, f"{s.name}: base-commit {s.base_commit[:12]} is {why}; "
                      f"applying on {info.name} {info.version} instead")


def on_base(s: Series, info: trees.TreeInfo) -> trees.TreeInfo:
    """info moved to the series' base-commit when the tree has it; info itself otherwise."""
    choice = base_choice(s, info)
    if not choice.found:
        return info
    return replace(info, commit=choice.commit, version=choice.commit[:12] if info.user else info.version)


def announce_base(layout: Layout, s: Series, tree_path: Path | None) -> BaseChoice:
    """base_choice before any work (no fetch): for the `I:`/`W:` line a command prints first."""
    if not s.base_commit:
        return BaseChoice("", False, "")
    if tree_path is not None:
        return base_choice(s, trees.user_tree(tree_path))
    tree = load_trees(layout).get(s.base)
    info = trees.fetched(layout, tree) or trees.TreeInfo(tree.name, trees.tree_path(layout, tree.name), "",
                                                          tree.version)
    return base_choice(s, info)


def worktree_dir(layout: Layout, info: trees.TreeInfo, series: Series) -> Path:
    return layout.cache / "worktrees" / info.key / series.name


def apply(layout: Layout, series: Series, info: trees.TreeInfo, log_path: Path | None = None,
          onto: tuple[str, str] | None = None) -> ApplyResult:
    """Apply every patch of the series, one commit each, on info's base commit or on
    onto=(label, commit) (a carry series on top of another series)."""
    started = time.monotonic()
    where = worktree_dir(layout, info, series)
    if onto is not None:
        where = where.with_name(f"{onto[0]}+{series.name}")
    dest = trees.worktree(info, where, onto[1] if onto else None, log_path=log_path)
    applied = []
    total = len(series.patches)
    for number, (ref, path) in enumerate(zip(series.patches, series.patch_paths()), start=1):
        text = path.read_text(encoding="utf-8", errors="replace")
        # --committer-date-is-author-date with a fixed committer: re-applying the
        # same series on the same base gives the same commit ids.
        done = trees.git(dest, "am", "-3", "--committer-date-is-author-date", stdin_data=text,
                         log_path=log_path, check=False, timeout=600)
        if done.returncode != 0:
            trees.git(dest, "am", "--abort", log_path=log_path, check=False)
            report = diagnose(dest, text)
            trees.remove_worktree(info, dest, log_path)
            raise ApplyFailed(
                patch=number,
                detail=f"{series.name}: patch {number}/{total} \"{ref.subject}\" ({path.name}) does not apply"
                f"{': ' + report.splitlines()[0] if report else ''}",
                report=report,
            )
        head = trees.git(dest, "rev-parse", "HEAD").stdout.strip()
        applied.append(AppliedPatch(number=number, total=total, ref=ref, commit=head))
    return ApplyResult(
        series=series.name, worktree=dest, base=onto[1] if onto else info.commit, patches=tuple(applied),
        duration=time.monotonic() - started, log=log_path,
    )


#: a carry commit's identity and date are fixed, so the same patches on the same commit
#: give the same commit id (and the build slot's cached output is found again)
CARRY_IDENTITY = {"GIT_AUTHOR_NAME": "wqci", "GIT_AUTHOR_EMAIL": "wqci@localhost", "GIT_COMMITTER_NAME": "wqci",
                  "GIT_COMMITTER_EMAIL": "wqci@localhost", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
                  "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def commit_onto(info: trees.TreeInfo, series: Series, onto: str, log_path: Path | None = None) -> str:
    """Commit a carry series on top of `onto` without a worktree: each patch applied to a
    scratch index (`git apply --cached`) and committed with `git commit-tree`, a second or
    so on a kernel tree where a worktree costs a checkout and its disk. The last commit;
    ApplyFailed names the patch that does not apply."""
    head = onto
    with tempfile.TemporaryDirectory(prefix="wqci-carry-") as scratch:
        env = {**CARRY_IDENTITY, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        for number, (ref, path) in enumerate(zip(series.patches, series.patch_paths()), start=1):
            trees.git(info.repo, "read-tree", head, env=env, log_path=log_path)
            done = trees.git(info.repo, "apply", "--cached", str(path), env=env, log_path=log_path, check=False)
            if done.returncode != 0:
                first = next((ln for ln in done.stderr.splitlines() if ln.startswith("error:")), "git apply failed")
                raise ApplyFailed(patch=number, detail=f"{series.name}: patch {number}/{len(series.patches)} "
                                  f"\"{ref.subject}\" ({path.name}) does not apply: {first.removeprefix('error: ')}")
            tree = trees.git(info.repo, "write-tree", env=env, log_path=log_path).stdout.strip()
            head = trees.git(info.repo, "commit-tree", tree, "-p", head, "-m", ref.subject, env=env,
                             log_path=log_path).stdout.strip()
    return head


def parse_hunks(patch: str) -> list[Hunk]:
    """The hunks of a unified diff with the old side's lines (context and removals)."""
    hunks: list[Hunk] = []
    path = ""
    current: list[str] | None = None
    header = ""
    start = 0
    lines = patch.splitlines()
    for line in lines + ["\0end"]:
        if current is not None and (line.startswith(("@@", "diff --git", "\0end", "-- ")) or line == "--"):
            hunks.append(Hunk(path=path, old_start=start, header=header, old_lines=tuple(current)))
            current = None
        if line.startswith("diff --git "):
            path = line.split(" b/", 1)[-1]
        elif line.startswith("--- a/"):
            path = line[6:]
        m = HUNK_RE.match(line)
        if m:
            current, header, start = [], line, int(m.group(1))
        elif current is not None and line[:1] in (" ", "-", ""):
            current.append(line[1:])
    return hunks


def diagnose(worktree: Path, patch: str) -> str:
    """Which file and hunk failed, with its expected lines beside the tree's lines."""
    check = trees.git(worktree, "apply", "--check", "--verbose", "-", stdin_data=patch, check=False)
    output = check.stderr + check.stdout
    m = FAILED_RE.search(output)
    if not m:
        errors = [ln for ln in output.splitlines() if ln.startswith("error:")]
        return errors[0].removeprefix("error: ") if errors else "git am failed (see the log)"
    path, line = m.group(1), int(m.group(2))
    hunk = next((h for h in parse_hunks(patch) if h.path == path and h.old_start == line), None)
    head = f"{path}: hunk at line {line} failed"
    if hunk is None:
        return head
    return head + f" ({hunk.header.split(' @@')[0]} @@)\n" + side_by_side(worktree / path, hunk)


def side_by_side(file: Path, hunk: Hunk, width: int = 58) -> str:
    try:
        actual = file.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        actual = []
    first = max(hunk.old_start - 1, 0)
    tree_lines = actual[first:first + len(hunk.old_lines)]
    rows = [f"  {'expected by the patch':<{width}} | {file.name} lines {first + 1}-{first + len(tree_lines)}"]
    for i in range(max(len(hunk.old_lines), len(tree_lines))):
        want = hunk.old_lines[i] if i < len(hunk.old_lines) else ""
        have = tree_lines[i] if i < len(tree_lines) else ""
        mark = " " if want == have else "!"
        rows.append(f"{mark} {_cell(want, width)} | {_cell(have, width)}")
    return "\n".join(rows)


def _cell(text: str, width: int) -> str:
    text = text.expandtabs(8)
    return (text[: width - 1] + "~") if len(text) > width else f"{text:<{width}}"


def diffstat(layout: Layout, series: Series) -> str:
    """`git apply --stat` over the series' patch files (needs no tree)."""
    out = []
    for path in series.patch_paths():
        done = trees.proc.run(["git", "apply", "--stat", str(path)], check=False)
        out.append(done.stdout.rstrip())
    return "\n".join(out)
