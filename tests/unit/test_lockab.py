"""The lock_stat A/B on synthetic runs with a known change."""

import pytest

from pipeline.analysis import lockab
from pipeline.model.cases import Case
from pipeline.model.status import Status

HOLD = ("", "&pool->lock", "hold_us_per_acq")  # (scope, class, metric); "": a whole test_workqueue run
CONT = ("", "&pool->lock", "contentions_per_acq")


def test_a_shorter_hold_time_is_found_and_named():
    base = {HOLD: [10.0, 10.4, 9.8, 10.1], CONT: [0.12, 0.13, 0.12, 0.125]}
    patched = {HOLD: [8.0, 8.3, 7.9, 8.1], CONT: [0.121, 0.128, 0.119, 0.126]}
    rows = {(r.scope, r.lock_class, r.metric): r for r in lockab.compare(base, patched)}
    hold, cont = rows[HOLD], rows[CONT]
    assert hold.statement == "shorter hold"
    assert hold.change == pytest.approx(-19.9, abs=0.2)
    assert hold.ci_high < 1.0 and hold.p_holm < 0.05
    assert cont.statement.startswith("no change detected (95% CI ")
    assert cont.p_holm >= 0.05


def test_more_contention_reads_as_more():
    base = {CONT: [0.10, 0.11, 0.10]}
    patched = {CONT: [0.20, 0.21, 0.19]}
    (row,) = lockab.compare(base, patched)
    assert row.statement == "more contentions" and row.change > 90


def test_zero_contention_on_both_sides_and_in_some_runs():
    base = {CONT: [0.0, 0.0], ("", "wq_pool_mutex", "contentions_per_acq"): [0.0, 0.1]}
    patched = {CONT: [0.0, 0.0], ("", "wq_pool_mutex", "contentions_per_acq"): [0.0, 0.0]}
    rows = {r.lock_class: r for r in lockab.compare(base, patched)}
    assert rows["&pool->lock"].statement == "none on either side (contentions)"
    assert rows["wq_pool_mutex"].statement == "cannot tell: zero in some runs"
    assert rows["&pool->lock"].p_holm is None


def test_one_run_a_side_cannot_tell():
    (row,) = lockab.compare({HOLD: [10.0]}, {HOLD: [8.0]})
    assert row.statement == "cannot tell: fewer than 2 runs a side" and row.ci_low is None


def test_metrics_come_from_the_lockstat_cases_of_a_side():
    cases = [Case("test_workqueue", Status.PASS, case="lockstat.pool-lock", runs=(k,),
                  metrics={"hold_us_per_acq": h, "contentions_per_acq": 0.1, "acquisitions": 5.0},
                  properties={"lock_class": "&pool->lock"}) for k, h in ((1, 10.0), (2, 11.0))]
    cases.append(Case("test_workqueue", Status.PASS, case="cpu", metrics={"items_per_sec": 5.0}))
    assert lockab.lock_metrics(cases) == {HOLD: [10.0, 11.0], CONT: [0.1, 0.1]}
