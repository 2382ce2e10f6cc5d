"""The kernel source: a pinned Debian source package unpacked into a git repository
in the cache, or a user's own checkout, and the worktrees wqci works in.

A user's checkout is never modified: wqci only adds detached worktrees that live
under the cache (git records them in the checkout's .git/worktrees, nothing else).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline import proc
from pipeline.intake import apt
from pipeline.config import Layout, Tree
from pipeline.model.errors import CommandFailed, FetchError, TreeError

# Fixed identity and date for the import commit: the same .deb gives the same
# commit id on every machine, which keeps build provenance comparable.
IMPORT_ENV = {
    "GIT_AUTHOR_NAME": "wqci",
    "GIT_AUTHOR_EMAIL": "wqci@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "wqci",
    "GIT_COMMITTER_EMAIL": "wqci@localhost",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
}
GIT_IDENTITY = ["-c", "user.name=wqci", "-c", "user.email=wqci@localhost"]


def git(repo: Path, *args: str, **kwargs) -> proc.Completed:
    return proc.run(["git", "-C", str(repo), *GIT_IDENTITY, *args], **kwargs)


@dataclass(frozen=True)
class TreeInfo:
    """A base tree ready to use: a git repository and the commit to start from."""

    name: str
    repo: Path
    commit: str
    version: str
    user: bool = False

    @property
    def key(self) -> str:
        """A short name for cache paths: the tree name, or a hash of a user's path."""
        if not self.user:
            return self.name
        return "user-" + hashlib.sha256(str(self.repo).encode()).hexdigest()[:10]


def tree_path(layout: Layout, name: str) -> Path:
    return layout.cache / "trees" / name


def _rev(repo: Path, rev: str) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").stdout.strip()
    except CommandFailed:
        raise TreeError(name=str(repo), detail=f"revision '{rev}' not found") from None


