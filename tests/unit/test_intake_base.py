"""`base-commit:` chooses where a series is applied, when the tree has it; otherwise one
line says so and the tree as given is used. The trees are rebuilt bit for bit by
tests/data/mbox/wq_idle_tree.py, so the base-commit the recorded mbox names exists."""

import importlib.util
import os
import subprocess
import sys

import pytest

from pipeline import cli, config
from pipeline.intake import importer
from pipeline.intake import series as series_mod
from pipeline.intake import tree as trees
from pipeline.jobs import prepare
from pipeline.model.errors import ApplyFailed
from tests.conftest import DATA, ROOT, git

WQ = DATA / "mbox" / "wq-idle-v1-v2.mbox"
_spec = importlib.util.spec_from_file_location("wq_idle_tree", DATA / "mbox" / "wq_idle_tree.py")
wq_idle_tree = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wq_idle_tree)
BASE = wq_idle_tree.BASE_COMMIT


def imported(layout: config.Layout, revision: int | None = None, name: str = "wq-idle") -> config.Series:
    importer.import_series(importer.ImportRequest(source=str(WQ), name=name, home=layout.series_home,
                                                  bundled=layout.patches, base="linux-7.2", revision=revision))
    return config.load_series(layout, name)


def test_the_recorded_base_commit_is_the_rebuilt_tree(tmp_path):
    assert wq_idle_tree.base(tmp_path / "t") == BASE
    assert f"base-commit: {BASE}\n" in WQ.read_text()


def test_the_series_goes_on_its_base_commit_when_the_tree_has_it(tmp_layout, tmp_path):
    base, head = wq_idle_tree.moved_on(tmp_path / "linux")
    s = imported(tmp_layout)
    info = trees.user_tree(tmp_path / "linux")
    choice = series_mod.base_choice(s, info)
    assert (choice.commit, choice.found, choice.line) == (
        BASE, True, f"wq-idle: applying on its base-commit {BASE[:12]} (in {tmp_path / 'linux'})")
    co = prepare.checkout(tmp_layout, "wq-idle", tmp_path / "linux")
    assert co.info.commit == base == BASE and co.applied.base == BASE
    wt = co.applied.worktree
    assert git(wt, "rev-parse", "HEAD~2").strip() == BASE
    assert git(wt, "log", "--format=%s", "HEAD~2..HEAD").splitlines() == [
        "workqueue: do not cull a worker that was just kicked", "workqueue: skip claimed workers in kick_pool()"]
    # the trailers from the replies are in the commits
    assert git(wt, "log", "-1", "--format=%(trailers)", "HEAD~1").strip().splitlines() == [
        "Signed-off-by: Ada Kernel <ada@example.org>", "Reviewed-by: Rui Reviewer <rui@example.org>",
        "Acked-by: Mo Maintainer <mo@example.com>"]
    assert "!READ_ONCE(pool->nr_kicked)" in (wt / "kernel" / "workqueue.c").read_text()
    assert git(tmp_path / "linux", "rev-parse", "HEAD").strip() == head  # the user's checkout did not move


def test_without_base_commit_the_tree_as_given_is_used(tmp_layout, tmp_path):
    """v1 was posted without --base: it goes on the tree's HEAD, where upstream moved the line patch 2 changes."""
    wq_idle_tree.moved_on(tmp_path / "linux")
    imported(tmp_layout, revision=1, name="wq-idle-v1")
    with pytest.raises(ApplyFailed) as exc:
        prepare.checkout(tmp_layout, "wq-idle-v1", tmp_path / "linux")
    assert exc.value.patch == 2
    assert str(exc.value).startswith('wq-idle-v1: patch 2/2 "workqueue: do not cull a worker that was just kicked"')


def test_a_tree_without_the_base_commit_gets_one_line_and_its_own_head(tmp_layout, tmp_path):
    head = wq_idle_tree.lookalike(tmp_path / "other")
    s = imported(tmp_layout)
    choice = series_mod.base_choice(s, trees.user_tree(tmp_path / "other"))
    assert (choice.commit, choice.found, choice.line) == (
        head, False, f"wq-idle: base-commit {BASE[:12]} is not in {tmp_path / 'other'}; applying on other "
                     f"{head[:12]} instead")
    co = prepare.checkout(tmp_layout, "wq-idle", tmp_path / "other")
    assert co.applied.base == head
    assert git(co.applied.worktree, "rev-parse", "HEAD~2").strip() == head


def test_the_configured_tree_has_no_upstream_history(tmp_layout):
    """A configured tree is a Debian source import: one commit of wqci's own."""
    s = imported(tmp_layout)
    info = trees.TreeInfo(name="linux-7.2", repo=tmp_layout.cache / "trees" / "linux-7.2", commit="f" * 40,
                          version="7.2.13-1")
    assert series_mod.base_choice(s, info) == series_mod.BaseChoice(
        "f" * 40, False, f"wq-idle: base-commit {BASE[:12]} is not in tree linux-7.2 (a Debian source import, "
                         "without upstream history); applying on linux-7.2 7.2.13-1 instead")
    assert series_mod.on_base(s, info) is info
    # before any fetch: the same answer, nothing fetched
    announced = series_mod.announce_base(tmp_layout, s, None)
    assert (announced.found, announced.line.split(";")[0]) == (
        False, f"wq-idle: base-commit {BASE[:12]} is not in tree linux-7.2 (a Debian source import, without "
               "upstream history)")
    assert not (tmp_layout.cache / "trees").exists()


def test_a_series_without_base_commit_says_nothing(tmp_layout, small_repo):
    s = imported(tmp_layout, revision=1, name="wq-idle-v1")
    assert series_mod.announce_base(tmp_layout, s, small_repo) == series_mod.BaseChoice("", False, "")


def test_run_puts_its_baseline_where_the_series_goes(tmp_path, user_series, capsys):
    """wqci run --series NAME --tree PATH: both sides at the base-commit (RunRequest.onto)."""
    wq_idle_tree.moved_on(tmp_path / "linux")
    imported(config.Layout(cache=tmp_path / "cache"))
    given = cli._given("wq-idle", None, None, tmp_path / "linux")
    assert (given.series, given.onto) == ("wq-idle", BASE)
    assert capsys.readouterr().out == f"I: wq-idle: applying on its base-commit {BASE[:12]} (in {tmp_path / 'linux'})\n"
    _, baseline = prepare.locate(given.layout, None, tmp_path / "linux", given.onto)
    assert baseline.commit == BASE


def test_cli_apply_says_where_the_series_goes(tmp_path, user_series):
    wq_idle_tree.lookalike(tmp_path / "other")
    imported(config.Layout(cache=tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "pipeline", "apply", "--series", "wq-idle", "--tree",
                           str(tmp_path / "other")], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "WQCI_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    head = git(tmp_path / "other", "rev-parse", "HEAD").strip()
    assert done.stderr.splitlines() == [f"W: wq-idle: base-commit {BASE[:12]} is not in {tmp_path / 'other'}; "
                                        f"applying on other {head[:12]} instead"]
    assert done.stdout.splitlines()[0] == f"I: applied wq-idle (2 patches) onto other {head[:12]}"
