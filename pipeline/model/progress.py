"""The progress callback every job takes: one line of what it is doing now.

The CLI decides how a line is shown (`I:` lines, or a live status with --ci off);
tests pass a list's append.
"""

from __future__ import annotations

from typing import Callable

Progress = Callable[[str], None]