def fetched(layout: Layout, tree: Tree) -> TreeInfo | None:
    repo = tree_path(layout, tree.name)
    if not (repo / ".git").is_dir():
        return None
    done = git(repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{tree.tag}^{{commit}}", check=False)
    if done.returncode != 0:
        return None
    return TreeInfo(name=tree.name, repo=repo, commit=done.stdout.strip(), version=tree.version)


def fetch(layout: Layout, tree: Tree, log_path: Path | None = None) -> TreeInfo:
    """Download, verify and unpack the tree once; later calls reuse it."""
    have = fetched(layout, tree)
    if have is not None:
        return have
    deb = _download(layout, tree, log_path)
    final = tree_path(layout, tree.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{tree.name}.", dir=final.parent) as tmp:
        src = _unpack(deb, tree, Path(tmp), log_path)
        env = IMPORT_ENV
        git(src, "init", "-q", log_path=log_path)
        # Debian's linux-source ships a .gitignore that ignores the whole top level
        # (`/*`), so everything has to be added with -f.
        git(src, "add", "-f", "-A", log_path=log_path, env=env, timeout=1800)
        git(src, "commit", "-q", "-m", f"{tree.package} {tree.version}\n\nImported by wqci from {deb.name}.",
            log_path=log_path, env=env, timeout=600)
        git(src, "tag", tree.tag, log_path=log_path)
        if final.exists():
            shutil.rmtree(final)
        src.rename(final)
    info = fetched(layout, tree)
    assert info is not None
    return info


def _download(layout: Layout, tree: Tree, log_path: Path | None) -> Path:
    private = apt.PrivateApt.for_suite(layout.cache, tree.suite)
    deb = private.download(tree.package, tree.version, layout.cache / "debs", log_path=log_path)
    digest = apt.sha256(deb)
    if digest != tree.sha256:
        bad = deb.with_suffix(".deb.bad")
        deb.rename(bad)
        raise FetchError(what=deb.name, detail=f"sha256 {digest} does not match the pinned {tree.sha256} "
                         f"(moved aside to {bad})")
    return deb


def _unpack(deb: Path, tree: Tree, tmp: Path, log_path: Path | None) -> Path:
    proc.run(["dpkg-deb", "-x", str(deb), str(tmp / "deb")], log_path=log_path, timeout=600)
    tarball = tmp / "deb" / tree.tarball
    if not tarball.is_file():
        raise FetchError(what=deb.name, detail=f"does not contain {tree.tarball}")
    proc.run(["tar", "-C", str(tmp), "-xf", str(tarball)], log_path=log_path, timeout=1800)
    shutil.rmtree(tmp / "deb")
    dirs = [p for p in tmp.iterdir() if p.is_dir()]
    if len(dirs) != 1 or not (dirs[0] / "Makefile").is_file():
        raise FetchError(what=tarball.name, detail="expected one kernel source directory inside")
    return dirs[0]


def user_tree(path: Path, rev: str = "HEAD") -> TreeInfo:
    repo = path.expanduser().resolve()
    if not repo.is_dir():
        raise TreeError(name=str(path), detail="no such directory")
    done = git(repo, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0:
        raise TreeError(name=str(path), detail="not a git checkout")
    top = Path(done.stdout.strip()).resolve()
    if top != repo:  # a subdirectory: the enclosing repository is not what the user named
        raise TreeError(name=str(path), detail=f"not the top of a git checkout (it is inside {top}); "
                        f"give --tree {top} if that is the kernel tree")
    commit = _rev(top, rev)
    return TreeInfo(name=top.name, repo=top, commit=commit, version=commit[:12], user=True)


def resolve(layout: Layout, tree: Tree, user_path: Path | None, onto: str | None,
            log_path: Path | None = None) -> TreeInfo:
    """The tree to work on: a user's checkout, or the named tree (fetched if needed)."""
    if user_path is not None:
        return user_tree(user_path, onto or "HEAD")
    info = fetch(layout, tree, log_path)
    if onto:
        commit = _rev(info.repo, onto)
        info = TreeInfo(name=info.name, repo=info.repo, commit=commit, version=info.version)
    return info


def worktree(info: TreeInfo, dest: Path, rev: str | None = None, log_path: Path | None = None) -> Path:
    """A clean detached worktree of info at rev (default: the tree's base commit).

    An existing worktree of the same repository is reset in place (checkout -f and
    clean -x touch only what differs), which is much cheaper than a new checkout of
    ~95k files.
    """
    rev = rev or info.commit
    if (dest / ".git").is_file():
        common = git(dest, "rev-parse", "--git-common-dir", check=False).stdout.strip()
        if common and Path(dest, common).resolve() == (info.repo / ".git").resolve():
            git(dest, "am", "--abort", log_path=log_path, check=False)
            git(dest, "checkout", "-q", "-f", "--detach", rev, log_path=log_path, timeout=1800)
            git(dest, "clean", "-fdxq", log_path=log_path, timeout=1800)
            return dest
    remove_worktree(info, dest, log_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    git(info.repo, "worktree", "add", "-q", "--detach", str(dest), rev, log_path=log_path, timeout=1800)
    return dest


def remove_worktree(info: TreeInfo, dest: Path, log_path: Path | None = None) -> None:
    if dest.exists():
        done = git(info.repo, "worktree", "remove", "--force", str(dest), log_path=log_path, check=False)
        if done.returncode != 0 and dest.exists():
            shutil.rmtree(dest)
    git(info.repo, "worktree", "prune", log_path=log_path)


def describe(layout: Layout, tree: Tree) -> dict[str, str]:
    info = fetched(layout, tree)
    row = {"name": tree.name, "package": f"{tree.package} {tree.version} ({tree.suite})"}
    if info is None:
        row.update(state="not fetched", path=str(tree_path(layout, tree.name)), commit="")
    else:
        row.update(state="fetched", path=str(info.repo), commit=info.commit[:12])
    return row


def range_commits(info: TreeInfo, good: str, bad: str) -> list[tuple[str, str]]:
    """(label, commit) from just after good up to bad, oldest first, first-parent."""
    bad_commit = _rev(info.repo, bad)
    done = git(info.repo, "log", "--reverse", "--first-parent", "--format=%H %s", f"{info.commit}..{bad_commit}")
    commits = []
    for line in done.stdout.splitlines():
        commit, _, subject = line.partition(" ")
        commits.append((f"{commit[:12]} {subject[:60]}", commit))
    if not commits:
        raise TreeError(name=str(info.repo), detail=f"no commits between {good} and {bad}")
    return commits
