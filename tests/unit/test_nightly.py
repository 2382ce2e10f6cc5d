import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
import typer
import yaml
from junitparser import JUnitXml

from pipeline import config
from pipeline.build.kernel import BuildRequest, make_env
from pipeline.intake.tree import TreeInfo
from pipeline.jobs import nightly, prepare
from pipeline.model import results
from pipeline.cli import app
from pipeline.model.errors import WqciError
from pipeline.model.status import Status
from pipeline.model.cases import Case
from tests.conftest import ROOT

MATRIX = ROOT / "configs" / "nightly.yaml"
LAYOUT = config.Layout(root=ROOT)


def test_matrix_cells_and_shards_are_deterministic():
    m = nightly.load_matrix(MATRIX)
    ids = [c.id for c in m.cells]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert "fastwake-v1--x86_64--debug--smp8-numa2" in ids and "base--arm64--debug--smp8-numa2" in ids
    one, two = nightly.shard(m.cells, 1, 2), nightly.shard(m.cells, 2, 2)
    assert not set(one) & set(two) and set(one) | set(two) == set(m.cells)
    assert nightly.shard(m.cells, 1, 2) == one  # same input, same split
    with pytest.raises(WqciError):
        nightly.parse_shard("3/2")


def fake_cell(cell_dir: Path, name: str, status: Status, items: float) -> None:
    run = results.Run(name=name)
    suite = results.SuiteResult(name=f"x86_64/debug/smp8-numa2/{name}")
    suite.cases.append(Case("test_workqueue", status, metrics={"items_per_sec": items}, case="cache"))
    run.suites.append(suite)
    results.write_junit(run, cell_dir / "junit.xml")
    results.write_json(run, cell_dir / "results.json")


def test_shards_merge_into_one_junit_and_compare_with_last_night(tmp_path):
    cells = nightly.load_matrix(MATRIX).cells[:2]

    def night(out: Path, status: Status, items: float) -> list[Path]:
        dirs = []
        for i, cell in enumerate(cells):
            shard_dir = out / f"shard-{i + 1}"
            nightly.run_cells([cell], shard_dir, lambda c, d: fake_cell(d, c.id, status, items), lambda s: None)
            dirs.append(shard_dir)
        return dirs

    last = night(tmp_path / "last", Status.PASS, 1000.0)
    nightly.merge(last, tmp_path / "last-merged")
    tonight = night(tmp_path / "tonight", Status.FAIL, 700.0)
    path, rows = nightly.merge(tonight, tmp_path / "merged")
    xml = path.read_text()
    assert all(f"{c.id}/x86_64/debug/smp8-numa2/{c.id}" in xml for c in cells)
    assert 'tests="2"' in xml and 'failures="2"' in xml
    diff = nightly.diff_previous(rows, tmp_path / "last-merged")
    assert len(diff["new_failures"]) == 2 and not diff["fixed"]
    assert "1000 -> 700 items/s (-30.0%)" in diff["drift"][0]


def test_a_cell_that_errors_does_not_stop_the_night(tmp_path):
    cells = list(nightly.load_matrix(MATRIX).cells[:2])

    def run_cell(cell, cell_dir):
        if cell is cells[0]:
            raise WqciError(detail="no such tool")
        fake_cell(cell_dir, cell.id, Status.PASS, 1.0)

    done = nightly.run_cells(cells, tmp_path, run_cell, lambda s: None)
    assert [r.status for r in done] == ["error", "pass"]
    assert json.loads((tmp_path / "nightly.json").read_text())[1]["status"] == "pass"


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-actions.yml"])
def test_ci_examples_parse_and_use_real_commands(name):
    text = (ROOT / "ci" / name).read_text()
    yaml.safe_load(text)
    group = typer.main.get_command(app)
    used = re.findall(r"(?:\$WQCI|\.venv/bin/wqci) ((?:\w+)(?: merge)?)", text)
    assert used, "the example runs no wqci command"
    for words in used:
        first, *rest = words.split()
        assert first in group.commands, first
        if rest:
            assert rest[0] in group.commands[first].commands
    assert "--shard" in text and "junit" in text


MINI = """\
series: [fastwake-v1]
arches: [x86_64]
flavors: [debug]
topologies: [smp8-numa2]
suites: [test_workqueue]
params: {test_workqueue.wq_items: 100}
repeat: 3
ccache: {remote_storage: "redis://cache.example:6379"}
"""
BASE_CELL = "base--x86_64--debug--smp8-numa2"
SERIES_CELL = "fastwake-v1--x86_64--debug--smp8-numa2"


