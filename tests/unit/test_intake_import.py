"""`wqci series import` into the user's home for series, and where `--series NAME` finds
a series: bundled (patches/) or the user's ($WQCI_SERIES, a temporary directory in every
unit test, see tests/unit/conftest.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import config
from pipeline.intake import importer
from pipeline.model.errors import MboxError, UsageError
from tests.conftest import DATA, ROOT

WQ = DATA / "mbox" / "wq-idle-v1-v2.mbox"
BASE = "dd3ea52a6562933ae320c071a7fbc7a5295983cb"
PREREQ = "3ccb04e9da691349d901a7de52cf82bfaa55716a"


def request(tmp_layout: config.Layout, **kw) -> importer.ImportRequest:
    fields = dict(source=str(WQ), name="wq-idle", home=tmp_layout.series_home, bundled=tmp_layout.patches,
                  base="linux-7.2")
    return importer.ImportRequest(**{**fields, **kw})


def wqci(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


def test_import_writes_the_series_into_the_users_home(tmp_layout, user_series):
    assert tmp_layout.series_home == user_series
    done = importer.import_series(request(tmp_layout))
    assert done.directory == user_series / "wq-idle"
    assert sorted(p.name for p in done.directory.iterdir()) == [
        "0001-workqueue-skip-claimed-workers-in-kick_pool.patch",
        "0002-workqueue-do-not-cull-a-worker-that-was-just-kicked.patch",
        "cover-letter.txt", "series.yaml"]
    assert not any(tmp_layout.patches.iterdir())  # never into wqci's own patches/
    meta = yaml.safe_load((done.directory / "series.yaml").read_text())
    assert {k: meta[k] for k in ("name", "title", "version", "base", "base_commit", "prerequisite_patch_ids",
                                 "author", "date", "cover")} == {
        "name": "wq-idle", "title": "workqueue: keep kicked workers out of the idle cull", "version": 2,
        "base": "linux-7.2", "base_commit": BASE, "prerequisite_patch_ids": [PREREQ],
        "author": "Ada Kernel <ada@example.org>", "date": "2026-06-08",
        "cover": {"file": "cover-letter.txt", "message_id": "<20260608-wq-idle-v2-0-7c41d2e9a0b3@example.org>"},
    }
    assert meta["patches"] == [
        {"file": "0001-workqueue-skip-claimed-workers-in-kick_pool.patch",
         "subject": "workqueue: skip claimed workers in kick_pool()",
         "message_id": "<20260608-wq-idle-v2-1-7c41d2e9a0b3@example.org>",
         "trailers": ["Reviewed-by: Rui Reviewer <rui@example.org>", "Acked-by: Mo Maintainer <mo@example.com>"]},
        {"file": "0002-workqueue-do-not-cull-a-worker-that-was-just-kicked.patch",
         "subject": "workqueue: do not cull a worker that was just kicked",
         "message_id": "<20260608-wq-idle-v2-2-7c41d2e9a0b3@example.org>",
         "trailers": ["Tested-by: Tess Tëster <tess@example.net>", "Acked-by: Mo Maintainer <mo@example.com>"]},
    ]
    assert meta["links"] == [f"https://lore.kernel.org/r/20260608-wq-idle-v2-{n}-7c41d2e9a0b3@example.org"
                             for n in (0, 1, 2)]
    assert meta["description"].startswith("A worker woken by kick_pool() stays on the pool's idle list")
    assert meta["description"].endswith("- Link to v1: https://lore.kernel.org/r/"
                                         "20260528-wq-idle-v1-0-7c41d2e9a0b3@example.org")
    cover = (done.directory / "cover-letter.txt").read_text()
    assert cover.startswith("From: Ada Kernel <ada@example.org>\nDate: Mon, 08 Jun 2026 09:00:00 +0000\n"
                            "Subject: [PATCH v2 0/2] workqueue: keep kicked workers out of the idle cull\n"
                            "Message-Id: <20260608-wq-idle-v2-0-7c41d2e9a0b3@example.org>\n\n")
    # --series NAME finds it, with everything series.yaml recorded
    s = config.load_series(tmp_layout, "wq-idle")
    assert (s.directory, s.base_commit, s.prerequisite_patch_ids, s.cover_file, s.cover_message_id) == (
        user_series / "wq-idle", BASE, (PREREQ,), "cover-letter.txt",
        "<20260608-wq-idle-v2-0-7c41d2e9a0b3@example.org>")
    assert [p.trailers for p in s.patches] == [tuple(e["trailers"]) for e in meta["patches"]]


def test_an_older_revision_has_no_base_commit(tmp_layout):
    done = importer.import_series(request(tmp_layout, name="wq-idle-v1", revision=1))
    meta = yaml.safe_load((done.directory / "series.yaml").read_text())
    assert meta["version"] == 1 and "base_commit" not in meta and "prerequisite_patch_ids" not in meta
    assert config.load_series(tmp_layout, "wq-idle-v1").base_commit == ""


@pytest.mark.parametrize("kw, error, text", [
    ({"name": "fastwake-v1"}, UsageError, "--name fastwake-v1: a series bundled with wqci has that name ({bundled}/"
                                          "fastwake-v1); choose another"),
    ({"name": "../up"}, UsageError, "--name ../up: use letters, digits, '.', '_' and '-'"),
    ({"revision": 5}, MboxError, f"{WQ}: no revision v5 in it; it has v1, v2"),
])
def test_refusals_write_nothing(tmp_layout, kw, error, text):
    bundled = tmp_layout.patches
    shutil.copytree(ROOT / "patches" / "fastwake-v1", bundled / "fastwake-v1")
    with pytest.raises(error) as exc:
        importer.import_series(request(tmp_layout, **kw))
    assert str(exc.value) == text.format(bundled=bundled)
    assert not tmp_layout.series_home.exists() or not any(tmp_layout.series_home.iterdir())


def test_an_existing_series_is_replaced_only_with_force(tmp_layout):
    importer.import_series(request(tmp_layout, revision=1))
    with pytest.raises(UsageError) as exc:
        importer.import_series(request(tmp_layout))
    existing = tmp_layout.series_home / "wq-idle"
    assert str(exc.value) == f"--name wq-idle: {existing} already exists (--force replaces it)"
    assert config.load_series(tmp_layout, "wq-idle").version == 1
    importer.import_series(request(tmp_layout, force=True))
    assert config.load_series(tmp_layout, "wq-idle").version == 2
    assert [p.name for p in tmp_layout.series_home.iterdir()] == ["wq-idle"]  # no temporary left


def test_a_users_series_shadows_a_bundled_one_of_the_same_name(tmp_layout):
    shutil.copytree(ROOT / "patches" / "fastwake-v1", tmp_layout.patches / "fastwake-v1")
    shutil.copytree(ROOT / "patches" / "fastwake-v1", tmp_layout.series_home / "fastwake-v1")
    entries = config.series_entries(tmp_layout)
    assert [(e.name, e.origin, e.shadowed) for e in entries] == [
        ("fastwake-v1", "bundled", True), ("fastwake-v1", "user", False)]
    assert config.load_series(tmp_layout, "fastwake-v1").directory == tmp_layout.series_home / "fastwake-v1"


def test_an_unknown_name_lists_both_places(tmp_layout):
    shutil.copytree(ROOT / "patches" / "fastwake-v1", tmp_layout.patches / "fastwake-v1")
    importer.import_series(request(tmp_layout))
    with pytest.raises(Exception) as exc:
        config.load_series(tmp_layout, "nope")
    assert str(exc.value) == (f"unknown series 'nope' ({tmp_layout.patches} and {tmp_layout.series_home}); "
                              "options are: fastwake-v1, wq-idle")


def test_cli_import_list_and_show(user_series, tmp_path):
    done = wqci("series", "import", str(WQ), "--name", "wq-idle", WQCI_CACHE=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"I: wq-idle: v2 (of v1, v2), 2 patch(es), 4 trailer(s) from replies, into {user_series / 'wq-idle'}; "
        "skipped 9 other message(s)",
        "  0001-workqueue-skip-claimed-workers-in-kick_pool.patch",
        "      + Reviewed-by: Rui Reviewer <rui@example.org>",
        "      + Acked-by: Mo Maintainer <mo@example.com>",
        "  0002-workqueue-do-not-cull-a-worker-that-was-just-kicked.patch",
        "      + Tested-by: Tess Tëster <tess@example.net>",
        "      + Acked-by: Mo Maintainer <mo@example.com>",
        "I: wq-idle: base-commit dd3ea52a6562: applied there when the tree has it",
    ]
    assert done.stderr.splitlines() == ["W: wq-idle: needs 1 prerequisite patch(es) (prerequisite-patch-id "
                                        "3ccb04e9da69...), which wqci does not apply"]
    listed = wqci("series", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [ln.split(None, 3)[:3] for ln in listed.stdout.splitlines()[2:]]
    assert rows == [["fastwake-v1", "bundled", "2"], ["fastwake-v1-claim", "bundled", "3"],
                    ["wake-prefer", "bundled", "1"], ["wq-idle", "user", "2"]]
    shown = wqci("series", "show", "wq-idle")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:5] == [
        "wq-idle v2: workqueue: keep kicked workers out of the idle cull",
        "  author: Ada Kernel <ada@example.org>   date: 2026-06-08   base: linux-7.2",
        f"  from:   the user's, {user_series / 'wq-idle'}",
        f"  base-commit: {BASE} (applied there when the tree has it)",
        f"  prerequisite-patch-id: {PREREQ} (not applied by wqci)",
    ]
    assert "        + Tested-by: Tess Tëster <tess@example.net>" in lines
    assert not (tmp_path / "cache").exists()  # importing builds and fetches nothing


def test_cli_list_says_which_of_two_of_a_name_wins(user_series):
    shutil.copytree(ROOT / "patches" / "wake-prefer", user_series / "wake-prefer")
    listed = wqci("series", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [[cell.strip() for cell in ln.split("  ") if cell.strip()][:3] for ln in listed.stdout.splitlines()[2:]]
    assert rows == [["fastwake-v1", "bundled", "2"], ["fastwake-v1-claim", "bundled", "3"],
                    ["wake-prefer", "bundled, shadowed by the user's", "1"], ["wake-prefer", "user", "1"]]
