"""`make bench-build`: cold, no-op, workqueue-only and warm-ccache builds of the
x86_64 debug kernel, printed as a table. A benchmark, not a test: the figures
go into the README.

It uses its own cache (`~/.cache/wqci-bench`, or $WQCI_BENCH_CACHE) with its own
ccache directory so "cold" really is cold; the base tree is shared with the
normal cache. Takes 10-15 minutes on 2 cores.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from pipeline import config
from pipeline.build import kernel as build
from pipeline.intake import series
from pipeline.intake import tree
from pipeline.output import console as ui

TARGETS = {"cold": 360.0, "no-op": 10.0, "workqueue.c patch": 60.0}


def main() -> int:
    main_layout = config.Layout()
    bench = Path(os.environ.get("WQCI_BENCH_CACHE", Path.home() / ".cache" / "wqci-bench"))
    layout = config.Layout(cache=bench)
    arch = config.load_arch(layout, os.environ.get("WQCI_BENCH_ARCH", "x86_64"))
    flavor = config.load_flavors(layout).get(os.environ.get("WQCI_BENCH_FLAVOR", "debug"))
    info = tree.fetch(main_layout, config.load_trees(main_layout).get(None))
    shutil.rmtree(bench / "slots", ignore_errors=True)
    shutil.rmtree(bench / "ccache", ignore_errors=True)
    os.environ["WQCI_CCACHE_DIR"] = str(bench / "ccache")
    s = config.load_series(main_layout, "fastwake-v1")
    patched = series.apply(layout, s, info).head
    base = build.BuildRequest(tree=info, arch=arch, flavor=flavor, commit=info.commit, label="base")
    slot = build.slot_for(layout, info, arch, flavor)
    rows = []

    def step(name: str, req: build.BuildRequest) -> build.BuildResult:
        started = time.monotonic()
        result = build.build(layout, req, force=True)
        seconds = time.monotonic() - started
        cc = result.info.get("ccache", {})
        target = TARGETS.get(name)
        rows.append((name, f"{seconds:.1f}", result.compiled, cc.get("hits", "-"), cc.get("cache_miss", "-"),
                     f"<= {target:.0f}" if target else "", result.status.value))
        print(f"I: {name}: {seconds:.1f} s, {result.compiled} objects", flush=True)
        return result

    cold = step("cold", base)
    step("no-op", base)
    step("workqueue.c patch", replace(base, commit=patched, label="fastwake-v1"))
    shutil.rmtree(slot.build)
    TARGETS["fresh dir, warm ccache"] = cold.duration / 4
    step("fresh dir, warm ccache", base)
    print()
    print(f"{arch.name}/{flavor.name} on {os.cpu_count()} cores, make -j{base.jobs}")
    print(ui.table(("build", "seconds", "objects", "ccache hits", "misses", "goal (s)", "result"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
