"""One writer per build slot.

A slot's worktree and build directory are moved between commits by every build
(`git checkout`, `make`), so two wqci processes in one slot would mix their
trees. The writer holds an flock on slot/lock while it checks out and builds;
a second one waits, saying who holds it (pid, command, since when), up to a
timeout. The kernel drops an flock when its holder dies, even by SIGKILL, so a
lock is never stale. Reading a finished out/<commit>/ needs no lock.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pipeline.model.errors import WqciError

notice = logging.getLogger("wqci.notice")
POLL = 0.5


class LockTimeout(WqciError):
    msg = "{path}: still held by {holder} after {timeout:.0f} s (--lock-timeout)"


def describe_holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text())
        return f"pid {h['pid']} ({h['command']}) since {h['since']}"
    except (OSError, ValueError, KeyError):
        return "another process"


@contextmanager
def held(lock: Path, timeout: float) -> Iterator[None]:
    """Hold the slot's lock for the block; wait for it up to timeout seconds."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = lock.with_name(lock.name + ".holder")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try(fd):
            who = describe_holder(holder)
            notice.info("%s is in use by %s; waiting up to %.0f s", lock.parent, who, timeout)
            deadline = time.monotonic() + timeout
            while not _try(fd):
                if time.monotonic() > deadline:
                    raise LockTimeout(path=lock.parent, holder=who, timeout=timeout)
                time.sleep(POLL)
        tmp = holder.with_name(holder.name + f".{os.getpid()}")
        tmp.write_text(json.dumps({"pid": os.getpid(), "command": " ".join(["wqci", *sys.argv[1:]])[:200],
                                   "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        tmp.replace(holder)
        yield
    finally:
        os.close(fd)


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