def mini_matrix(tmp_path: Path) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(MINI)
    return path


def test_the_job_runs_its_shard_merges_and_reports_each_cell(tmp_path):
    ran = []

    def run_cell(cell, cell_dir):
        ran.append((cell.id, cell_dir))
        fake_cell(cell_dir, cell.id, Status.FAIL if cell.series else Status.PASS, 1000.0)

    lines = []
    req = nightly.NightlyRequest(matrix=mini_matrix(tmp_path), out_dir=tmp_path / "out")
    night = nightly.nightly(LAYOUT, req, lines.append, run_cell)
    assert lines == ["shard 1/1: 2 of 2 cells", f"cell {BASE_CELL}", f"cell {SERIES_CELL}"]
    assert ran == [(BASE_CELL, tmp_path / "out" / BASE_CELL), (SERIES_CELL, tmp_path / "out" / SERIES_CELL)]
    assert [(r.cell.id, r.status, r.counts) for r in night.cells] == [
        (BASE_CELL, "pass", {"pass": 1, "fail": 0, "error": 0, "skip": 0}),
        (SERIES_CELL, "fail", {"pass": 0, "fail": 1, "error": 0, "skip": 0})]
    assert not night.ok and night.shard == (1, 1)
    assert night.junit == tmp_path / "out" / "merged" / "junit.xml"
    assert [(r["cell"], r["status"]) for r in night.rows] == [(BASE_CELL, "pass"), (SERIES_CELL, "fail")]
    xml = night.junit.read_text()
    assert 'tests="2"' in xml and 'failures="1"' in xml
    assert f"{SERIES_CELL}/x86_64/debug/smp8-numa2/{SERIES_CELL}" in xml
    index = json.loads((tmp_path / "out" / "nightly.json").read_text())
    assert [row["cell"] for row in index] == [BASE_CELL, SERIES_CELL]


def test_a_night_of_real_run_cells_on_a_fake_backend(tmp_path, monkeypatch):
    """The real cells: each series cell is `wqci run`'s whole orchestration (interleaving,
    confirmation, the verdict) on a backend that replays consoles; the cells' verdicts
    become the night's rows and its merged JUnit."""
    from tests.unit.test_run_job import LOCKDEP, FakeBackend, console

    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MINI.replace("series: [fastwake-v1]", "series: [fastwake-v1, fastwake-v1-claim]")
                      .replace("repeat: 3", "repeat: 2") + "base_only: false\n")
    # fastwake-v1's kernel reports the same lock inversion in every test; the claim variant is clean
    backend = FakeBackend({"fastwake-v1": [console(test_workqueue=LOCKDEP)] * 5}, tmp_path / "history")
    real_run = nightly.abrun.run
    monkeypatch.setattr(nightly.abrun, "run", lambda layout, req, progress: real_run(layout, req, progress, backend))
    night = nightly.nightly(LAYOUT, nightly.NightlyRequest(matrix=matrix, out_dir=tmp_path / "out"), lambda s: None)

    bad, good = "fastwake-v1--x86_64--debug--smp8-numa2", "fastwake-v1-claim--x86_64--debug--smp8-numa2"
    assert [(r.cell.id, r.status) for r in night.cells] == [(bad, "fail"), (good, "pass")]
    # two pairs each, then for the lock inversion confirmation pairs until 4 of 4 against 0 of 4
    assert [label for label, _ in backend.calls] == ["base", "fastwake-v1"] * 4 + ["base", "fastwake-v1-claim"] * 2
    data = json.loads((tmp_path / "out" / bad / "results.json").read_text())
    (finding,) = [c for s in data["suites"] for c in s["cases"] if c["status"] != "pass"]
    assert finding["suite"] == "finding" and "(new: patched 4 of 4, baseline 0 of 4" in finding["message"]
    assert data["verdict"]["reasons"] == [f"x86_64/debug/smp8-numa2/fastwake-v1: {finding['name']}: "
                                          f"{finding['message']}"]
    assert [(r["cell"], r["status"]) for r in night.rows] == [(bad, "fail"), (good, "pass")]
    merged = JUnitXml.fromfile(str(night.junit))
    assert [(ts.name, tc.name) for ts in merged for tc in ts if not tc.is_passed] == [
        (f"{bad}/x86_64/debug/smp8-numa2/fastwake-v1", finding["name"])]
    assert (merged.failures, merged.errors) == (1, 0)


