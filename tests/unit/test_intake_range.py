"""A series from a branch: `--tree PATH --range BASE..HEAD` on a temporary git repository."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import cli, config
from pipeline.intake import branch
from pipeline.jobs import prepare
from pipeline.model.errors import UsageError
from tests.conftest import ROOT, git


@pytest.fixture
def repo(small_repo: Path) -> Path:
    """v7.2 (tag), a branch `work` of two commits on it, and master one upstream commit further."""
    git(small_repo, "tag", "v7.2")
    git(small_repo, "checkout", "-q", "-b", "work")
    for old, new, subject in (("int line10;", "int line10 = 1;", "wq: first"), ("int line30;", "long line30;",
                                                                               "wq: second")):
        f = small_repo / "kernel" / "workqueue.c"
        f.write_text(f.read_text().replace(old, new))
        git(small_repo, "commit", "-q", "-am", f"{subject}\n\nSigned-off-by: A <a@example.org>")
    git(small_repo, "checkout", "-q", "master")
    (small_repo / "README").write_text("upstream\n")
    git(small_repo, "add", "README")
    git(small_repo, "commit", "-q", "-m", "upstream: a readme")
    return small_repo


def sha(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev).strip()


def test_the_range_is_a_series_on_base(tmp_layout, repo):
    rng = branch.resolve(repo, "v7.2..work")
    assert (rng.base, rng.head) == (sha(repo, "v7.2"), sha(repo, "work"))
    assert [s for _, s in rng.commits] == ["wq: first", "wq: second"]
    s = branch.series(tmp_layout, rng)
    assert (s.name, s.title, s.base_commit, s.author) == ("v7.2..work", "wq: second", rng.base,
                                                          "Test Author <author@example.org>")
    assert [(p.file, p.subject) for p in s.patches] == [("0001-wq-first.patch", "wq: first"),
                                                       ("0002-wq-second.patch", "wq: second")]
    assert s.directory.parent == tmp_layout.cache / "series-from-git"
    assert all(p.is_file() for p in s.patch_paths())


def test_jobs_take_it_like_any_series(tmp_layout, repo):
    """Applied with git am on BASE in a worktree: the same tree as the branch, the user's checkout untouched."""
    before = (sha(repo, "HEAD"), git(repo, "branch", "--list"), git(repo, "status", "--porcelain"))
    s = branch.series(tmp_layout, branch.resolve(repo, "v7.2..work"))
    lay = config.Layout(root=tmp_layout.root, cache=tmp_layout.cache, given=(s,))
    assert config.load_series(lay, "v7.2..work") is s
    co = prepare.checkout(lay, "v7.2..work", repo)
    assert (co.name, co.info.commit, co.applied.base) == ("v7.2..work", sha(repo, "v7.2"), sha(repo, "v7.2"))
    assert [label for label, _ in co.commits] == ["v7.2..work 1/2", "v7.2..work 2/2"]
    assert sha(co.applied.worktree, "HEAD^{tree}") == sha(repo, "work^{tree}")
    assert (sha(repo, "HEAD"), git(repo, "branch", "--list"), git(repo, "status", "--porcelain")) == before


def test_cli_given_range_sets_series_and_baseline(tmp_path, repo, capsys):
    given = cli._given(None, False, "v7.2..work", repo)
    assert (given.series, given.onto, given.range) == ("v7.2..work", sha(repo, "v7.2"), "v7.2..work")
    assert [s.name for s in given.layout.given] == ["v7.2..work"]
    assert capsys.readouterr().out == (f"I: --range v7.2..work: 2 commit(s) of {repo} as series v7.2..work on "
                                       f"{sha(repo, 'v7.2')[:12]}\n")
    # wqci run: both sides at BASE; wqci test/build: the series goes on its base-commit, BASE
    assert prepare.locate(given.layout, None, repo, given.onto)[1].commit == sha(repo, "v7.2")
    assert prepare.locate(given.layout, "v7.2..work", repo)[1].commit == sha(repo, "v7.2")


def test_the_same_range_is_written_once(tmp_layout, repo):
    first = branch.series(tmp_layout, branch.resolve(repo, "v7.2..work"))
    stamp = first.patch_paths()[0].stat().st_mtime_ns
    second = branch.series(tmp_layout, branch.resolve(repo, f"{sha(repo, 'v7.2')}..work"))
    assert second.directory == first.directory and second.patch_paths()[0].stat().st_mtime_ns == stamp


@pytest.mark.parametrize("spec, name", [("v7.2..work", "v7.2..work"), ("HEAD~3..HEAD", "HEAD-3..HEAD"),
                                        ("origin/main..my/topic", "origin-main..my-topic")])
def test_names(spec, name):
    assert branch.name_of(spec) == name


def test_an_open_end_is_head(repo):
    git(repo, "checkout", "-q", "work")
    rng = branch.resolve(repo, "v7.2..")
    assert (rng.spec, rng.head) == ("v7.2..HEAD", sha(repo, "work"))


def test_a_merge_is_not_a_series(repo):
    git(repo, "checkout", "-q", "work")
    git(repo, "merge", "-q", "--no-edit", "master")
    with pytest.raises(UsageError) as exc:
        branch.resolve(repo, "v7.2..work")
    assert str(exc.value) == (f"--range v7.2..work: 1 merge commit(s) in it ({sha(repo, 'work')[:12]}); a series is "
                              "a line of patches")


# (command, the E: line); {r} is the repository. Each must stop before any work.
BAD = [
    ("test --tree {r} --range nosuch..work", "E: --range nosuch..work: 'nosuch' is not a commit in {r}"),
    ("build --tree {r} --range work..master", "E: --range work..master: work is not an ancestor of master; rebase "
                                              "the branch on it or give their merge-base"),
    ("run --tree {r} --range work..work", "E: --range work..work: no commits between work and work"),
    ("run --tree {r} --range v7.2...work", "E: --range v7.2...work: a symmetric difference (A...B) is not a series; "
                                           "use BASE..HEAD"),
    ("test --tree {r} --range work", "E: --range work: use BASE..HEAD, e.g. v7.2..my-branch"),
    ("run --range v7.2..work", "E: --range v7.2..work: give --tree PATH, the checkout the range is in"),
    ("build --series fastwake-v1 --tree {r} --range v7.2..work",
     "E: --range v7.2..work: a series of its own; give it without --series or --base"),
    ("test --base --tree {r} --range v7.2..work",
     "E: --range v7.2..work: a series of its own; give it without --series or --base"),
    ("run --tree {r}", "E: give --series NAME, or --tree PATH --range BASE..HEAD"),
    ("bisect --tree {r} --range nosuch..work --build-fails",
     "E: --range nosuch..work: 'nosuch' is not a commit in {r}"),
    ("bisect --tree {r} --range v7.2..work --good v7.2 --build-fails",
     "E: --range v7.2..work: give it instead of --series, --good and --bad"),
    ("bisect --range v7.2..work --build-fails",
     "E: --range v7.2..work: give --tree PATH, the checkout the range is in"),
]


@pytest.mark.parametrize("args, expected", BAD, ids=[b[0] for b in BAD])
def test_a_bad_range_is_one_e_line_before_any_work(repo, tmp_path, args, expected):
    cache = tmp_path / "cache"
    argv = [a.format(r=repo) for a in args.split()]
    done = subprocess.run([sys.executable, "-m", "pipeline", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "WQCI_CACHE": str(cache)})
    assert done.returncode == 2, done.stderr + done.stdout
    assert done.stderr.splitlines() == [expected.format(r=repo)]
    assert not cache.exists() or {p.name for p in cache.iterdir()} <= {"logs"}
