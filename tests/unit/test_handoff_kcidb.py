"""kcidb.json from recorded results.json, validated by kcidb-io against the latest schema
version it knows, exactly (not "this or an older version")."""

import json
import shutil
from pathlib import Path

import pytest
from kcidb_io import schema

from pipeline import config
from pipeline.output import handoff, kcidb, rundir

RUNS = Path(__file__).parents[1] / "data" / "runs"


def written(tmp_path: Path, fixture: str) -> dict:
    run_dir = tmp_path / fixture
    shutil.copytree(RUNS / fixture, run_dir)
    handoff.write(run_dir, rundir.read(run_dir), config.Layout())
    return json.loads((run_dir / "kcidb.json").read_text())


@pytest.mark.parametrize("fixture", ["fail-new-finding", "pass-older-format"])
def test_kcidb_json_is_valid_in_the_latest_schema(tmp_path, fixture):
    data = written(tmp_path, fixture)
    assert data["version"] == {"major": schema.LATEST.major, "minor": schema.LATEST.minor}
    schema.LATEST.validate_exactly(data)
    assert schema.LATEST.is_compatible_exactly(data)
    ids = [o["id"] for key in ("checkouts", "builds", "tests", "issues", "incidents") for o in data[key]]
    assert all(i.startswith("wqci:") for i in ids) and len(ids) == len(set(ids))
    # written again from the same results.json: the same ids (a dashboard merges, not duplicates)
    assert kcidb.to_kcidb(rundir.read(tmp_path / fixture)) == data


def test_the_objects_link_up(tmp_path):
    data = written(tmp_path, "fail-new-finding")
    prefix = "wqci:3f9a0c2e7b1d4e65:"  # the run id results.json records
    checkouts = {c["id"]: c for c in data["checkouts"]}
    assert list(checkouts) == [prefix + "checkout:baseline", prefix + "checkout:fastwake-v1"]
    patched = checkouts[prefix + "checkout:fastwake-v1"]
    assert patched["git_commit_hash"] == "cf8379af4645e9b4a434dfae4e15393d695cd614"  # the base; patches on top
    assert patched["message_id"] == "20260526-fastwake-v1-1-e69ad86923e6@debian.org" and patched["valid"] is True
    assert [p["commit"][:12] for p in patched["misc"]["patches"]] == ["09549996bf0d", "99dcf4410b24"]
    builds = {b["id"]: b for b in data["builds"]}
    assert {b["checkout_id"] for b in builds.values()} == set(checkouts)
    statuses = {(b["architecture"], b["checkout_id"].rsplit(":", 1)[1]): b["status"] for b in builds.values()}
    assert statuses == {("x86_64", "baseline"): "PASS", ("x86_64", "fastwake-v1"): "PASS",
                        ("arm64", "baseline"): "PASS", ("arm64", "fastwake-v1"): "FAIL"}
    failed = builds[prefix + "build:arm64/debug/smp8-numa2/fastwake-v1"]
    assert failed["log_excerpt"].startswith("fastwake-v1 2/2 does not build: kernel/workqueue.c:1290:9: error")
    tests = {t["id"]: t for t in data["tests"]}
    assert {t["build_id"] for t in tests.values()} <= set(builds)
    scopes = [t for t in tests.values() if t["path"] == "test_workqueue.cpu"]
    assert len(scopes) == 8 and all(t["number"]["unit"] == "items/s" for t in scopes)
    assert sorted(t["misc"]["runs"] for t in scopes) == [[1], [1], [2], [2], [3], [3], [4], [4]]
    # one issue per finding, one incident per kernel that showed it, pointing at its finding test
    issues = {i["id"]: i for i in data["issues"]}
    assert set(issues) == {"wqci:finding:d33fa7f043f8", "wqci:finding:c0f5681040ea"}
    assert issues["wqci:finding:d33fa7f043f8"]["report_subject"] == "KCSAN: data-race in kick_pool_pick"
    (new,) = [i for i in data["incidents"] if i["issue_id"] == "wqci:finding:d33fa7f043f8"]
    assert new["misc"]["class"] == "new" and new["misc"]["first_patch"] == "fastwake-v1 2/2"
    assert tests[new["test_id"]]["status"] == "FAIL" and tests[new["test_id"]]["path"] == "finding.kcsan.d33fa7f043f8"
    assert new["build_id"] == prefix + "build:x86_64/debug/smp8-numa2/fastwake-v1"
    assert all(i["issue_id"] in issues for i in data["incidents"])


def test_an_older_results_json_gets_ids_from_its_content(tmp_path):
    data = written(tmp_path, "pass-older-format")
    run = data["checkouts"][0]["id"].split(":")[1]
    assert len(run) == 16 and "start_time" not in data["checkouts"][0]
    (issue,) = data["issues"]
    assert issue["id"] == "wqci:finding:c0f5681040ea"
    assert [i["misc"]["class"] for i in data["incidents"]] == ["pre-existing"]