def test_the_job_runs_only_its_shard_and_a_failing_cell_is_an_error_row(tmp_path):
    def run_cell(cell, cell_dir):
        raise WqciError(detail="no such tool")

    lines = []
    req = nightly.NightlyRequest(matrix=mini_matrix(tmp_path), out_dir=tmp_path / "s2", shard=(2, 2))
    assert [c.id for c in nightly.plan(req)[1]] == [SERIES_CELL]
    night = nightly.nightly(LAYOUT, req, lines.append, run_cell)
    assert lines == ["shard 2/2: 1 of 2 cells", f"cell {SERIES_CELL}"]
    assert [(r.cell.id, r.status) for r in night.cells] == [(SERIES_CELL, "error")]
    assert not night.ok
    assert (tmp_path / "s2" / SERIES_CELL / "error.txt").read_text() == "no such tool\n"


def test_the_real_cells_carry_the_matrix_settings_in_their_requests(tmp_path, monkeypatch):
    """The ccache remote storage, suites, parameters and repeats reach each cell's request (no environment)."""
    seen = {}
    monkeypatch.setattr(nightly.abrun, "run", lambda layout, req, progress: seen.setdefault("run", req))
    monkeypatch.setattr(nightly.variant, "test_one", lambda layout, wanted, arch, topo, suites, out_dir, **kw:
                        seen.setdefault("test", (wanted, arch.name, topo.name, suites, out_dir)))
    m = nightly.load_matrix(mini_matrix(tmp_path))
    run_cell = nightly.cell_runner(LAYOUT, m, False, lambda s: None)
    for cell in m.cells:
        run_cell(cell, tmp_path / cell.id)
    wanted, arch, topo, suites, out_dir = seen["test"]
    assert wanted == prepare.Variant(None, None, "debug", False, ccache_remote="redis://cache.example:6379")
    assert (arch, topo, out_dir) == ("x86_64", "smp8-numa2", tmp_path / BASE_CELL)
    req = seen["run"]
    assert (req.series, req.flavor, req.repeat, req.sandbox, req.out_dir) == (
        "fastwake-v1", "debug", 3, False, tmp_path / SERIES_CELL)
    assert req.ccache_remote == "redis://cache.example:6379"
    assert [s.name for s in req.suites] == ["test_workqueue"] and req.suites == suites
    assert req.suites[0].params["wq_items"] == "100"
    assert "WQCI_CCACHE_REMOTE" not in os.environ


def test_the_ccache_remote_storage_goes_from_the_build_request_to_make(tmp_path):
    info = TreeInfo(name="linux-7.2", repo=tmp_path, commit="b" * 40, version="7.2.13-1")
    req = BuildRequest(tree=info, arch=config.load_arch(LAYOUT, "x86_64"), flavor=config.load_flavors(LAYOUT).get(None),
                       commit=info.commit, label="base", ccache_remote="redis://cache.example:6379")
    assert make_env(LAYOUT, req)["CCACHE_REMOTE_STORAGE"] == "redis://cache.example:6379"
    assert "CCACHE_REMOTE_STORAGE" not in make_env(LAYOUT, replace(req, ccache_remote=""))
    assert "CCACHE_REMOTE_STORAGE" not in make_env(LAYOUT, replace(req, ccache=False))


def test_shards_merged_from_where_ci_downloaded_them_keep_every_case(tmp_path):
    """CI moves shard outputs (artifacts/<job>/shard-N) before merging; a lost cell JUnit is an error case."""
    import shutil

    from junitparser import JUnitXml

    cells = nightly.load_matrix(MATRIX).cells[:3]
    for i, cell in enumerate(cells):
        nightly.run_cells([cell], tmp_path / "runner" / f"shard-{i + 1}",
                          lambda c, d: fake_cell(d, c.id, Status.PASS, 1.0), lambda s: None)
    shutil.move(tmp_path / "runner", tmp_path / "artifacts")
    (tmp_path / "artifacts" / "shard-3" / cells[2].id / "junit.xml").unlink()
    shards = [tmp_path / "artifacts" / f"shard-{i + 1}" for i in range(3)]
    path, rows = nightly.merge(shards, tmp_path / "merged")
    xml = JUnitXml.fromfile(str(path))
    assert (xml.tests, xml.failures, xml.errors) == (3, 0, 1)
    assert [r["status"] for r in rows] == ["pass", "pass", "error"]
    assert f"cell {cells[2].id}: no junit.xml at {shards[2] / cells[2].id / 'junit.xml'}" in path.read_text()


def test_a_corrupt_index_is_one_error_naming_the_file(tmp_path):
    (tmp_path / "nightly.json").write_text("[{\"cell\": ")
    with pytest.raises(WqciError) as exc:
        nightly.read_index(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / 'nightly.json'}: not a wqci nightly index (JSONDecodeError")
