"""`make bench-demo`: how long the main job (`make demo`'s `wqci run --series fastwake-v1`)
takes, and where the time goes. A benchmark, not a test: it prints a table.

WQCI_BENCH_COLD=1 runs it against an empty cache (a temporary WQCI_CACHE): the tree,
the rootfs and every kernel from nothing, as on a fresh machine. Otherwise it uses
the cache as it is (warm after the first run). WQCI_BENCH_SERIES picks another series.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from pipeline.output import console as ui

GOALS_MIN = {"cold": 25.0, "warm": 8.0}
STAGES = ("tree", "build", "boot")


def phases(results: dict) -> dict[str, float]:
    """Seconds per phase, summed over the JUnit suites of the run (one per side and flavour)."""
    out: dict[str, float] = defaultdict(float)
    for suite in results["suites"]:
        flavor = suite["name"].split("/")[1] if suite["name"].count("/") >= 3 else "?"
        for case in suite["cases"]:
            stage = case["name"].split("#")[0]
            if stage in STAGES:
                out[f"{stage} ({flavor})"] += case.get("duration", 0.0)
            elif stage.startswith("apply"):
                out[f"apply ({flavor})"] += case.get("duration", 0.0)
            elif "." not in stage and stage not in ("interrupted", "ab", "finding") and case.get("status") != "skip":
                out[f"suite {stage} ({flavor})"] += case.get("duration", 0.0)
    return dict(out)


def main() -> int:
    cold = os.environ.get("WQCI_BENCH_COLD") == "1"
    series = os.environ.get("WQCI_BENCH_SERIES", "fastwake-v1")
    with tempfile.TemporaryDirectory(prefix="wqci-bench-demo-") as tmp:
        env = dict(os.environ)
        if cold:
            env["WQCI_CACHE"] = str(Path(tmp) / "cache")
        out = Path(tmp) / "out"
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--series", series, "--ci", "--out", str(out)],
                              env=env)
        wall = time.monotonic() - started
        results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else None
    kind = "cold" if cold else "warm"
    if results is None:
        print(f"E: no results.json (wqci exited {done.returncode})", file=sys.stderr)
        return 1
    rows = [(name, f"{seconds:.0f}") for name, seconds in sorted(phases(results).items(), key=lambda kv: -kv[1])]
    print()
    print(ui.table(("phase", "seconds"), rows))
    arches = results.get("arches", [])
    ab = [a.get("ab", {}) for a in arches]
    print()
    print(ui.table(("cache", "series", "verdict", "exit", "minutes", "goal minutes", "A/B pairs"),
                   [(kind, series, results["verdict"]["status"], done.returncode, f"{wall / 60:.1f}",
                     f"<= {GOALS_MIN[kind]:.0f}", ",".join(str(a.get("pairs", "?")) for a in ab) or "-")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
