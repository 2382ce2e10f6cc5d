"""The real 7.2 tree: fetched through the private apt configuration, every series applies."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import config
from pipeline.intake import series
from pipeline.intake import tree
from tests.conftest import ROOT


def etc_apt_snapshot() -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in Path("/etc/apt").rglob("*") if p.is_file()}


def test_fetch_is_cached_and_leaves_etc_apt_alone(layout, base_tree):
    before = etc_apt_snapshot()
    cfg = config.load_trees(layout).get(None)
    started = time.monotonic()
    again = tree.fetch(layout, cfg)
    assert time.monotonic() - started < 5
    assert again == base_tree
    assert etc_apt_snapshot() == before
    tags = subprocess.run(["git", "-C", str(base_tree.repo), "tag"], capture_output=True, text=True).stdout
    assert "v7.2.13-1" in tags.split()
    makefile = (base_tree.repo / "Makefile").read_text()
    assert "VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 13\n" in makefile
    assert (base_tree.repo / "lib" / "test_workqueue.c").is_file()


def changed_lines(diff: str) -> list[str]:
    """+/- lines of a diff without their whitespace, file headers excluded."""
    return [re.sub(r"\s+", "", ln) for ln in diff.splitlines()
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


@pytest.mark.parametrize("name", config.series_names(config.Layout()))
def test_every_series_applies(layout, base_tree, name):
    s = config.load_series(layout, name)
    result = series.apply(layout, s, base_tree)
    log = subprocess.run(
        ["git", "-C", str(result.worktree), "log", "--reverse", "--format=%an <%ae>|%s", f"{base_tree.commit}..HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert [ln.split("|", 1)[1] for ln in log] == [p.subject for p in s.patches]
    authors = {ln.split("|", 1)[0] for ln in log}
    assert authors == {s.author}
    # The tree's diff carries exactly the patches' changes.
    diff = subprocess.run(["git", "-C", str(result.worktree), "diff", base_tree.commit, "HEAD"],
                          capture_output=True, text=True, check=True).stdout
    mailed = "".join(p.read_text() for p in s.patch_paths())
    assert sorted(changed_lines(diff)) == sorted(changed_lines(_diff_part(mailed, s)))


def _diff_part(text: str, s) -> str:
    """Only the diff bodies of the patch files (not the commit messages)."""
    out = []
    for part in text.split("\ndiff --git ")[1:]:
        out.append(part.split("\n-- \n")[0])
    return "\n".join(out)


def test_cli_apply_prints_worktree_and_commits(base_tree):
    done = subprocess.run([sys.executable, "-m", "pipeline", "apply", "--series", "fastwake-v1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "worktree: " in done.stdout
    assert re.search(r"^  [0-9a-f]{12} \[1/2\] workqueue: split kick_pool\(\)", done.stdout, re.M)
    assert re.search(r"^  [0-9a-f]{12} \[2/2\] workqueue: defer wake_up_process\(\)", done.stdout, re.M)
