"""Running a mailed series' Makefiles under bubblewrap.

A mailed series is untrusted input and its Makefiles run on this host: make runs
with the network unshared, the filesystem read-only except the directories the
build has to write, and its own PID namespace that dies with wqci.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from pipeline import proc
from pipeline.model.errors import SandboxError


def bwrap_argv(writable: Sequence[Path], cwd: Path) -> list[str]:
    # No tmpfs on /tmp: the caller points TMPDIR at one of the writable directories.
    argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for path in writable:
        argv += ["--bind", str(path), str(path)]
    return argv + ["--unshare-net", "--unshare-pid", "--die-with-parent", "--chdir", str(cwd), "--"]


def probe() -> str | None:
    """None when bwrap works here, otherwise why not."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian package bubblewrap)"
    done = proc.run([*bwrap_argv([], Path("/")), "true"], check=False, timeout=30)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"bwrap cannot run here: {lines[-1] if lines else 'exit ' + str(done.returncode)}"
    return None


def require(enabled: bool) -> str | None:
    """The reason the sandbox is off (for a W: line), or raise when it is needed but broken."""
    if not enabled:
        return "sandbox disabled with --no-sandbox: the series' Makefiles run unconfined"
    why = probe()
    if why is not None:
        raise SandboxError(detail=f"{why}; refusing to run untrusted Makefiles unconfined (use --no-sandbox)")
    return None
