"""The comparison's statistics on arrays with known answers (no study, no Ray, no Keras)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunefleet.reports import comparison_stats as cs


def test_an_anytime_curve_read_at_a_budget():
    x = np.array([2.0, 4.0, 6.0, 8.0])
    best = np.array([np.nan, 0.5, 0.7, 0.9])
    assert math.isnan(cs.value_at(x, best, 1.0))  # nothing spent yet
    assert cs.value_at(x, best, 4.0) == 0.5 and cs.value_at(x, best, 7.9) == 0.7
    assert cs.value_at(x, best, 100.0) == 0.9
    assert cs.first_reach(x, best, 0.7, "max") == 6.0
    assert math.isnan(cs.first_reach(x, best, 0.7, "max", limit=5.0))
    assert math.isnan(cs.first_reach(x, best, 0.95, "max"))
    assert cs.first_reach(x, -best, -0.6, "min") == 6.0
    # Area over [0, 8]: the floor 0.1 until 4 (the NaN counts as the floor), then 0.5, 0.7.
    assert cs.area_under(x, best, 8.0, floor=0.1) == pytest.approx((0.1 * 4 + 0.5 * 2 + 0.7 * 2) / 8)
    # Results past the budget do not count; the last value holds to the budget.
    assert cs.area_under(x, best, 5.0, floor=0.0) == pytest.approx(0.5 * 1 / 5)


def test_bootstrap_interval_and_iqm():
    values = [0.90, 0.91, 0.92, 0.95, 0.60]
    low, high = cs.bootstrap_interval(values)
    assert isinstance(low, float) and low < np.mean(values) < high
    assert min(values) <= low and high <= max(values)
    assert cs.bootstrap_interval(values) == (low, high)  # seeded: the same report twice
    assert all(math.isnan(v) for v in cs.bootstrap_interval([0.9]))  # one seed: no interval
    assert cs.bootstrap_interval([0.8, 0.8, float("nan")]) == (0.8, 0.8)
    # The interquartile mean drops the outlying seed that the mean keeps.
    assert cs.iqm(values) == pytest.approx(np.mean([0.90, 0.91, 0.92]))
    assert math.isnan(cs.iqm([float("nan")]))


def test_rank_test_probability_of_beating_and_exact_p():
    a, b = [0.95, 0.96, 0.97], [0.90, 0.91, 0.92]
    result = cs.rank_test(a, b, "max")
    assert isinstance(result, cs.RankTest)
    assert result.p_beats == 1.0 and result.u == 9.0
    assert result.p == pytest.approx(0.1)  # exact: 2 / C(6, 3), the least 3 seeds allow
    assert cs.rank_test(a, b, "min").p_beats == 0.0  # lower is better: A never beats B
    assert cs.rank_test(b, a, "max").p_beats == 0.0
    mixed = cs.rank_test([1, 3, 5], [2, 4, 6], "max")
    assert mixed.p_beats == pytest.approx(3 / 9) and mixed.p > 0.5
    same = cs.rank_test([0.5, 0.5], [0.5, 0.5], "max")
    assert (same.p_beats, same.p) == (0.5, 1.0)
    assert cs.rank_test([float("nan")], [0.5], "max") is None


@pytest.mark.parametrize("n, p", [(2, 1 / 3), (3, 0.1), (4, 2 / 70), (5, 2 / 252)])
def test_the_smallest_p_a_rank_test_can_give(n, p):
    assert cs.smallest_p(n, n) == pytest.approx(p)
    assert cs.rank_test(list(range(n, 2 * n)), list(range(n)), "max").p == pytest.approx(p)


def test_seeds_needed_and_holm():
    assert cs.seeds_needed(0.05) == 4 and cs.seeds_needed(0.01) == 5
    assert cs.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = cs.holm([0.2, float("nan")])
    assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1])


def test_mean_band_over_seeds():
    curves = np.array([[np.nan, 0.5, 0.6, 0.6], [0.4, 0.5, 0.7, 0.8], [0.3, 0.5, 0.8, 0.9]])
    mean, low, high = cs.mean_band(curves)
    assert math.isnan(mean[0]) and math.isnan(low[0])  # a seed had no result yet
    assert mean[1] == pytest.approx(0.5) and low[1] == high[1] == pytest.approx(0.5)
    assert mean[3] == pytest.approx(0.7667, abs=1e-4)
    assert 0.6 <= low[3] < mean[3] < high[3] <= 0.9
    one_mean, one_low, _ = cs.mean_band(curves[1:2])
    assert one_mean[2] == pytest.approx(0.7) and np.isnan(one_low).all()
