"""The one subprocess wrapper.

Every external command goes through `run()` (wait for it) or `Process` (keep it
running, e.g. QEMU). Commands are argv lists, never shell strings. Each is logged
as `$ cmd` first, so it can be reproduced by hand, and its output is teed into
the stage's log. Children get their own process group: on timeout, on Ctrl-C
and when wqci exits, the whole group is killed, so no make or QEMU outlives us.
"""

from __future__ import annotations

import atexit
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TextIO

from pipeline.model.errors import CommandFailed, CommandTimeout

log = logging.getLogger("wqci")

LineSink = Callable[[str], None]

# Process groups we started and have not reaped yet; killed at exit.
_live_groups: set[int] = set()
_live_lock = threading.Lock()


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float


def quote(argv: Sequence[str]) -> str:
    return shlex.join(str(a) for a in argv)


def kill_group(pgid: int, grace: float = 3.0) -> None:
    """SIGTERM the group, then SIGKILL it if anything is left after `grace`."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
    with _live_lock:
        _live_groups.discard(pgid)


@atexit.register
def kill_all() -> None:
    with _live_lock:
        groups = list(_live_groups)
    for pgid in groups:
        kill_group(pgid, grace=1.0)


def _pump(stream: TextIO, chunks: list[str], sinks: Iterable[LineSink]) -> None:
    for line in iter(stream.readline, ""):
        chunks.append(line)
        for sink in sinks:
            sink(line)
    stream.close()


class Process:
    """A child in its own process group, its output pumped to sinks by threads."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        on_line: LineSink | None = None,
        stdin_data: str | None = None,
        merge_stderr: bool = False,
    ) -> None:
        self.argv = tuple(str(a) for a in argv)
        self.started = time.monotonic()
        log.debug("$ %s", quote(self.argv))
        self._log_file = None
        sinks: list[LineSink] = []
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(log_path, "a", encoding="utf-8", errors="replace")
            self._log_file.write(f"$ {quote(self.argv)}\n")
            self._log_file.flush()
            sinks.append(self._write_log)
        if on_line is not None:
            sinks.append(on_line)
        full_env = None if env is None else {**os.environ, **env}
        self.popen = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        with _live_lock:
            _live_groups.add(self.popen.pid)
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=_pump, args=(self.popen.stdout, self.out, sinks), daemon=True)]
        if not merge_stderr:
            self._threads.append(
                threading.Thread(target=_pump, args=(self.popen.stderr, self.err, sinks), daemon=True)
            )
        if stdin_data is not None:
            self._threads.append(threading.Thread(target=self._feed, args=(stdin_data,), daemon=True))
        for t in self._threads:
            t.start()

    def _write_log(self, line: str) -> None:
        assert self._log_file is not None
        self._log_file.write(line)
        self._log_file.flush()

    def _feed(self, data: str) -> None:
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(data)
            self.popen.stdin.close()
        except BrokenPipeError:
            pass

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit; kills the group on timeout or Ctrl-C before re-raising."""
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CommandTimeout(timeout=timeout or 0, cmd=quote(self.argv)) from None
        except BaseException:
            self.kill()
            raise
        self._finish()
        return code

    def kill(self) -> None:
        kill_group(self.popen.pid)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._finish()

    def _finish(self) -> None:
        for t in self._threads:
            t.join(timeout=5)
        # The leader is gone; make sure nothing it forked lingers in its group.
        kill_group(self.popen.pid, grace=0.5)
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.close()

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.popen.poll() is None:
            self.kill()
        else:
            self._finish()


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    on_line: LineSink | None = None,
    stdin_data: str | None = None,
    timeout: float | None = None,
    check: bool = True,
    merge_stderr: bool = False,
) -> Completed:
    """Run argv to completion and return its output.

    With check=True a non-zero exit raises CommandFailed carrying the tail of
    the output, so the CLI's one-line error says what went wrong.
    """
    proc = Process(
        argv, cwd=cwd, env=env, log_path=log_path, on_line=on_line,
        stdin_data=stdin_data, merge_stderr=merge_stderr,
    )
    code = proc.wait(timeout=timeout)
    done = Completed(
        argv=proc.argv,
        returncode=code,
        stdout="".join(proc.out),
        stderr="".join(proc.err),
        duration=time.monotonic() - proc.started,
    )
    if check and code != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        tail = f": {lines[-1].strip()}" if lines else ""
        raise CommandFailed(code=code, cmd=quote(done.argv), tail=tail)
    return done


def interactive(argv: Sequence[str]) -> int:
    """Run argv on the user's terminal (an interactive ssh); Ctrl-C goes to it, not to us."""
    log.debug("$ %s", quote(argv))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call(list(argv))
    finally:
        signal.signal(signal.SIGINT, previous)
