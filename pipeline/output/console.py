"""Console output: `I:`/`W:`/`E:` lines, tables. Library code never prints; it
returns results and the CLI hands them here.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Sequence


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


class Progress:
    """Stage progress: a rich status line on a terminal, plain `I:` lines otherwise (--ci)."""

    def __init__(self, plain: bool) -> None:
        self.plain = plain or not sys.stdout.isatty()
        self.started = time.monotonic()
        self._status = None

    def __enter__(self) -> "Progress":
        if not self.plain:
            from rich.console import Console

            self._status = Console().status("starting")
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)

    def __call__(self, text: str) -> None:
        line = f"[{time.monotonic() - self.started:7.1f} s] {text}"
        if self._status is not None:
            self._status.update(line)
            self._status.console.log(text)
        else:
            info(line)
