"""`wqci noise --base`: what the base kernel reports on its own, and how often.

Boots the base kernel N times (each boot is added to its history, see
triage/history.py), then reads the whole history of that kernel: each finding
with the boots that saw it, out of the boots that exercised the place where it
appears, and the exact 95% bound on that rate (Clopper-Pearson). The rows can
be written as configs/known-findings.yaml entries that carry their evidence.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import yaml

from pipeline.analysis import rates
from pipeline.analysis.evidence import Boot, Sighting, count
from pipeline.build.kernel import default_jobs
from pipeline.config import Arch, Layout
from pipeline.guest.topology import Topology
from pipeline.jobs import prepare
from pipeline.jobs import variant
from pipeline.model.errors import ConfigError
from pipeline.model.results import SuiteResult
from pipeline.suites.config import SuiteConfig
from pipeline.triage import history
from pipeline.model.progress import Progress, task



@dataclass(frozen=True)
class NoiseRequest:
    arch: Arch
    topology: Topology
    flavor: str | None
    suites: tuple[SuiteConfig, ...]
    boots: int
    out_dir: Path
    accel: str = "auto"
    sandbox: bool = True
    tree_path: Path | None = None
    jobs: int = field(default_factory=default_jobs)  # make -j
    kconfig_add: tuple[str, ...] = ()  # -K CONFIG_X=VALUE options (build/kconfig.py)


@dataclass(frozen=True)
class NoiseRow:
    sighting: Sighting
    seen: int
    boots: int
    low: float
    high: float

    @property
    def bound(self) -> str:
        return f"{self.low:.3g}..{self.high:.3g}"


@dataclass(frozen=True)
class Noise:
    key: history.BaseKey
    tree: str  # the name known-findings.yaml files entries under
    boots: int  # boots in the history
    rows: tuple[NoiseRow, ...]


def noise(layout: Layout, req: NoiseRequest, progress: Progress) -> Noise:
    wanted = prepare.Variant(series=None, tree_path=req.tree_path, flavor=req.flavor, sandbox=req.sandbox,
                             jobs=req.jobs, kconfig_add=req.kconfig_add)
    req.out_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare.prepare(layout, wanted, req.arch, req.out_dir)
    prepare.built(prepared)  # BuildFailed names the stage that failed
    with task(f"{req.arch.name}: boots of the base", req.boots, "boots") as done:
        for i in range(req.boots):
            progress(f"boot {i + 1}/{req.boots} of the base")
            suite = SuiteResult(name=f"noise/{i + 1}")
            treq = variant.TestRequest(arch=req.arch, topology=req.topology, build=prepared.build, suites=req.suites,
                                       out_dir=req.out_dir / f"boot-{i + 1}", accel=req.accel)
            found = variant.run_variant(layout, treq, suite, progress)
            variant.record_base_boot(layout, prepared, suite.cases, found, "noise")
            done.advance()
    key = history.BaseKey.of(prepared.build)
    return Noise(key, prepared.info.name, *summarise(history.History.of(layout, key).boots()))


def summarise(boots: Sequence[Boot]) -> tuple[int, tuple[NoiseRow, ...]]:
    """Each distinct finding of the history with its rate, most frequent first."""
    first: dict[str, Sighting] = {}
    for boot in boots:
        for s in boot.sightings:
            first.setdefault(s.fingerprint, s)
    rows = []
    for s in first.values():
        c = count(boots, s.fingerprint, s.where)
        low, high = rates.bounds(c.seen, c.boots)
        rows.append(NoiseRow(s, c.seen, c.boots, low, high))
    rows.sort(key=lambda r: (-r.seen / max(r.boots, 1), r.sighting.title))
    return len(boots), tuple(rows)


def known_entries(result: Noise) -> list[dict]:
    """known-findings.yaml entries for every row, with their evidence as the reason."""
    day = time.strftime("%Y-%m-%d")
    return [{"match": f"^{re.escape(f'{r.sighting.kind}: {r.sighting.title}')}$",
             "reason": f"seen on the base in {r.seen} of {r.boots} boots ({result.key.describe()}), rate {r.bound} "
                       f"at 95%; wqci noise, {day}"} for r in result.rows]


def write_known(path: Path, result: Noise) -> int:
    """Add the entries under the tree's name, keeping what the file has; returns how many were new."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(path=path, detail=f"not valid YAML: {exc}") from None
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(path=path, detail="expected a mapping of tree names to lists")
    entries = data.setdefault(result.tree, [])
    have = {e.get("match") for e in entries if isinstance(e, dict)}
    new = [e for e in known_entries(result) if e["match"] not in have]
    entries.extend(new)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False, width=110))
    tmp.replace(path)
    return len(new)
