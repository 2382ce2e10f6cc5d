import json

from pipeline.jobs import run as abrun
from pipeline.analysis import compare
from pipeline.output import report
from pipeline.model import results
from pipeline.model.status import Status
from pipeline.model.cases import Case


def metrics(values, p50=1000.0):
    return [{"items_per_sec": float(v), "p50_ns": p50} for v in values]


def test_clear_gain_is_faster_with_ci_above_one():
    rows = compare.compare({"cache": metrics([100, 102, 98, 101, 99])},
                           {"cache": metrics([110, 111, 109, 112, 108], 900)})
    (row,) = rows
    assert row.verdict == "faster" and row.ci_low > 1.0 and 9 < row.gain < 11
    assert row.baseline_p50 == 1000 and row.patched_p50 == 900
    assert row.p_value < 0.05


def test_regression_needs_significance_and_size():
    big = compare.compare({"numa": metrics([100, 101, 99, 100])}, {"numa": metrics([80, 81, 79, 80])}, 0.05)
    assert big[0].verdict == "regression"
    small = compare.compare({"numa": metrics([100, 101, 99, 100])}, {"numa": metrics([98, 99, 97, 98])}, 0.05)
    assert small[0].verdict == "slower"
    noisy = compare.compare({"numa": metrics([100, 60, 140, 90])}, {"numa": metrics([95, 70, 130, 85])}, 0.05)
    assert noisy[0].verdict == "no significant change"


def test_single_run_has_no_ci():
    (row,) = compare.compare({"cpu": metrics([100])}, {"cpu": metrics([90])})
    assert row.ci_low is None and row.verdict == "too few runs"
    assert compare.table_rows([row])[0][4] == "n/a"


def test_not_representative_label():
    assert "not representative of hardware" in compare.representativeness("tcg", 8, 2)
    assert "8 vCPUs on 2 host CPUs" in compare.representativeness("kvm", 8, 2)
    assert compare.representativeness("kvm", 2, 8) is None


def test_scope_metrics_from_cases():
    suite = results.SuiteResult(name="x")
    suite.cases += [Case("test_workqueue.cpu#1", Status.PASS, metrics={"items_per_sec": 5.0}),
                    Case("test_workqueue.cpu#2", Status.PASS, metrics={"items_per_sec": 7.0}),
                    Case("test_workqueue#1", Status.PASS), Case("boot", Status.PASS)]
    assert abrun.scope_metrics(suite) == {"cpu": [{"items_per_sec": 5.0}, {"items_per_sec": 7.0}]}


def test_report_has_verdicts_tables_plot_and_commands(tmp_path):
    run = results.Run(name="wqci run fastwake-v1", properties={"series": "fastwake-v1", "repeat": "3"})
    suite = results.SuiteResult(name="x86_64/debug/smp8-numa2/fastwake-v1")
    suite.cases += [Case("build", Status.PASS, 1.0), Case("ab.cache", Status.FAIL, 0, "cache: -20.0%")]
    run.suites.append(suite)
    rows = compare.compare({s: metrics([100, 101, 99]) for s in compare.SCOPES},
                           {s: metrics([80, 81, 79]) for s in compare.SCOPES})
    extra = {"arches": [{"arch": "x86_64", "note": "not representative of hardware (emulated with TCG)",
                         "comparison": [r.to_dict() for r in rows], "new_findings": [], "known_findings": []}]}
    results.write_json(run, tmp_path / "results.json", extra)
    md, page = report.write(tmp_path)
    text = md.read_text()
    assert "| cache | 100 | 80 | -20.0% |" in text
    assert "not representative of hardware" in text and "wqci run --series fastwake-v1" in text
    assert (tmp_path / "throughput.png").stat().st_size > 10_000
    assert "<img src='throughput.png'" in page.read_text()
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "fail"


def test_two_runs_a_side_are_never_significant():
    # seen for real under TCG: a -17% "regression" from 2 vs 2 runs; MWU cannot go below 0.33 there
    (row,) = compare.compare({"smt": metrics([6800, 6990])}, {"smt": metrics([5600, 5836])})
    assert row.p_value >= 0.33 and row.verdict == "no significant change"
