import json
import re
from pathlib import Path

import pytest
import typer
import yaml

from pipeline.jobs import nightly
from pipeline.model import results
from pipeline.cli import app
from pipeline.model.errors import WqciError
from pipeline.model.status import Status
from pipeline.model.cases import Case
from tests.conftest import ROOT

MATRIX = ROOT / "configs" / "nightly.yaml"


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
    suite.cases.append(Case("test_workqueue.cache", status, metrics={"items_per_sec": items}))
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
