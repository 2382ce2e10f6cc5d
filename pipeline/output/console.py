"""Console output: `I:`/`W:`/`E:` lines, tables, progress. Library code never prints;
it returns results and the CLI hands them here.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress as RichProgress, SpinnerColumn, TextColumn

from pipeline.model import progress as progress_mod
from pipeline.model.progress import Event, TaskAdvanced, TaskEnded, TaskStarted


def info(text: str) -> None:
    print(f"I: {text}", flush=True)


def warn(text: str) -> None:
    print(f"W: {text}", file=sys.stderr, flush=True)


def error(text: str) -> None:
    print(f"E: {text}", file=sys.stderr, flush=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


class _CommandEcho(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        print(f"  {record.getMessage()}", file=sys.stderr, flush=True)


def setup_logging(verbose: bool) -> None:
    """With --verbose every command is echoed as `$ cmd`, ready to reproduce."""
    logger = logging.getLogger("wqci")
    logger.handlers[:] = [_CommandEcho()] if verbose else [logging.NullHandler()]
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False
    # notices from library code (a slot in use by another wqci, a slot repaired) are I: lines
    notices = logging.getLogger("wqci.notice")
    notices.handlers[:] = [_Notice()]
    notices.setLevel(logging.INFO)
    notices.propagate = False


class _Notice(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        print(f"I: {record.getMessage()}", file=sys.stderr, flush=True)




# ---------------------------------------------------------------- progress


def duration(seconds: float) -> str:
    """m:ss, h:mm:ss from an hour on."""
    whole = max(0, int(round(seconds)))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class Shown:
    """A task on display, and what it says about itself at a moment."""

    start: TaskStarted
    t0: float
    expected: float | None = None  # a clock task: how long the last task of its kind took
    completed: float = 0.0
    said: int = 0  # plain lines: the tenths of the way the last line reported ...
    said_at: float = 0.0  # ... and when
    bar: int | None = None  # the rich task

    @property
    def total(self) -> float | None:
        return self.start.total

    def count(self, now: float) -> str:
        """`812/1079 objects`, `1:12 of 5:00`; a count beyond its estimate says what was expected."""
        if self.start.clock:
            elapsed = duration(now - self.t0)
            return f"{elapsed} of {duration(self.total)}" if self.total else elapsed
        done, unit = f"{self.completed:.0f}", self.start.unit
        if self.total is None:
            return f"{done} {unit}"
        if self.completed > self.total:
            return f"{done} {unit} (expected {self.total:.0f})"
        return f"{done}/{'~' if self.start.rough else ''}{self.total:.0f} {unit}"

    def left(self, now: float) -> str:
        """The estimate of the time left: from the pace so far (counts), from the last task of the
        same kind (clocks), else the time to the timeout as a bound."""
        elapsed = now - self.t0
        if self.start.clock:
            if self.expected and elapsed < self.expected:
                return f"about {duration(self.expected - elapsed)} left"
            return f"at most {duration(self.total - elapsed)} left" if self.total else ""
        if not self.total or not 0 < self.completed < self.total:
            return ""
        return f"about {duration(elapsed / self.completed * (self.total - self.completed))} left"

    def tenths(self, now: float) -> int | None:
        """How many tenths of its total the task has done (None without a total)."""
        if not self.total:
            return None
        done = now - self.t0 if self.start.clock else self.completed
        return int(min(done, self.total) * 10 // self.total)


class Progress:
    """Lines and tasks of one command (model/progress.py) for a person or a CI log.

    On a terminal: rich bars, one per open task (objects compiled of the expected count,
    seconds against a timeout, pairs of a run), each with its count and the estimate of
    the time left; the lines scroll above them. With --ci, or when stdout is not a
    terminal: plain `I:` lines, a task's start, one line per tenth of its way (or per
    minute) with the estimate, and its end. Either way a finished task leaves one line.
    """

    QUIET = 60.0  # plain lines: one per tenth of a task, or per minute, whichever comes first

    def __init__(self, plain: bool, console: Console | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.plain = plain or (console is None and not sys.stdout.isatty())
        self.now = now
        self.started = now()
        self._console = console
        self._bars: _Bars | None = None
        self._open: dict[int, Shown] = {}
        self._took: dict[str, float] = {}  # kind -> seconds the last task of that kind took
        self._lock = threading.Lock()
        self._installed: AbstractContextManager[None] | None = None

    def __enter__(self) -> "Progress":
        if not self.plain:
            # soft wrap: the lines printed meanwhile (paths, commands) are not broken at the width
            self._bars = _Bars(self, self._console or Console(soft_wrap=True))
            self._bars.start()
        self._installed = progress_mod.reporting(self.event)
        self._installed.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._installed is not None
        self._installed.__exit__(*exc)
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def __call__(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str) -> None:
        line = f"[{self.now() - self.started:7.1f} s] {text}"
        if self._bars is not None:
            self._bars.console.print(f"I: {line}", markup=False, highlight=False, soft_wrap=True)
        else:
            info(line)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The terminal to someone else for a while (an interactive shell in the guest)."""
        if self._bars is None:
            yield
            return
        self._bars.stop()
        try:
            yield
        finally:
            self._bars.start()

    def event(self, event: Event) -> None:
        """A task's event (model/progress.py); events may come from make's output thread."""
        if isinstance(event, TaskStarted):
            self._started(event)
        elif isinstance(event, TaskAdvanced):
            self._advanced(event)
        elif isinstance(event, TaskEnded):
            self._ended(event)

    def _started(self, event: TaskStarted) -> None:
        now = self.now()
        with self._lock:
            shown = Shown(event, now, expected=self._took.get(event.kind) if event.clock else None, said_at=now)
            self._open[event.task] = shown
        basis = f" ({event.basis})" if event.basis else ""
        if self._bars is None:
            self._say(f"{event.name}: {shown.count(now)}{basis}")
            return
        shown.bar = self._bars.add_task(event.name, total=event.total, count=shown.count(now), left=shown.left(now))

    def _advanced(self, event: TaskAdvanced) -> None:
        now = self.now()
        with self._lock:
            shown = self._open.get(event.task)
            if shown is None:
                return
            shown.completed = event.completed
            due = self._due(shown, now)
        if self._bars is not None and shown.bar is not None:
            self._update_bar(shown, now)
            self._bars.refresh()
        elif due:
            self._say(f"{shown.start.name}: {', '.join(filter(None, (shown.count(now), shown.left(now))))}")

    def _due(self, shown: Shown, now: float) -> bool:
        """Plain lines: whether this count deserves one (a tenth further, or a quiet minute)."""
        tenths = shown.tenths(now)
        if (tenths is not None and tenths > shown.said) or now - shown.said_at >= self.QUIET:
            shown.said = tenths if tenths is not None else shown.said
            shown.said_at = now
            return True
        return False

    def _ended(self, event: TaskEnded) -> None:
        now = self.now()
        with self._lock:
            shown = self._open.pop(event.task, None)
            if shown is None:
                return
            if event.ok:
                self._took[shown.start.kind] = now - shown.t0
        if self._bars is not None and shown.bar is not None:
            self._bars.remove_task(shown.bar)
            self._bars.refresh()
        self._say(f"{shown.start.name}: {self._outcome(shown, event.ok, now)}")

    @staticmethod
    def _outcome(shown: Shown, ok: bool, now: float) -> str:
        took = duration(now - shown.t0)
        counted = "" if shown.start.clock else f"{shown.completed:.0f} {shown.start.unit}".strip() + " "
        if not ok:
            return f"{counted}stopped after {took}"
        return f"{counted or 'done '}in {took}"

    def _update_bar(self, shown: Shown, now: float) -> None:
        assert self._bars is not None and shown.bar is not None
        completed = now - shown.t0 if shown.start.clock else shown.completed
        if shown.total is not None:
            completed = min(completed, shown.total)
        try:
            self._bars.update(shown.bar, completed=completed, count=shown.count(now), left=shown.left(now))
        except KeyError:  # ended meanwhile, in another thread
            pass

    def tick(self) -> None:
        """Before each redraw: clocks move on, and estimates with them."""
        now = self.now()
        with self._lock:
            shown = list(self._open.values())
        for s in shown:
            if s.bar is not None:
                self._update_bar(s, now)


class _Bars(RichProgress):
    """rich's Progress, which lets its owner bring clocks and estimates up to date before each redraw."""

    def __init__(self, owner: Progress, console: Console) -> None:
        self.owner = owner
        super().__init__(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                         TextColumn("{task.fields[count]}"), TextColumn("{task.fields[left]}"),
                         console=console, refresh_per_second=4)

    def get_renderables(self) -> Iterator[RenderableType]:
        self.owner.tick()
        yield from super().get_renderables()
