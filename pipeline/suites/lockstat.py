"""/proc/lock_stat around a suite run: reset before the module loads, read after,
kept for the lock classes the suite names (`lock_stat:` in configs/suites.yaml).

This is what a kernel developer does by hand to check a claim such as "shorter
pool->lock critical sections" (Documentation/locking/lockstat.rst). It needs a
kernel with CONFIG_LOCK_STAT (the `lockstat` flavour); on other kernels the file
is absent and nothing is collected.

Each class line of /proc/lock_stat (kernel/locking/lockdep_proc.c, seq_stats) is
the name, then con-bounces, contentions, waittime min/max/total/avg, acq-bounces,
acquisitions and holdtime min/max/total/avg; times are in microseconds. Classes
that share a name (versions `#2`, subclasses `/1`, read and write sides `-R`/`-W`)
are summed under the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from pipeline.model.cases import Case, SuiteRun
from pipeline.model.status import Status

PROC = "/proc/lock_stat"
NUM = r"\s+(\d+(?:\.\d+)?)"
LINE_RE = re.compile(r"^\s*(?P<name>\S.*?)(?:-[RW])?:" + NUM * 12 + r"\s*$")
SUFFIX_RE = re.compile(r"(?:#\d+|/\d+)+$")

#: the shell that resets the statistics (and makes sure they are being gathered)
RESET = f"test -w {PROC} && echo 1 > /proc/sys/kernel/lock_stat && echo 0 > {PROC}"
READ = f"cat {PROC}"


@dataclass(frozen=True)
class LockStat:
    """One lock class over one suite run."""

    contentions: int
    acquisitions: int
    wait_us: float  # total time spent waiting for it
    hold_us: float  # total time it was held

    def __add__(self, other: "LockStat") -> "LockStat":
        return LockStat(self.contentions + other.contentions, self.acquisitions + other.acquisitions,
                        self.wait_us + other.wait_us, self.hold_us + other.hold_us)

    def metrics(self) -> dict[str, float]:
        """Per-acquisition figures, which do not depend on how much work a run managed."""
        per = max(self.acquisitions, 1)
        return {"acquisitions": float(self.acquisitions), "contentions": float(self.contentions),
                "hold_us_per_acq": self.hold_us / per, "contentions_per_acq": self.contentions / per,
                "wait_us_per_acq": self.wait_us / per}


def parse(text: str) -> dict[str, LockStat]:
    """Every class of a /proc/lock_stat dump, summed by name."""
    out: dict[str, LockStat] = {}
    for line in text.splitlines():
        m = LINE_RE.match(line)
        if not m:
            continue
        f = [float(x) for x in m.groups()[1:]]
        stat = LockStat(contentions=int(f[1]), acquisitions=int(f[7]), wait_us=f[4], hold_us=f[10])
        name = SUFFIX_RE.sub("", m.group("name").strip())
        out[name] = out[name] + stat if name in out else stat
    return out


def select(stats: Mapping[str, LockStat], classes: Iterable[str]) -> dict[str, LockStat]:
    """The named classes; a class that was never taken is reported with zeros."""
    return {c: stats.get(c, LockStat(0, 0, 0.0, 0.0)) for c in classes}


def slug(name: str) -> str:
    """A lock class name as a JUnit-safe case name: `&pool->lock` -> `pool-lock`."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-") or "lock"


def cases(run: SuiteRun, classes: Iterable[str]) -> list[Case]:
    """One passing case per lock class and module run that read /proc/lock_stat, with
    the per-acquisition figures as metrics (the A/B compares them like throughput)."""
    out = []
    for mod in run.numbered():
        if not mod.lock_stat:
            continue
        for name, stat in select(parse(mod.lock_stat), classes).items():
            m = stat.metrics()
            out.append(mod.case(run.suite, Status.PASS, duration=0.0, metrics=m, variant=mod.variant,
                                properties={"lock_class": name, **{k: f"{v:.4g}" for k, v in m.items()}},
                                case=f"lockstat.{slug(name)}"))
    return out
