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


# ---------------------------------------------------------------- nothing outlives wqci

import signal
import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not alive(pid):
                return True
        except FileNotFoundError:  # reaped between kill(0) and reading its stat
            return True
        time.sleep(0.05)
    return False


def start_wqci_like(script: str) -> tuple[subprocess.Popen, list[int]]:
    """A Python process that starts children through proc and prints their pids, one per line, then 'ready'."""
    code = "import sys, threading, time\nsys.path.insert(0, %r)\nfrom pipeline import proc\n" % str(ROOT)
    code += textwrap.dedent(script) + "\nprint('ready', flush=True)\ntime.sleep(600)\n"
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pids = []
    for line in host.stdout:
        if line.strip() == "ready":
            break
        pids.append(int(line))
    assert pids, "the host process started no child"
    for pid in pids:
        assert alive(pid)
    return host, pids


def sigkill(host: subprocess.Popen) -> None:
    host.send_signal(signal.SIGKILL)
    host.wait(timeout=10)
    host.stdout.close()


def test_pdeathsig_kills_child_when_wqci_is_sigkilled():
    # the reaper is switched off here: only PR_SET_PDEATHSIG can kill the sleep
    host, (sleeper,) = start_wqci_like("""
        proc._Reaper.ensure = classmethod(lambda cls: None)
        p = proc.Process(["sleep", "600"])
        print(p.pid, flush=True)
    """)
    with open(f"/proc/{sleeper}/status") as fh:
        assert "PPid:\t%d\n" % host.pid in fh.read()
    sigkill(host)
    assert wait_gone(sleeper, 5), "sleep outlived its SIGKILLed parent"


def test_reaper_kills_grandchildren_and_other_threads_children_after_sigkill():
    # a grandchild has no PDEATHSIG of ours, nor does a child started from a worker thread
    host, pids = start_wqci_like("""
        p = proc.Process(["sh", "-c", "sleep 600 & echo $!; wait"])
        while not p.out:
            time.sleep(0.01)
        print(p.out[0].strip(), flush=True)
        started = []
        t = threading.Thread(target=lambda: started.append(proc.Process(["sleep", "601"])))
        t.start(); t.join()
        time.sleep(0.3)
        print(started[0].pid, flush=True)
    """)
    grandchild, threads_child = pids
    # the worker thread has ended: its child must still be running (no PDEATHSIG tied to that thread)
    assert alive(threads_child)
    sigkill(host)
    assert wait_gone(grandchild, 5), "make's compiler (a grandchild) outlived wqci"
    assert wait_gone(threads_child, 5), "a child started from a worker thread outlived wqci"


def test_kill_of_an_exited_child_does_not_wait_the_grace_period():
    p = proc.Process(["true"])
    time.sleep(0.3)  # exited, not reaped: its group still answers kill(0)
    started = time.monotonic()
    p.kill()
    assert time.monotonic() - started < 2.0
    assert p.poll() == 0


def test_kill_returns_once_the_child_dies_of_sigterm():
    p = proc.Process(["sleep", "60"])
    started = time.monotonic()
    p.kill()
    assert time.monotonic() - started < 2.0
    assert p.poll() == -signal.SIGTERM
    assert p.pid not in proc._live_groups
