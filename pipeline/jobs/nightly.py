"""`wqci nightly`: the matrix of series x arch x flavour x topology (plus base-only
cells), each cell a `wqci run` (or, for the base, a `wqci test --base`), sharded
deterministically, merged into one JUnit, compared with the previous night.

The matrix's settings reach the cells through their requests: suites and
parameters, repeats, and the ccache remote storage the shards share.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from junitparser import Error, JUnitXml, TestCase, TestSuite

from pipeline import config
from pipeline.build.kernel import default_jobs
from pipeline.guest.topology import load_topologies
from pipeline.jobs import prepare, variant
from pipeline.jobs import run as abrun
from pipeline.output import console as ui
from pipeline.model.results import set_totals
from pipeline.config import Fields, load_yaml
from pipeline.model.errors import ConfigError, UsageError, WqciError
from pipeline.model.progress import Progress, task
from pipeline.suites.config import load_suites

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
        raise UsageError(detail=f"--shard '{text}': use I/N with 1 <= I <= N, e.g. 1/2")
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


@dataclass(frozen=True)
class NightlyRequest:
    matrix: Path
    out_dir: Path
    shard: tuple[int, int] = (1, 1)  # (I, N): cell k of the sorted matrix runs in shard k mod N
    sandbox: bool = True
    jobs: int = field(default_factory=default_jobs)  # make -j of every cell's builds


@dataclass(frozen=True)
class Night:
    """One shard's night: each cell's result and the merged JUnit of the shard."""

    shard: tuple[int, int]
    cells: tuple[CellResult, ...]
    junit: Path
    rows: list[dict]  # the merged index, one row per cell

    @property
    def ok(self) -> bool:
        return all(r.status == "pass" for r in self.cells)


def plan(req: NightlyRequest) -> tuple[Matrix, list[Cell]]:
    """The matrix and this shard's cells (what `--list` prints)."""
    m = load_matrix(req.matrix)
    return m, shard(m.cells, *req.shard)


def nightly(layout: config.Layout, req: NightlyRequest, progress: Progress,
            run_cell: RunCell | None = None) -> Night:
    """Run this shard's cells, each into out_dir/<cell id>, then merge them into out_dir/merged.

    run_cell runs one cell into its directory (results.json, junit.xml); by default
    a `wqci run` of a series cell or a `wqci test` of a base cell."""
    m, cells = plan(req)
    run_cell = run_cell or cell_runner(layout, m, req.sandbox, progress, req.jobs)
    progress(f"shard {req.shard[0]}/{req.shard[1]}: {len(cells)} of {len(m.cells)} cells")
    done = run_cells(cells, req.out_dir, run_cell, progress)
    path, rows = merge([req.out_dir], req.out_dir / "merged")
    return Night(req.shard, tuple(done), path, rows)


def cell_runner(layout: config.Layout, m: Matrix, sandbox: bool, progress: Progress,
                jobs: int | None = None) -> RunCell:
    """The real cells: the matrix's suites, repeats and ccache remote storage in each request."""
    suites = tuple(load_suites(layout).resolve(list(m.suites) or None, None, list(m.params)))
    topologies = load_topologies(layout)
    jobs = jobs or default_jobs()

    def run_cell(cell: Cell, cell_dir: Path) -> None:
        arch = config.load_arch(layout, cell.arch)
        topo = topologies.get(cell.topology)
        if cell.series is None:
            wanted = prepare.Variant(None, None, cell.flavor, sandbox, ccache_remote=m.ccache_remote, jobs=jobs)
            variant.test_one(layout, wanted, arch, topo, suites, cell_dir, progress=progress)
            return
        req = abrun.RunRequest(series=cell.series, arches=(arch,), flavor=cell.flavor, topology=topo, suites=suites,
                               repeat=m.repeat, out_dir=cell_dir, sandbox=sandbox, ccache_remote=m.ccache_remote,
                               jobs=jobs)
        abrun.run(layout, req, progress)

    return run_cell


def run_cells(cells: list[Cell], out_dir: Path, run_cell: RunCell, progress: Progress) -> list[CellResult]:
    """Run each cell into its own directory; a cell that errors does not stop the others."""
    done = []
    with task("cells of the night", len(cells), "cells") as counted:
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
            counted.advance()
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
    # directories relative to the index: CI moves shard outputs around before merging them
    path.write_text(json.dumps([{"cell": r.cell.id, "status": r.status, "dir": _relative(r.directory, out_dir),
                                 "seconds": round(r.seconds, 1), "counts": r.counts} for r in results], indent=2))
    return path


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def read_index(directory: Path) -> list[dict]:
    """The cells of one output directory, each with "dir" resolved where it is now."""
    path = directory / CELLS_FILE
    try:
        rows = json.loads(path.read_text())
        for row in rows:
            row["dir"] = str(_cell_dir(directory, row))
        return rows
    except FileNotFoundError:
        raise UsageError(detail=f"{directory}: no {CELLS_FILE} (not a wqci nightly output directory)") from None
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise UsageError(detail=f"{path}: not a wqci nightly index ({type(exc).__name__}: {exc})") from None


def _cell_dir(directory: Path, row: dict) -> Path:
    """Relative to the index; an absolute path of an older index that no longer exists is
    looked up by its last part next to the index (the shard was moved)."""
    stored = Path(row["dir"])
    if not stored.is_absolute():
        return directory / stored
    return stored if stored.exists() else directory / stored.name


def merge(directories: list[Path], out_dir: Path) -> tuple[Path, list[dict]]:
    """One JUnit over every cell of every shard directory, with junitparser."""
    merged = JUnitXml(name="wqci nightly")
    rows: list[dict] = []
    for directory in directories:
        for row in read_index(directory):
            rows.append(row)
            junit = Path(row["dir"]) / "junit.xml"
            try:
                suites = list(JUnitXml.fromfile(str(junit)))
            except (OSError, ValueError, SyntaxError) as exc:  # lost or unreadable: an error, never silence
                row["status"] = "error"
                suites = [_missing(row, junit, exc)]
            for suite in suites:
                suite.name = f"{row['cell']}/{suite.name}"
                merged.add_testsuite(suite)
    set_totals(merged)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "junit.xml"
    merged.write(str(path), pretty=True)
    (out_dir / CELLS_FILE).write_text(json.dumps(rows, indent=2))
    return path, rows


def _missing(row: dict, junit: Path, exc: Exception) -> TestSuite:
    why = "no junit.xml" if isinstance(exc, FileNotFoundError) else f"unreadable junit.xml ({exc})"
    suite = TestSuite("cell")
    case = TestCase("junit", classname=f"wqci.nightly.{row['cell']}")
    error = Error(f"cell {row['cell']}: {why} at {junit}", type_="error")
    case.result = [error]
    suite.add_testcase(case)
    suite.update_statistics()
    return suite


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
