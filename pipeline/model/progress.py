"""What a job is doing now, and how long it will take.

Two channels:

- Lines. Every job takes a `progress` callable and says in one line what it is
  doing now (`progress("suite test_workqueue")`); tests pass a list's append.
- Tasks. A stage whose length is known beforehand -- objects to compile, seconds
  until a timeout, pairs of a run -- opens a task:

      with progress.task("build base x86_64/debug", total=1079, unit="objects") as objects:
          ...
          objects.advance()

  and the task sends typed events (TaskStarted, TaskAdvanced, TaskEnded) to the
  reporter the CLI installed with `reporting(...)`. The CLI draws them as bars
  with an estimate of the time left, or as `I:` lines (output/console.py). With
  no reporter installed a task costs nothing.

Tasks reach the reporter through `reporting()` rather than an argument because
they start in stages the jobs reach through interfaces that take no progress
argument: make inside build/kernel.py (behind prepare, the bisect steps and the
nightly cells) and QEMU's wait for SSH (behind a Booter). The slot lock's notices
travel the same way, through a logger.
"""

from __future__ import annotations

import itertools
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator, Union

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TaskStarted:
    task: int
    name: str  # "build base x86_64/debug", "boot x86_64", "suite test_workqueue"
    total: float | None  # None: not known beforehand
    unit: str = ""  # "objects", "pairs", "s"
    clock: bool = False  # the task counts its own seconds; total is its timeout
    basis: str = ""  # where total comes from, e.g. "the slot's last build"
    rough: bool = False  # total is an estimate that may well be off
    kind: str = ""  # tasks of one kind take about as long (the renderer learns how long)


@dataclass(frozen=True)
class TaskAdvanced:
    task: int
    completed: float
    total: float | None


@dataclass(frozen=True)
class TaskEnded:
    task: int
    ok: bool  # False: the task's body raised (a failed make, a boot that timed out)


Event = Union[TaskStarted, TaskAdvanced, TaskEnded]
EventSink = Callable[[Event], None]

_sink: ContextVar[EventSink | None] = ContextVar("wqci_progress_sink", default=None)
_ids = itertools.count(1)


class Task:
    """An open task. advance() may be called from another thread (make's output is read by one)."""

    def __init__(self, sink: EventSink, ident: int, total: float | None) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self.ident = ident
        self.total = total
        self.completed = 0.0

    def advance(self, steps: float = 1) -> None:
        with self._lock:
            self.completed += steps
            event = TaskAdvanced(self.ident, self.completed, self.total)
        self._sink(event)

    def update(self, completed: float) -> None:
        with self._lock:
            self.completed = completed
            event = TaskAdvanced(self.ident, self.completed, self.total)
        self._sink(event)


def _ignore(event: Event) -> None:
    pass


@contextmanager
def reporting(sink: EventSink) -> Iterator[None]:
    """Tasks opened inside go to sink (the CLI's display, or a test's list.append)."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


@contextmanager
def task(name: str, total: float | None = None, unit: str = "", *, clock: bool = False, basis: str = "",
         rough: bool = False, kind: str = "") -> Iterator[Task]:
    """Open a task for the body of the with statement; it ends not ok when the body raises."""
    sink = _sink.get() or _ignore
    ident = next(_ids)
    sink(TaskStarted(ident, name, total, unit, clock, basis, rough, kind or name))
    ok = False
    try:
        yield Task(sink, ident, total)
        ok = True
    finally:
        sink(TaskEnded(ident, ok))
