import json

from pipeline.jobs import run as abrun
from pipeline.analysis import abstats, compare
from pipeline.output import report
from pipeline.model import results
from pipeline.model.status import Status
from pipeline.model.cases import Case


def metrics(values, p50=1000.0):
    return [{"items_per_sec": float(v), "p50_ns": p50} for v in values]


def test_clear_gain_is_an_improvement_with_ci_above_one():
    rows = compare.compare({"cache": metrics([100, 102, 98, 101, 99])},
                           {"cache": metrics([110, 111, 109, 112, 108], 900)})
    (row,) = rows
    assert row.verdict == "improvement" and row.statement == "improvement"
    assert 1.0 < row.ci_low < 1.10 < row.ci_high and round(row.gain, 1) == 10.0
    assert row.baseline_p50 == 1000 and row.patched_p50 == 900
    assert row.p_value < 0.001 and row.p_holm == row.p_value  # one scope: nothing to correct


def test_regression_needs_significance_and_size():
    big = compare.compare({"numa": metrics([100, 101, 99, 100])}, {"numa": metrics([80, 81, 79, 80])}, 0.05)
    assert big[0].verdict == "regression" and big[0].regressed
    assert big[0].statement == "regression (beyond the allowed -5%)"
    small = compare.compare({"numa": metrics([100, 101, 99, 100])}, {"numa": metrics([98, 99, 97, 98])}, 0.05)
    assert small[0].verdict == "slower" and not small[0].regressed
    assert small[0].statement == "slower (within the allowed -5%)"
    noisy = compare.compare({"numa": metrics([100, 60, 140, 90])}, {"numa": metrics([95, 70, 130, 85])}, 0.05)
    assert noisy[0].verdict == "no change detected"
    assert noisy[0].detectable > 1.0  # beyond a doubling: a percentage would only mislead
    assert noisy[0].statement == "no change detected (too noisy: not even a doubling or halving could be told)"
    quiet = compare.compare({"numa": metrics([100, 101, 99, 100])}, {"numa": metrics([100, 100.5, 99, 100.5])}, 0.05)
    assert quiet[0].statement == f"no change detected (could detect ±{quiet[0].detectable * 100:.1f}%)"
    assert quiet[0].detectable < 0.1


def test_single_run_cannot_tell():
    (row,) = compare.compare({"cpu": metrics([100])}, {"cpu": metrics([90])})
    assert row.ci_low is None and row.p_holm is None and row.detectable is None
    assert (row.verdict, row.statement) == ("cannot tell", "cannot tell: fewer than 2 runs a side")
    assert compare.table_rows([row])[0][4] == "n/a"


def test_not_representative_label():
    assert "not representative of hardware" in compare.representativeness("tcg", 8, 2)
    assert "8 vCPUs on 2 host CPUs" in compare.representativeness("kvm", 8, 2)
    assert compare.representativeness("kvm", 2, 8) is None


def test_scope_metrics_from_cases():
    suite = results.SuiteResult(name="x")
    suite.cases += [Case("test_workqueue", Status.PASS, metrics={"items_per_sec": 5.0}, case="cpu", runs=(1,)),
                    Case("test_workqueue", Status.PASS, metrics={"items_per_sec": 7.0}, case="cpu", runs=(2,)),
                    Case("test_workqueue", Status.PASS, runs=(1,)), Case("boot", Status.PASS),
                    Case("test_workqueue", Status.PASS, metrics={"acquisitions": 9.0}, case="lockstat.pool-lock")]
    assert abrun.scope_metrics(suite) == {"cpu": [{"items_per_sec": 5.0}, {"items_per_sec": 7.0}]}


def test_report_has_verdicts_tables_plot_and_commands(tmp_path):
    run = results.Run(name="wqci run fastwake-v1", properties={"series": "fastwake-v1", "repeat": "3"})
    suite = results.SuiteResult(name="x86_64/debug/smp8-numa2/fastwake-v1")
    suite.cases += [Case("build", Status.PASS, 1.0), Case("ab", Status.FAIL, 0, "cache: -20.0%", case="cache")]
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


def test_two_runs_a_side_say_what_they_could_detect_and_holm_corrects_for_six_scopes():
    # seen for real under TCG: a -17% "regression" of smt from 2 vs 2 runs, beside scopes
    # that moved by -10% to +57% (README's excerpt); alone, Welch's p for smt is 0.025
    base = {"cpu": [6300, 6500], "smt": [6800, 6990], "cache_shard": [1650, 1800], "cache": [1500, 1720],
            "numa": [1580, 1900], "system": [1700, 1600]}
    patched = {"cpu": [7100, 8100], "smt": [5600, 5836], "cache_shard": [2200, 2550], "cache": [2450, 2630],
               "numa": [1450, 2000], "system": [1500, 1580]}
    rows = {r.scope: r for r in compare.compare({s: metrics(v) for s, v in base.items()},
                                                 {s: metrics(v) for s, v in patched.items()})}
    smt = rows["smt"]
    assert round(smt.p_value, 3) == 0.025 and smt.p_holm > 0.05 and smt.verdict == "no change detected"
    # with one or two degrees of freedom only huge changes can be told from noise
    assert all(r.detectable > 0.4 for r in rows.values())
    assert [r.p_holm for r in rows.values()] == abstats.holm([r.p_value for r in rows.values()])


def test_rows_carry_what_a_report_needs_as_plain_json():
    (row,) = compare.compare({"cache": metrics([100, 102, 98, 101])}, {"cache": metrics([108, 110, 107, 109])},
                             seed={"cache": 8.9})
    data = json.loads(json.dumps(row.to_dict()))
    assert {"ci_low", "ci_high", "ci_low_percent", "ci_high_percent", "half_width", "half_width_percent",
            "p_value", "p_holm", "detectable", "detectable_percent", "df", "verdict", "statement", "seed_gain",
            "seed_verdict", "method", "gain_percent", "n_baseline", "n_patched"} <= set(data)
    assert data["seed_gain"] == 8.9 and data["seed_verdict"] == "agrees"
    assert data["ci_low_percent"] < 8.9 < data["ci_high_percent"]
    assert compare.table_rows([row])[0][-2:] == ("+8.9%", "agrees")
