"""Calibration of the A/B statistics by simulation (seeded, a few seconds).

What the output states must hold at the sample sizes wqci uses:
- the 95% interval of the ratio holds the true ratio in at least 93% of runs, at 2..6
  runs a side, for log-normal, normal and unequal (patched twice as noisy) noise;
- a change of the stated detectable size, in one scope of six, is found (same noises) (Holm-adjusted
  p < 0.05, right direction) in at least 80% of runs;
- with `--repeat auto`, the intervals at the stop still hold the true ratio in at least
  93% of runs, all scopes counted.

The simulations go through abstats and sampling themselves, vectorized over runs.
The measured numbers are in the docstrings of abstats.py and sampling.py.
"""

import numpy as np
import pytest

from pipeline.analysis import abstats, sampling

SIGMA = 0.05  # 5% run-to-run noise, as the simulation
TRUE_RATIO = 0.9  # a -10% effect
SCOPES = 6
NOISES = ("lognormal", "normal", "unequal")


def draw(rng, noise, runs, n, ratio, sigma=SIGMA, scopes=()):
    """(baseline, patched) items/s of `runs` simulated A/Bs with n runs a side."""
    shape = (runs, *scopes, n)
    if noise == "normal":
        return 1000 * (1 + rng.normal(0, sigma, shape)), 1000 * ratio * (1 + rng.normal(0, sigma, shape))
    k = 2.0 if noise == "unequal" else 1.0
    return 1000 * np.exp(rng.normal(0, sigma, shape)), 1000 * ratio * np.exp(rng.normal(0, k * sigma, shape))


@pytest.mark.parametrize("noise", NOISES)
def test_the_95_percent_interval_covers_the_true_ratio_at_93_percent_or_more(noise):
    rng = np.random.default_rng(16)
    for n in range(2, 7):
        a, b = draw(rng, noise, 4000, n, TRUE_RATIO)
        low, high = abstats.welch_log(a, b).ci
        coverage = np.mean((low <= TRUE_RATIO) & (TRUE_RATIO <= high))
        assert coverage >= 0.93, (noise, n, coverage)


def stated_detectable(rng, n, runs=2000, noise="lognormal"):
    """The median detectable effect that null A/Bs of six scopes with n runs a side state."""
    a, b = draw(rng, noise, runs, n, 1.0)
    fit = abstats.welch_log(a, b)
    return float(np.median(abstats.detectable(fit.se, fit.df, tests=SCOPES)))


@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize("direction", [+1, -1])
def test_the_stated_detectable_effect_is_detected_80_percent_of_the_time(noise, direction):
    rng = np.random.default_rng(3)
    for n in range(2, 7):
        effect = stated_detectable(rng, n, noise=noise)
        # "could detect ±X%": +X%, or the same distance on the log scale below (the harder side)
        ratio = (1 + effect) ** direction
        a, b = draw(rng, noise, 2000, n, 1.0, scopes=(SCOPES,))
        b[:, 0] *= ratio  # the change is in one scope; the five others are unchanged
        fit = abstats.welch_log(a, b)
        p_holm = np.array([abstats.holm(list(row)) for row in fit.p_value])[:, 0]
        found = np.mean((p_holm < abstats.ALPHA) & (np.sign(fit.log_ratio[:, 0]) == direction))
        assert found >= 0.80, (n, effect, found)


@pytest.mark.parametrize("sigma", [0.01, 0.02])
def test_auto_repeat_keeps_the_intervals_calibrated_where_it_stops(sigma):
    """Noise where the ±3% target is reached after 3 to 15 pairs, so stopping depends on
    the data (at 5% noise the pair limit stops every run, which costs nothing)."""
    rng = np.random.default_rng(int(sigma * 1000))
    plan = sampling.Plan(target=0.03, budget=1e9, max_pairs=20)
    runs = 600
    a_all, b_all = draw(rng, "lognormal", runs, plan.max_pairs, TRUE_RATIO, sigma, scopes=(SCOPES,))
    held, stops = [], []
    for a, b in zip(a_all, b_all):
        pairs = 0
        while sampling.decide(plan, {s: (a[s, :pairs], b[s, :pairs]) for s in range(SCOPES)}, pairs, 0.0, 1.0).more:
            pairs += 1
        low, high = abstats.welch_log(a[:, :pairs], b[:, :pairs]).ci
        held += list((low <= TRUE_RATIO) & (TRUE_RATIO <= high))
        stops.append(pairs)
    assert 3 <= np.median(stops) < plan.max_pairs
    assert np.mean(held) >= 0.93, (sigma, np.mean(held), np.median(stops))


def test_the_detectable_effect_shrinks_with_runs_and_grows_with_scopes():
    rng = np.random.default_rng(1)
    effects = [stated_detectable(rng, n, runs=500) for n in (3, 6, 12)]
    assert effects == sorted(effects, reverse=True)
    fit = abstats.welch_log([100, 102, 98, 101], [103, 105, 101, 104])
    assert abstats.detectable(fit.se, fit.df, tests=6) > abstats.detectable(fit.se, fit.df, tests=1)
