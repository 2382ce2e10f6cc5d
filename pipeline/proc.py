"""The one subprocess wrapper.

Every external command goes through `run()` (wait for it) or `Process` (keep it
running, e.g. QEMU). Commands are argv lists, never shell strings. Each is logged
as `$ cmd` first, so it can be reproduced by hand, and its output is teed into
the stage's log. Children get their own process group: on timeout, on Ctrl-C
and when wqci exits, the whole group is killed, so no make or QEMU outlives us.

Even SIGKILL of wqci, which runs no exit handler, leaves nothing behind:
- each child started from the main thread asks the kernel for SIGKILL when we
  die (PR_SET_PDEATHSIG);
- a small reaper process (its own session, so Ctrl-C and a group kill miss it)
  holds the read end of a pipe whose only writer is wqci, and learns every
  group we start. When wqci is gone the pipe reads EOF and the reaper kills
  those groups: grandchildren (make's compilers) and children started from
  other threads, which PDEATHSIG cannot cover, die too.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TextIO

from pipeline.model.errors import CommandFailed, CommandTimeout

log = logging.getLogger("wqci")

LineSink = Callable[[str], None]

# Process groups we started and have not reaped yet (pgid -> leader); killed at exit.
_live_groups: dict[int, subprocess.Popen] = {}
_live_lock = threading.Lock()

PR_SET_PDEATHSIG = 1
KILL_GRACE_AFTER_SIGKILL = 2.0


def _find_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Resolved once, before any fork: the child between fork and exec only calls it.
_PRCTL = _find_prctl()


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float


def quote(argv: Sequence[str]) -> str:
    return shlex.join(str(a) for a in argv)


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, grace: float = 3.0, leader: subprocess.Popen | None = None) -> None:
    """SIGTERM the group, then SIGKILL whatever is left after `grace`.

    Returns as soon as the group is gone. A leader that has exited but is not
    reaped yet still makes the group answer kill(0), so the leader (when
    given) is reaped while waiting; otherwise every kill would sit out the
    whole grace period.
    """
    try:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, KILL_GRACE_AFTER_SIGKILL)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while True:
                if leader is not None:
                    leader.poll()
                if not group_exists(pgid):
                    return
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
    finally:
        _forget(pgid)


def _forget(pgid: int) -> None:
    with _live_lock:
        _live_groups.pop(pgid, None)
    _Reaper.tell(f"-{pgid}")


@atexit.register
def kill_all() -> None:
    with _live_lock:
        groups = list(_live_groups.items())
    for pgid, leader in groups:
        kill_group(pgid, grace=1.0, leader=leader)


def _die_with_us() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when wqci dies.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not
    the process. The main thread lives as long as wqci, so children started
    from it get the signal; a child started from another thread would be
    killed when that thread ends, so it gets none and relies on the reaper.
    """
    if _PRCTL is None or threading.current_thread() is not threading.main_thread():
        return None
    prctl, parent, sig = _PRCTL, os.getpid(), int(signal.SIGKILL)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # we died between fork and prctl: nobody will signal
            os.kill(os.getpid(), sig)

    return preexec


# Runs as `python -c`: reads +pgid/-pgid lines until EOF (wqci is gone), then
# kills the groups still listed: SIGTERM, a short grace, SIGKILL.
REAPER_CODE = """\
import os, signal, sys, time
groups = set()
for line in sys.stdin.buffer:
    try:
        pgid = int(line[1:])
    except ValueError:
        continue
    (groups.add if line[:1] == b"+" else groups.discard)(pgid)
def signal_all(gs, sig):
    alive = set()
    for g in gs:
        try:
            os.killpg(g, sig)
            alive.add(g)
        except OSError:
            pass
    return alive
alive = signal_all(groups, signal.SIGTERM)
deadline = time.monotonic() + 1.0
while alive and time.monotonic() < deadline:
    time.sleep(0.05)
    alive = signal_all(alive, 0)
signal_all(alive, signal.SIGKILL)
"""


class _Reaper:
    """The one reaper of this wqci process, started with its first child."""

    _lock = threading.Lock()
    _owner = 0  # the pid that started it (a forked child needs its own)
    _write_fd = -1
    popen: subprocess.Popen | None = None

    @classmethod
    def ensure(cls) -> None:
        with cls._lock:
            if cls._owner == os.getpid():
                return
            read_fd, write_fd = os.pipe()  # not inheritable: no other child holds the write end
            try:
                cls.popen = subprocess.Popen([sys.executable, "-c", REAPER_CODE], stdin=read_fd,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             start_new_session=True)
            except OSError as exc:
                log.debug("no reaper process: %s", exc)
                os.close(write_fd)
                write_fd = -1
            finally:
                os.close(read_fd)
            cls._owner, cls._write_fd = os.getpid(), write_fd

    @classmethod
    def tell(cls, line: str) -> None:
        if cls._owner != os.getpid() or cls._write_fd < 0:
            return
        try:
            os.write(cls._write_fd, (line + "\n").encode())
        except OSError:  # the reaper was killed: PDEATHSIG still covers the main thread's children
            pass


def _track(popen: subprocess.Popen) -> None:
    with _live_lock:
        _live_groups[popen.pid] = popen
    _Reaper.tell(f"+{popen.pid}")


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
        _Reaper.ensure()
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
            preexec_fn=_die_with_us(),
        )
        _track(self.popen)
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
        kill_group(self.popen.pid, leader=self.popen)
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
        return subprocess.call(list(argv), preexec_fn=_die_with_us())
    finally:
        signal.signal(signal.SIGINT, previous)
