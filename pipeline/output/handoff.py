"""The hand-off files of a run directory, for the people and systems after wqci:
reproduce.sh (run the same kernels again), reply.txt (answer the series' thread)
and kcidb.json (file the results where the other kernel CIs file theirs).

All three are written from results.json (through rundir.RunView), so they exist
after an interrupted run too, and `wqci report DIR` rewrites them.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import config
from pipeline.output import kcidb, reply, reproduce
from pipeline.output.rundir import RunView

REPRODUCE = "reproduce.sh"
REPLY = "reply.txt"
KCIDB = "kcidb.json"


def write(run_dir: Path, view: RunView, layout: config.Layout) -> list[Path]:
    script = run_dir / REPRODUCE
    script.write_text(reproduce.script(view, layout))
    script.chmod(0o755)
    return [script, reply.write(view, run_dir / REPLY, layout), kcidb.write(view, run_dir / KCIDB)]
