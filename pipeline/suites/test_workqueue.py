"""lib/test_workqueue.c: one case per affinity scope, with throughput and latency.

Its init prints the results and then returns -EAGAIN on purpose, so a load that
"fails" with EAGAIN is the expected outcome; any other exit is not. A load with
scope=NAME (the A/B's, on kernels with the carry patch test-workqueue-scope) runs
that one scope, and only its result line is expected.
"""

from __future__ import annotations

import re
from functools import partial

from pipeline.model.status import Status
from pipeline.model.cases import Case, ModuleRun, SuiteRun

NAME = "test_workqueue"
SCOPES = ("cpu", "smt", "cache_shard", "cache", "numa", "system")
HEADER_RE = re.compile(r"test_workqueue: running (\d+) threads, (\d+) items/thread")
SCOPE_RE = re.compile(r"test_workqueue:\s+(\w+)\s+(\d+) items/sec\s+p50=(\d+)\s+p90=(\d+)\s+p95=(\d+) ns")
EAGAIN_RE = re.compile(r"Resource temporarily unavailable|EAGAIN|-11\b")


def parse_scopes(log: str) -> dict[str, dict[str, float]]:
    return {m.group(1): {"items_per_sec": float(m.group(2)), "p50_ns": float(m.group(3)),
                         "p90_ns": float(m.group(4)), "p95_ns": float(m.group(5))}
            for m in SCOPE_RE.finditer(log)}


def parse(run: SuiteRun) -> list[Case]:
    return [case for mod in run.numbered() for case in parse_one(mod)]


def parse_one(mod: ModuleRun) -> list[Case]:
    # the load's own case (test_workqueue, or test_workqueue.cpu.load for a load with scope=cpu), then the scopes'
    top = partial(mod.case, NAME, variant=mod.variant, case="load" if mod.variant else "")
    scope_case = partial(mod.case, NAME)
    wanted = tuple(s for s in SCOPES if s in mod.variant.split(",")) or SCOPES
    if mod.timed_out:
        return [top(Status.ERROR, "timed out", mod.log[-4000:])]
    headers = HEADER_RE.findall(mod.log)
    if len(headers) > 1:
        # busybox's insmod/modprobe reruns init_module after finit_module fails: the
        # benchmark ran twice and the numbers of the two runs are mixed
        return [top(Status.FAIL, f"the benchmark ran {len(headers)} times in one load "
                    "(a module loader that retries a failing init?)", mod.output + "\n" + mod.log[-4000:])]
    header = HEADER_RE.search(mod.log)
    scopes = parse_scopes(mod.log)
    load_ok = mod.exit_code != 0 and EAGAIN_RE.search(mod.output) is not None
    if not header:
        cases = [top(Status.FAIL, "no 'running N threads' line: the benchmark did not start",
                     mod.output + "\n" + mod.log[-4000:])]
    elif not load_ok:
        cases = [top(Status.FAIL, f"load exited {mod.exit_code}, expected EAGAIN (its init returns -EAGAIN on "
                     "success)", mod.output)]
    else:
        cases = [top(Status.PASS, properties={"threads": header.group(1), "items_per_thread": header.group(2)})]
    share = mod.duration / len(wanted)
    for scope in wanted:
        if scope in scopes:
            m = scopes[scope]
            cases.append(scope_case(Status.PASS, duration=share, metrics=m, properties={k: f"{v:.0f}" for k, v in m.items()},
                             case=scope))
        elif header:
            cases.append(scope_case(Status.FAIL, f"no result line for scope '{scope}'", mod.log[-2000:], duration=0.0,
                             case=scope))
    return cases
