"""Statistics over seeds, against values computed by hand."""

import math

import pytest

from cyclesem.report.stats import bootstrap_efficiency, first_crossing, paired_difference, t_interval

T_975_DF2 = 4.302652729911275  # Student t quantile 0.975 with 2 degrees of freedom (tables)


def test_t_interval_of_three_values():
    interval = t_interval([0.1, 0.2, 0.3])
    half = T_975_DF2 * 0.1 / math.sqrt(3)  # sample std of (0.1, 0.2, 0.3) is 0.1
    assert interval.n == 3 and interval.mean == pytest.approx(0.2) and interval.std == pytest.approx(0.1)
    assert (interval.low, interval.high) == pytest.approx((0.2 - half, 0.2 + half))
    assert interval.spans_zero()  # 0.2 ± 0.248


def test_one_seed_is_a_pilot_without_an_interval():
    interval = t_interval([0.4, math.nan])
    assert (interval.n, interval.mean, interval.std, interval.low, interval.high) == (1, 0.4, None, None, None)


def test_paired_difference_uses_the_shared_seeds_only():
    diff = paired_difference({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.4, 1: 0.4, 2: 0.6, 3: 0.9})
    mean, std = (0.1 + 0.2 + 0.1) / 3, math.sqrt(((0.1 - 0.4 / 3) ** 2 * 2 + (0.2 - 0.4 / 3) ** 2) / 2)
    half = T_975_DF2 * std / math.sqrt(3)
    assert diff.n == 3 and diff.mean == pytest.approx(mean)
    assert (diff.low, diff.high) == pytest.approx((mean - half, mean + half))
    assert paired_difference({0: 0.5}, {1: 0.5}) is None


def test_first_crossing_interpolates_and_never_extrapolates():
    curve = {0.0: 0.2, 0.5: 0.4, 1.0: 0.6}
    assert first_crossing(curve, 0.3) == pytest.approx(0.25)
    assert first_crossing(curve, 0.1) == 0.0
    assert first_crossing(curve, 0.7) is None


def test_bootstrap_efficiency_is_exact_without_seed_noise():
    baseline = {0.0: dict.fromkeys(range(3), 0.2), 0.5: dict.fromkeys(range(3), 0.4), 1.0: dict.fromkeys(range(3), 0.6)}
    result = bootstrap_efficiency(dict.fromkeys(range(3), 0.5), baseline, 0.1, resamples=200)
    assert result.needed == pytest.approx(0.75) and result.low == pytest.approx(0.75)
    assert result.high == pytest.approx(0.75) and result.verdict == "resolved" and result.n_seeds == 3


def test_bootstrap_efficiency_says_not_reached_and_not_resolved():
    baseline = {0.0: {0: 0.2, 1: 0.2}, 1.0: {0: 0.4, 1: 0.4}}
    assert bootstrap_efficiency({0: 0.5, 1: 0.5}, baseline, 0.1).verdict == "not reached"
    # seed 1's baseline never reaches the method: resamples of seed 1 alone run past the grid
    noisy = {0.0: {0: 0.2, 1: 0.2}, 1.0: {0: 0.9, 1: 0.3}}
    result = bootstrap_efficiency({0: 0.5, 1: 0.5}, noisy, 0.1, resamples=500)
    assert result.needed == pytest.approx((0.5 - 0.2) / (0.6 - 0.2)) and result.verdict == "not resolved"
    assert result.high is None and result.low == pytest.approx(0.3 / 0.7)  # seed 0 alone: 0.2 → 0.9


def test_bootstrap_efficiency_of_one_seed_is_a_pilot_without_interval():
    baseline = {0.0: {0: 0.2, 1: 0.3}, 0.5: {0: 0.6, 1: 0.8}}
    result = bootstrap_efficiency({0: 0.4}, baseline, 0.1)
    assert result.needed == pytest.approx(0.25)  # seed 0's baseline curve: 0.2 → 0.6, crossing 0.4 halfway
    assert (result.low, result.high, result.verdict, result.n_seeds) == (None, None, "pilot", 1)
    assert bootstrap_efficiency({0: 0.9}, baseline, 0.1).verdict == "not reached"
