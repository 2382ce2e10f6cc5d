"""The CLI's contract: one `E:` line and exit 2 for bad input, no traceback."""

import os
import subprocess
import sys
from pathlib import Path


from tests.conftest import ROOT

WQCI = [sys.executable, "-m", "pipeline"]


def wqci(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*WQCI, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def assert_one_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("E: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for needle in needles:
        assert needle in lines[0]


def test_series_list_shows_the_three_series():
    done = wqci("series", "list")
    assert done.returncode == 0, done.stderr
    names = [ln.split()[0] for ln in done.stdout.splitlines()[2:]]
    assert {"fastwake-v1", "fastwake-v1-claim", "wake-prefer"} <= set(names)


def test_series_show():
    done = wqci("series", "show", "fastwake-v1")
    assert done.returncode == 0, done.stderr
    assert "[1/2] workqueue: split kick_pool() into kick_pool_pick() + wake_up_process()" in done.stdout
    assert "Breno Leitao" in done.stdout and "kernel/workqueue.c" in done.stdout


def test_unknown_series(tmp_path):
    done = wqci("apply", "--series", "no-such-series", env={"WQCI_CACHE": str(tmp_path)})
    assert_one_error(done, "unknown series 'no-such-series'", "fastwake-v1")


def test_malformed_mbox(tmp_path):
    bad = tmp_path / "bad.mbox"
    bad.write_text("this is not a mailbox\n")
    done = wqci("series", "import", str(bad), "--name", "x")
    assert_one_error(done, str(bad), "not an mbox")
    assert not (ROOT / "patches" / "x").exists()


def test_missing_mbox(tmp_path):
    done = wqci("series", "import", str(tmp_path / "absent.mbox"), "--name", "x")
    assert_one_error(done, "absent.mbox")


def test_debug_shows_traceback(tmp_path):
    done = wqci("--debug", "series", "show", "no-such-series")
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "E: unknown series" in done.stderr


def test_unknown_tree_name():
    done = wqci("tree", "fetch", "linux-0.1")
    assert_one_error(done, "unknown tree 'linux-0.1'", "linux-7.2")


def test_usage_errors_are_one_e_line():
    assert_one_error(wqci("build", "--base", "--series", "fastwake-v1"), "exactly one of --series NAME or --base")
    assert_one_error(wqci("bisect", "--series", "fastwake-v1"), "give exactly one predicate")


def test_bad_suite_parameter_is_one_e_line(tmp_path):
    done = wqci("test", "--base", "--param", "nosuch.key=1", "--out", str(tmp_path))
    assert_one_error(done, "unknown suite 'nosuch'", "test_workqueue")


def test_a_bare_nightly_shows_help_and_starts_nothing(tmp_path):
    done = wqci("nightly", cwd=tmp_path)
    shown = " ".join((done.stdout + done.stderr).split())  # Typer's help, whatever stream rich picks
    assert done.returncode == 2 and not any(ln.startswith("E: ") for ln in (done.stdout + done.stderr).splitlines())
    assert "nightly [OPTIONS] COMMAND [ARGS]..." in shown and "nothing starts without --matrix FILE" in shown
    assert not (tmp_path / "out").exists()
    assert_one_error(wqci("nightly", "--shard", "1/2", cwd=tmp_path), "--matrix FILE", "configs/nightly.yaml")
    assert not (tmp_path / "out").exists()


def test_nightly_list_with_a_matrix():
    done = wqci("nightly", "--matrix", "configs/nightly.yaml", "--shard", "2/2", "--list")
    assert done.returncode == 0, done.stderr
    cells = done.stdout.split()
    assert cells and all(c.count("--") == 3 for c in cells)
    assert "base--x86_64--debug--smp8-numa2" in cells
