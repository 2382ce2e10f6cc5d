"""The A/B statistics, the stopping rule of `--repeat auto` and the seed's table, on
synthetic samples with a known effect."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from pipeline import config
from pipeline.analysis import abstats, compare, sampling, seedclaims
from tests.conftest import ROOT

LAYOUT = config.Layout(root=ROOT)
# a known effect: +8% with about ±0.5% of noise (baseline) and a noisy twin (±5%)
QUIET = [1000, 1004, 996, 1002, 998, 1001]
NOISY = [1000, 1050, 950, 1030, 970, 1010]


def plus(values, percent):
    return [v * (1 + percent / 100) for v in values]


def test_welch_on_logs_is_scipys_welch_test():
    a, b = [100, 103, 98, 101], [108, 112, 109, 107, 111]
    fit = abstats.welch_log(a, b)
    ref = stats.ttest_ind(np.log(b), np.log(a), equal_var=False)
    assert math.isclose(fit.p_value, ref.pvalue) and math.isclose(fit.df, ref.df)
    low, high = ref.confidence_interval(0.95)
    assert np.allclose(fit.ci, (math.exp(low), math.exp(high)))
    assert math.isclose(fit.half_width, math.exp(high - fit.log_ratio) - 1)


def test_identical_runs_are_certain():
    same = abstats.welch_log([100, 100], [100, 100])
    assert same.p_value == 1.0 and same.half_width == 0.0
    assert abstats.welch_log([100, 100], [90, 90]).p_value == 0.0


def test_fewer_than_two_runs_have_no_interval():
    assert abstats.half_width([100], [90, 91]) == math.inf
    with pytest.raises(ValueError, match="2 runs a side"):
        abstats.welch_log([100], [90, 91])


def test_holm_step_down():
    assert abstats.holm([0.01, 0.04, 0.03, None]) == [0.03, 0.06, 0.06, None]
    assert abstats.holm([0.5, 0.9]) == [1.0, 1.0]
    assert abstats.holm([]) == []


def test_detectable_effect_formula():
    se, df = 0.02, 8.0
    expected = math.expm1((stats.t.ppf(1 - 0.05 / 12, df) + stats.t.ppf(0.8, df)) * se
                          * math.sqrt(df / stats.chi2.ppf(0.2, df)))
    assert math.isclose(abstats.detectable(se, df, tests=6), expected)


def test_a_known_effect_is_measured_and_its_resolution_stated():
    (row,) = compare.compare({"cache": metrics(QUIET)}, {"cache": metrics(plus(QUIET, 8))})
    assert row.verdict == "improvement" and round(row.gain, 1) == 8.0
    assert row.ci_low < 1.08 < row.ci_high and row.half_width < 0.01
    (row,) = compare.compare({"cache": metrics(NOISY)}, {"cache": metrics(plus(NOISY[::-1], 2))})
    assert row.verdict == "no change detected" and 0.05 < row.detectable < 0.5
    assert row.statement == f"no change detected (could detect ±{row.detectable * 100:.1f}%)"
    assert row.to_dict()["detectable_percent"] == round(row.detectable * 100, 2)


def test_holm_over_scopes_can_turn_a_borderline_scope_into_no_change():
    base = {s: metrics(NOISY) for s in compare.SCOPES}
    patched = {s: metrics(NOISY[::-1]) for s in compare.SCOPES}
    patched["numa"] = metrics(plus(NOISY, 6))
    alone = compare.compare({"numa": base["numa"]}, {"numa": patched["numa"]})[0]
    together = {r.scope: r for r in compare.compare(base, patched)}["numa"]
    assert alone.p_value == together.p_value < 0.05
    assert alone.verdict == "improvement" and together.verdict == "no change detected"
    assert together.detectable > alone.detectable  # stated for 6 tests


def metrics(values):
    return [{"items_per_sec": float(v)} for v in values]


# ------------------------------------------------------------ the stopping rule

def samples(values_a, values_b, pairs, scopes=("cpu", "numa")):
    return {s: (values_a[:pairs], values_b[:pairs]) for s in scopes}


AUTO = sampling.Plan(target=0.03, budget=300, max_pairs=20)


def test_fixed_repeat_runs_exactly_n_pairs():
    plan = sampling.Plan(pairs=3)
    more = [sampling.decide(plan, samples(NOISY, NOISY, p), p, 0, 10).more for p in range(5)]
    assert more == [True, True, True, False, False]
    assert sampling.decide(plan, {}, 3, 1e9, 1e9).why == sampling.FIXED


def test_auto_runs_two_pairs_whatever_the_budget():
    for pairs in (0, 1):
        assert sampling.decide(AUTO, samples(QUIET, QUIET, pairs), pairs, 1e6, 1e6).more


def test_auto_adds_a_third_pair_when_it_fits_then_stops_at_the_target():
    quiet = samples(QUIET, plus(QUIET, 8), 2)
    assert max(sampling.half_widths(quiet).values()) < 0.03  # already narrow with 2 pairs
    assert sampling.decide(AUTO, quiet, 2, 60, 30).more  # cheap: a third pair
    no_time = sampling.decide(AUTO, quiet, 2, 290, 30)
    assert (no_time.more, no_time.why) == (False, sampling.TARGET)
    done = sampling.decide(AUTO, samples(QUIET, plus(QUIET, 8), 3), 3, 90, 30)
    assert (done.more, done.why) == (False, sampling.TARGET)
    assert done.detail.startswith("every scope within ±3% (widest ±")


def test_auto_goes_on_while_the_interval_is_wide_until_budget_or_limit():
    wide = samples(NOISY, plus(NOISY, 8), 5)
    assert max(sampling.half_widths(wide).values()) > 0.03
    assert sampling.decide(AUTO, wide, 5, 150, 30).more
    budget = sampling.decide(AUTO, wide, 5, 280, 30)
    assert (budget.more, budget.why) == (False, sampling.BUDGET)
    assert budget.detail.startswith("another pair (~30 s) would pass the 300 s budget (280 s used; widest ±")
    limit = sampling.decide(sampling.Plan(max_pairs=5), wide, 5, 0, 1)
    assert (limit.more, limit.why) == (False, sampling.MAX_PAIRS)


def test_auto_stops_when_no_scope_has_results_on_both_sides():
    decision = sampling.decide(AUTO, {}, 2, 0, 1)
    assert (decision.more, decision.why) == (False, sampling.NO_DATA)


def test_a_scope_below_two_runs_keeps_the_sampling_going():
    lopsided = {"cpu": (QUIET[:3], plus(QUIET, 8)[:3]), "numa": (QUIET[:3], [1080.0])}
    assert sampling.half_widths(lopsided)["numa"] == math.inf
    assert sampling.decide(AUTO, lopsided, 3, 10, 5).more


def test_the_record_is_json_and_says_why_it_stopped():
    decision = sampling.decide(AUTO, {"cpu": (QUIET[:3], plus(QUIET, 8)[:3]), "numa": (QUIET[:3], [1.0])}, 3, 290, 30)
    rec = sampling.record(AUTO, decision, 3, 290)
    assert json.loads(json.dumps(rec)) == rec
    assert rec["stopped"] == "budget" and rec["pairs"] == 3 and rec["half_width_percent"]["numa"] is None
    assert rec["target_percent"] == 3 and rec["budget_seconds"] == 300
    assert sampling.describe(rec).startswith("3 pair(s) in 4.8 min (auto); stopped: another pair")


# ------------------------------------------------------------ the seed's table

def test_the_seeds_numbers_come_from_the_series_claims():
    fastwake = config.load_series(LAYOUT, "fastwake-v1")
    assert seedclaims.published(fastwake.claims) == {
        "cache_shard": 8.0, "cache": 8.9, "numa": 10.5, "system": 6.7, "cpu": -0.4, "smt": -0.4}
    # no per-scope numbers there: the table has no seed column to fill
    assert seedclaims.published(config.load_series(LAYOUT, "fastwake-v1-claim").claims) == {}
    assert seedclaims.published(config.load_series(LAYOUT, "wake-prefer").claims) == {}


def test_only_test_workqueue_claims_count():
    claims = [config.Claim("numa +10.5% items/s", "lock_stat hold time"),
              config.Claim("numa \u221210.5%, cpu +1%", "test_workqueue A/B")]
    assert seedclaims.published(claims) == {"numa": -10.5, "cpu": 1.0}


@pytest.mark.parametrize("seed,ci,width,expected", [
    (8.9, (1.05, 1.12), 0.03, "agrees"),
    (8.9, (1.10, 1.16), 0.03, "contradicts"),  # we measured more than the seed
    (8.9, (0.97, 1.02), 0.025, "contradicts"),  # no gain, and narrow enough to exclude +8.9%
    (8.9, (0.98, 1.22), 0.11, "cannot tell at this resolution"),  # ±11% cannot tell +8.9% from 0
    # "no change" (below the ±3% target): our whole interval within ±3%, or wholly outside
    (-0.4, (0.98, 1.02), 0.02, "agrees"),
    (-0.4, (0.9962, 1.0038), 0.0038, "agrees"),  # narrower than 0.4%, and still no change
    (-0.4, (0.95, 1.06), 0.055, "cannot tell at this resolution"),
    (-0.4, (1.01, 1.05), 0.02, "cannot tell at this resolution"),
    (-0.4, (1.05, 1.09), 0.02, "contradicts"),
    (8.9, (None, None), None, "cannot tell at this resolution"),
])
def test_seed_verdicts(seed, ci, width, expected):
    assert seedclaims.verdict(seed, *ci, width, floor=0.03) == expected


def test_rows_carry_the_seed_value_and_verdict():
    rows = compare.compare({"cache": metrics(QUIET), "cpu": metrics(QUIET), "numa": metrics(QUIET)},
                           {"cache": metrics(plus(QUIET, 9)), "cpu": metrics(QUIET), "numa": metrics(QUIET)},
                           seed={"cache": 8.9, "cpu": -0.4})
    got = {r.scope: (r.seed_gain, r.seed_verdict) for r in rows}
    assert got == {"cpu": (-0.4, "agrees"), "cache": (8.9, "agrees"), "numa": (None, None)}
