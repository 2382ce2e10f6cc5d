"""`wqci run` end to end on x86_64 (few repeats), and a series that does not compile."""

import json
import os
import subprocess
import sys

import xmlschema

from tests.conftest import DATA, ROOT

SCHEMA = xmlschema.XMLSchema(str(DATA / "junit" / "jenkins-junit.xsd"))


def wqci(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=5400, env={**os.environ, **(env or {})})


def test_run_fastwake_end_to_end(tmp_path):
    done = wqci("run", "--series", "fastwake-v1", "--repeat", "2", "--out", str(tmp_path), "--ci",
                "--suite", "test_workqueue", "--suite", "locktorture", "--param", "test_workqueue.wq_items=500",
                "--param", "locktorture.nwriters_stress=2")
    data = json.loads((tmp_path / "results.json").read_text())
    # fastwake-v1 introduces no report: base-tree noise is pre-existing or at most unconfirmed
    assert data["verdict"]["status"] == "pass", data["verdict"]
    assert done.returncode == 0, done.stderr[-3000:]
    SCHEMA.validate(str(tmp_path / "junit.xml"))
    data = json.loads((tmp_path / "results.json").read_text())
    (arch,) = data["arches"]
    scopes = [row["scope"] for row in arch["comparison"]]
    assert scopes == ["cpu", "smt", "cache_shard", "cache", "numa", "system"]
    assert all(row["n_baseline"] == 2 and row["n_patched"] == 2 for row in arch["comparison"])
    # the A/B ran on the lockstat flavour: every scope with an interval, and lock_stat per class
    assert all(row["ci_low"] is not None and row["ci_high"] is not None and row["p_holm"] is not None
               for row in arch["comparison"])
    assert arch["ab_sampling"]["mode"] == "fixed" and arch["ab_sampling"]["pairs"] == 2
    # lock_stat per scope: the carry patch gave test_workqueue scope=, one load per scope on each side
    locks = {(r["scope"], r["lock_class"], r["metric"]): r for r in arch["lock_comparison"]}
    for scope in ["all", *scopes]:  # "all": each pair's six loads summed
        hold = locks[(scope, "&pool->lock", "hold_us_per_acq")]
        assert hold["n_baseline"] == 2 and hold["n_patched"] == 2 and hold["ci_low"] is not None, hold
    assert {m for _, _, m in locks} == {"hold_us_per_acq", "contentions_per_acq"}
    assert {sc for sc, _, _ in locks} == {"all", *scopes}
    ab_suites = [s for s in data["suites"] if "/lockstat/" in s["name"]]
    assert [s["name"] for s in ab_suites] == ["x86_64/lockstat/smp8-numa2/baseline",
                                              "x86_64/lockstat/smp8-numa2/fastwake-v1"]
    carried = [c for s in ab_suites for c in s["cases"] if c["name"] == "apply.test-workqueue-scope"]
    assert [c["status"] for c in carried] == ["pass", "pass"]
    assert all(s["properties"]["carried"] == "test-workqueue-scope" for s in ab_suites)
    assert "/proc/lock_stat per acquisition, baseline vs fastwake-v1, per scope" in done.stdout
    assert "not representative of hardware" in arch["note"]
    # the table is printed, and the report has the plot and both variants
    assert "scope" in done.stdout and "baseline items/s" in done.stdout
    summary = (tmp_path / "summary.md").read_text()
    assert "| cache |" in summary and "not representative of hardware" in summary
    assert (tmp_path / "throughput.png").stat().st_size > 10_000
    assert "report.html" in done.stdout
    names = [c["name"] for s in data["suites"] for c in s["cases"]]
    assert "ab.cache" in names
    failed = [c for s in data["suites"] for c in s["cases"] if c["status"] in ("fail", "error")]
    assert failed == [] and "I: fastwake-v1: pass" in done.stdout
    # a second identical run skips both builds
    again = wqci("run", "--series", "fastwake-v1", "--repeat", "1", "--out", str(tmp_path / "again"), "--ci",
                 "--suite", "test_workqueue", "--param", "test_workqueue.wq_items=200")
    data = json.loads((tmp_path / "again" / "results.json").read_text())
    builds = [c for s in data["suites"] for c in s["cases"] if c["name"] == "build"]
    assert [b["message"] for b in builds] == ["cached"] * 4, again.stdout[-2000:]  # debug and lockstat


def test_broken_series_names_the_patch(tmp_path):
    done = wqci("run", "--series", "broken-build", "--repeat", "1", "--out", str(tmp_path), "--ci",
                env={"WQCI_PATCHES": str(DATA / "series")})
    assert done.returncode == 1, done.stderr
    data = json.loads((tmp_path / "results.json").read_text())
    build = [c for s in data["suites"] for c in s["cases"] if c["name"] == "build"]
    assert build[0]["status"] == "pass"  # the baseline
    assert build[1]["status"] == "fail"
    assert 'patch 2/2 "workqueue: call a function that does not exist" does not build' in build[1]["message"]
    assert "wqci_no_such_function" in build[1]["message"]
