"""A series from a branch: `--tree PATH --range BASE..HEAD`.

The commits of the range, oldest first, become a Series whose patches are their
`git format-patch` files and whose base-commit is BASE, so every job takes it as it
takes a mailed series: applied with `git am` on BASE in a worktree (the user's
checkout is never touched), with BASE as the baseline. Every check runs before
anything is written: a range must be BASE..HEAD of commits that exist, BASE an
ancestor of HEAD, and linear (a merge is not a patch).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline import config
from pipeline.intake import tree as trees
from pipeline.model.errors import UsageError

# git's own output, whatever the user's config says (noprefix, signatures, threading, notes)
FORMAT_PATCH = ["format-patch", "--numbered", "--no-cover-letter", "--no-signature", "--no-thread", "--no-notes",
                "--src-prefix=a/", "--dst-prefix=b/"]


@dataclass(frozen=True)
class Range:
    spec: str  # BASE..HEAD, HEAD filled in when left out
    info: trees.TreeInfo  # the checkout, at HEAD of the range
    base: str  # full commit ids
    head: str
    commits: tuple[tuple[str, str], ...]  # (commit, subject), oldest first


def resolve(tree_path: Path, spec: str) -> Range:
    """The validated range; a UsageError naming --range otherwise."""
    def bad(detail: str) -> UsageError:
        return UsageError(detail=f"--range {spec}: {detail}")

    if "..." in spec:
        raise bad("a symmetric difference (A...B) is not a series; use BASE..HEAD")
    base_rev, sep, head_rev = spec.partition("..")
    if not sep or not base_rev:
        raise bad("use BASE..HEAD, e.g. v7.2..my-branch")
    info = trees.user_tree(tree_path)
    base, head = (_commit(info, rev, bad) for rev in (base_rev, head_rev or "HEAD"))
    if trees.git(info.repo, "merge-base", "--is-ancestor", base, head, check=False).returncode != 0:
        raise bad(f"{base_rev} is not an ancestor of {head_rev or 'HEAD'}; rebase the branch on it or give "
                  f"their merge-base")
    merges = trees.git(info.repo, "rev-list", "--merges", f"{base}..{head}").stdout.split()
    if merges:
        raise bad(f"{len(merges)} merge commit(s) in it ({merges[0][:12]}); a series is a line of patches")
    log = trees.git(info.repo, "log", "--reverse", "--format=%H %s", f"{base}..{head}").stdout.splitlines()
    if not log:
        raise bad(f"no commits between {base_rev} and {head_rev or 'HEAD'}")
    commits = tuple((line[:40], line[41:]) for line in log)
    return Range(f"{base_rev}..{head_rev or 'HEAD'}", trees.TreeInfo(info.name, info.repo, head, head[:12], user=True),
                 base, head, commits)


def _commit(info: trees.TreeInfo, rev: str, bad) -> str:
    done = trees.git(info.repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if done.returncode != 0:
        raise bad(f"'{rev}' is not a commit in {info.repo}")
    return done.stdout.strip()


def name_of(spec: str) -> str:
    """A series name from the range as given: v7.2..wq-fix stays, HEAD~3..HEAD -> HEAD-3..HEAD."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", spec).strip("-.") or "range"


def series(layout: config.Layout, rng: Range) -> config.Series:
    """The range as a Series; its patch files live under the cache, one directory per
    (checkout, BASE, HEAD), written once."""
    where = layout.cache / "series-from-git" / f"{rng.info.key}-{rng.base[:12]}-{rng.head[:12]}"
    if not where.is_dir():
        where.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".range.", dir=where.parent) as tmp:
            trees.git(rng.info.repo, *FORMAT_PATCH, "-o", tmp, f"{rng.base}..{rng.head}")
            if where.is_dir():  # another wqci wrote the same range meanwhile
                shutil.rmtree(tmp)
            else:
                Path(tmp).rename(where)
            Path(tmp).mkdir(exist_ok=True)
    files = sorted(p.name for p in where.glob("*.patch"))
    if len(files) != len(rng.commits):
        raise UsageError(detail=f"--range {rng.spec}: git format-patch wrote {len(files)} patch(es) for "
                         f"{len(rng.commits)} commit(s) (an empty commit?); see {where}")
    first = trees.git(rng.info.repo, "log", "-1", "--format=%an <%ae>%n%as", rng.commits[0][0]).stdout.split("\n")
    return config.Series(
        name=name_of(rng.spec), title=rng.commits[-1][1], version=1, base=config.load_trees(layout).default,
        author=first[0], date=first[1], description=f"The commits {rng.spec} of {rng.info.repo}.",
        links=(), patches=tuple(config.PatchRef(file=f, subject=s) for f, (_, s) in zip(files, rng.commits)),
        claims=(), reconstruction=f"git format-patch {rng.base}..{rng.head} in {rng.info.repo}", rebase="",
        directory=where, base_commit=rng.base,
    )
