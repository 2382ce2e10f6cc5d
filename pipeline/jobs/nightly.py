"""`wqci nightly`: the matrix of series x arch x flavour x topology (plus base-only
cells), each cell a `wqci run` (or, for the base, a `wqci test --base`), sharded
deterministically, merged into one JUnit, compared with the previous night.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from junitparser import JUnitXml

from pipeline.output import console as ui
from pipeline.model.results import set_totals
from pipeline.config import Fields, load_yaml
from pipeline.model.errors import ConfigError, WqciError

CELLS_FILE = "nightly.json"


@dataclass(frozen=True)
class Cell:
    series: str | None  # None: base only
    arch: str
    flavor: str
    topology: str

    @property
    def id(self) -> str:
        return f"{self.series or 'base'}--{self.arch}--{self.flavor}--{self.topology}"


@dataclass(frozen=True)
class Matrix:
    cells: tuple[Cell, ...]
    suites: tuple[str, ...]
    params: tuple[str, ...]
    repeat: int
    ccache_remote: str
    path: Path


def load_matrix(path: Path) -> Matrix:
    f = Fields(load_yaml(path), path)
    f.check_keys({"series", "arches", "flavors", "topologies", "base_only", "suites", "params", "repeat", "ccache"})
    series, arches = f.strs("series", ()), f.strs("arches")
    flavors, topologies = f.strs("flavors", ("debug",)), f.strs("topologies", ("smp8-numa2",))
    cells = [Cell(s, a, fl, t) for s, a, fl, t in itertools.product(series, arches, flavors, topologies)]
    if f.get("base_only", bool, True):
        cells += [Cell(None, a, fl, t) for a, fl, t in itertools.product(arches, flavors, topologies)]
    if not cells:
        raise ConfigError(path=path, detail="the matrix has no cells")
    params = f.get("params", dict, {})
    remote = f.sub("ccache", {}).str("remote_storage", "")
    return Matrix(cells=tuple(sorted(cells, key=lambda c: c.id)), suites=f.strs("suites", ()),
                  params=tuple(f"{k}={v}" for k, v in params.items()), repeat=f.get("repeat", int, 1),
                  ccache_remote=remote, path=path)


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 1, 1
    index, sep, total = text.partition("/")
    if not sep or not index.isdigit() or not total.isdigit() or not 1 <= int(index) <= int(total):
        raise WqciError(detail=f"--shard '{text}': use I/N with 1 <= I <= N, e.g. 1/2")
    return int(index), int(total)


def shard(cells: tuple[Cell, ...], index: int, total: int) -> list[Cell]:
    """Deterministic: cell k of the sorted matrix goes to shard k mod N."""
    return [c for k, c in enumerate(cells) if k % total == index - 1]


@dataclass
class CellResult:
    cell: Cell
    status: str
    directory: Path
    seconds: float
    counts: dict = field(default_factory=dict)


RunCell = Callable[[Cell, Path], None]


def run_cells(cells: list[Cell], out_dir: Path, run_cell: RunCell, progress: Callable[[str], None]) -> list[CellResult]:
    """Run each cell into its own directory; a cell that errors does not stop the others."""
    done = []
    for cell in cells:
        cell_dir = out_dir / cell.id
        progress(f"cell {cell.id}")
        started = time.monotonic()
        try:
            run_cell(cell, cell_dir)
        except WqciError as exc:
            (cell_dir / "error.txt").parent.mkdir(parents=True, exist_ok=True)
            (cell_dir / "error.txt").write_text(str(exc) + "\n")
        done.append(cell_result(cell, cell_dir, time.monotonic() - started))
        write_index(out_dir, done)
    return done


def cell_result(cell: Cell, cell_dir: Path, seconds: float) -> CellResult:
    try:
        data = json.loads((cell_dir / "results.json").read_text())
        return CellResult(cell, data["status"], cell_dir, seconds, data.get("counts", {}))
    except (OSError, ValueError, KeyError):
        return CellResult(cell, "error", cell_dir, seconds)


def write_index(out_dir: Path, results: list[CellResult]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CELLS_FILE
    path.write_text(json.dumps([{"cell": r.cell.id, "status": r.status, "dir": str(r.directory),
                                 "seconds": round(r.seconds, 1), "counts": r.counts} for r in results], indent=2))
    return path


def read_index(directory: Path) -> list[dict]:
    try:
        return json.loads((directory / CELLS_FILE).read_text())
    except FileNotFoundError:
        raise WqciError(detail=f"{directory}: no {CELLS_FILE} (not a wqci nightly output directory)") from None


def merge(directories: list[Path], out_dir: Path) -> tuple[Path, list[dict]]:
    """One JUnit over every cell of every shard directory, with junitparser."""
    merged = JUnitXml(name="wqci nightly")
    rows: list[dict] = []
    for directory in directories:
        for row in read_index(directory):
            rows.append(row)
            junit = Path(row["dir"]) / "junit.xml"
            if junit.exists():
                for suite in JUnitXml.fromfile(str(junit)):
                    suite.name = f"{row['cell']}/{suite.name}"
                    merged.add_testsuite(suite)
    set_totals(merged)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "junit.xml"
    merged.write(str(path), pretty=True)
    (out_dir / CELLS_FILE).write_text(json.dumps(rows, indent=2))
    return path, rows


def summary(rows: list[dict]) -> str:
    return ui.table(("cell", "status", "pass", "fail", "error", "skip", "seconds"),
                    [(r["cell"], r["status"], r["counts"].get("pass", 0), r["counts"].get("fail", 0),
                      r["counts"].get("error", 0), r["counts"].get("skip", 0), r["seconds"]) for r in rows])


def _cases(cell_dir: Path) -> dict[str, dict]:
    try:
        data = json.loads((cell_dir / "results.json").read_text())
    except (OSError, ValueError):
        return {}
    return {f"{s['name']}::{c['name']}": c for s in data.get("suites", []) for c in s["cases"]}


def diff_previous(rows: list[dict], previous: Path, drift: float = 0.10) -> dict[str, list[str]]:
    """New failures, fixed ones and throughput drift against last night's directory."""
    before = {r["cell"]: Path(r["dir"]) for r in read_index(previous)}
    out: dict[str, list[str]] = {"new_failures": [], "fixed": [], "drift": []}
    for row in rows:
        if row["cell"] not in before:
            continue
        now, then = _cases(Path(row["dir"])), _cases(before[row["cell"]])
        for name, case in now.items():
            old = then.get(name)
            if old is None:
                continue
            bad_now, bad_then = case["status"] in ("fail", "error"), old["status"] in ("fail", "error")
            if bad_now and not bad_then:
                out["new_failures"].append(f"{row['cell']}: {name}")
            elif bad_then and not bad_now:
                out["fixed"].append(f"{row['cell']}: {name}")
            a, b = old.get("metrics", {}).get("items_per_sec"), case.get("metrics", {}).get("items_per_sec")
            if a and b and abs(b / a - 1) > drift:
                out["drift"].append(f"{row['cell']}: {name} {a:.0f} -> {b:.0f} items/s ({(b / a - 1) * 100:+.1f}%)")
    return out
