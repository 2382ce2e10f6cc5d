"""`make bench-boot`: seconds from QEMU's start until SSH answers, debug kernels,
smp8-numa2 under the accelerator wqci picks here (TCG on these machines).
A benchmark, not a test: it prints a table; the figures go into the README.
Kernels come from the build cache (built first if missing)."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from pipeline import config
from pipeline.guest import boot
from pipeline.jobs import prepare
from pipeline.guest import topology
from pipeline.output import console as ui
from pipeline.model.errors import WqciError

GOALS = {"x86_64": 12.0, "arm64": 30.0}


def main() -> int:
    layout = config.Layout()
    runs = int(os.environ.get("WQCI_BENCH_RUNS", "3"))
    arches = os.environ.get("WQCI_BENCH_ARCHES", "x86_64,arm64").split(",")
    topo = topology.load_topologies(layout).get(os.environ.get("WQCI_BENCH_TOPOLOGY"))
    rows = []
    for name in arches:
        arch = config.load_arch(layout, name)
        with tempfile.TemporaryDirectory() as tmp:
            built = prepare.prepare(layout, prepare.Variant(series=None), arch, Path(tmp))
            if not built.ok:
                print(f"E: {name}: the base kernel does not build", file=sys.stderr)
                return 1
            seconds, accel, failed = [], "", 0
            for i in range(runs):
                req = boot.BootRequest(arch=arch, topology=topo, build=built.build, run_dir=Path(tmp) / f"b{i}")
                try:
                    with boot.booted(layout, req) as (_, _, result):
                        seconds.append(result.seconds_to_ssh)
                        accel = result.accel.name
                except WqciError as exc:
                    # a failed boot is a figure too: count it, keep its console for a look
                    failed += 1
                    kept = layout.cache / "logs" / f"bench-boot-failed-{name}-{i + 1}.console.log"
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    if (req.run_dir / "console.log").exists():
                        shutil.copyfile(req.run_dir / "console.log", kept)
                    print(f"W: {name} boot {i + 1} failed: {exc}; console kept in {kept}", flush=True)
                    continue
                print(f"I: {name} boot {i + 1}: {seconds[-1]:.1f} s", flush=True)
        if not seconds:
            seconds = [float("nan")]
        rows.append((name, topo.name, accel, runs, failed, f"{min(seconds):.1f}", f"{statistics.median(seconds):.1f}",
                     f"{max(seconds):.1f}", f"<= {GOALS.get(name, 0):.0f}"))
    print()
    print(ui.table(("arch", "topology", "accel", "runs", "failed", "min s", "median s", "max s", "goal s"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
