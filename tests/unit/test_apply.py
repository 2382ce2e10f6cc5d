from pathlib import Path

import pytest
import yaml

from pipeline import config
from pipeline.intake import series
from pipeline.intake import tree
from pipeline.model.errors import ApplyFailed, TreeError
from tests.conftest import git


def make_series(layout: config.Layout, repo: Path, edits: list[tuple[str, str, str]], name: str = "demo"):
    """Commit each (old, new, subject) edit of kernel/workqueue.c on a side branch, export with format-patch."""
    git(repo, "checkout", "-q", "-b", "work")
    for old, new, subject in edits:
        f = repo / "kernel" / "workqueue.c"
        f.write_text(f.read_text().replace(old, new))
        git(repo, "commit", "-q", "-am", f"{subject}\n\nWhy it matters.\n\nSigned-off-by: A <a@example.org>")
    out = layout.patches / name
    out.mkdir(parents=True)
    git(repo, "format-patch", "-q", "-o", str(out), "master..work")
    git(repo, "checkout", "-q", "master")
    git(repo, "branch", "-q", "-D", "work")
    files = sorted(p.name for p in out.glob("*.patch"))
    meta = {
        "name": name, "title": "demo", "version": 1, "base": "linux-7.2", "author": "Test Author",
        "date": "2026-01-01", "patches": [{"file": f, "subject": e[2]} for f, e in zip(files, edits)],
    }
    (out / "series.yaml").write_text(yaml.safe_dump(meta))
    return config.load_series(layout, name)


EDITS = [
    ("int line10;", "int line10 = 1;", "workqueue: first change"),
    ("int line30;", "long line30;", "workqueue: second change"),
]


def state(repo: Path) -> tuple[str, str, str]:
    return git(repo, "rev-parse", "HEAD"), git(repo, "branch", "--list"), git(repo, "status", "--porcelain")


def test_apply_one_commit_per_patch(tmp_layout, small_repo):
    s = make_series(tmp_layout, small_repo, EDITS)
    before = state(small_repo)
    info = tree.user_tree(small_repo)
    result = series.apply(tmp_layout, s, info)
    assert result.worktree.is_relative_to(tmp_layout.cache)
    log = git(result.worktree, "log", "--format=%an|%s", f"{info.commit}..HEAD").splitlines()
    assert log == ["Test Author|workqueue: second change", "Test Author|workqueue: first change"]
    assert [p.commit for p in result.patches][-1] == git(result.worktree, "rev-parse", "HEAD").strip()
    text = (result.worktree / "kernel" / "workqueue.c").read_text()
    assert "int line10 = 1;" in text and "long line30;" in text
    # The user's checkout: same HEAD, same branches, clean working tree.
    assert state(small_repo) == before


def test_apply_is_reproducible(tmp_layout, small_repo):
    s = make_series(tmp_layout, small_repo, EDITS)
    info = tree.user_tree(small_repo)
    first = series.apply(tmp_layout, s, info)
    second = series.apply(tmp_layout, s, info)
    assert first.head == second.head


def test_conflict_names_patch_file_and_hunk(tmp_layout, small_repo):
    s = make_series(tmp_layout, small_repo, EDITS)
    # The tree moved on under the second patch's hunk.
    f = small_repo / "kernel" / "workqueue.c"
    f.write_text(f.read_text().replace("int line29;", "int line29_renamed;"))
    git(small_repo, "commit", "-q", "-am", "upstream moved")
    info = tree.user_tree(small_repo)
    with pytest.raises(ApplyFailed) as exc:
        series.apply(tmp_layout, s, info)
    err = exc.value
    assert err.exit_code == 1
    assert err.patch == 2
    assert 'patch 2/2 "workqueue: second change"' in str(err)
    assert "0002-workqueue-second-change.patch" in str(err)
    report = err.fields["report"]
    assert "kernel/workqueue.c: hunk at line 27 failed (@@ -27,7 +27,7 @@)" in report
    # expected vs actual, with the differing line marked
    assert any(ln.startswith("!") and "int line29;" in ln and "int line29_renamed;" in ln
               for ln in report.splitlines())
    # nothing half-applied left behind
    assert not series.worktree_dir(tmp_layout, info, s).exists()
    assert "demo" not in git(small_repo, "worktree", "list")


def test_onto_and_bad_revision(tmp_layout, small_repo):
    with pytest.raises(TreeError) as exc:
        tree.user_tree(small_repo, "no-such-rev")
    assert "no-such-rev" in str(exc.value)
    with pytest.raises(TreeError):
        tree.user_tree(small_repo.parent / "absent")


def test_parse_hunks_old_side():
    patch = (
        "diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -3,3 +3,3 @@ ctx\n a\n-b\n+c\n d\n"
        "@@ -10,2 +10,3 @@\n x\n+y\n z\n-- \n2.39.5\n"
    )
    hunks = series.parse_hunks(patch)
    assert [(h.path, h.old_start, h.old_lines) for h in hunks] == [
        ("f.c", 3, ("a", "b", "d")),
        ("f.c", 10, ("x", "z")),
    ]
