import os
import time

import pytest

from pipeline import proc
from pipeline.model.errors import CommandFailed, CommandTimeout


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(") ")[1][0] != "Z"


def test_run_captures_and_logs(tmp_path):
    log = tmp_path / "stage.log"
    done = proc.run(["sh", "-c", "echo out; echo err >&2"], log_path=log)
    assert done.returncode == 0
    assert done.stdout == "out\n" and done.stderr == "err\n"
    text = log.read_text()
    assert text.startswith("$ sh -c 'echo out; echo err >&2'\n")
    assert "out\n" in text and "err\n" in text


def test_run_feeds_stdin():
    assert proc.run(["cat"], stdin_data="hello\n").stdout == "hello\n"


def test_failure_carries_last_line():
    with pytest.raises(CommandFailed) as exc:
        proc.run(["sh", "-c", "echo first >&2; echo 'the real reason' >&2; exit 3"])
    assert "exit 3" in str(exc.value) and "the real reason" in str(exc.value)


def test_unchecked_failure_returns_code():
    assert proc.run(["false"], check=False).returncode == 1


def test_timeout_kills_whole_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        proc.run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], timeout=1)
    assert time.monotonic() - started < 10
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the grandchild outlived the timeout"


def test_process_context_kills_on_exception(tmp_path):
    with pytest.raises(RuntimeError):
        with proc.Process(["sleep", "60"]) as p:
            pid = p.pid
            raise RuntimeError("boom")
    assert not alive(pid)


def test_sigterm_ignoring_child_gets_killed():
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        proc.run(["sh", "-c", "trap '' TERM; sleep 30"], timeout=0.5)
    assert time.monotonic() - started < 10
