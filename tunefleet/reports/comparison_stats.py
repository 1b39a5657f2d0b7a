"""The statistics of a comparison, as pure functions of arrays (no study, no drawing).

- An anytime curve (best objective so far, against what was spent) read at a budget, its first
  reach of a target, and its area over the budget.
- Over the seeds of one variant: the mean with a 95% percentile-bootstrap interval
  (``scipy.stats.bootstrap``) and the interquartile mean (IQM: the mean of the middle half,
  ``scipy.stats.trim_mean(x, 0.25)``, robust to one lucky or unlucky seed).
- Between two variants: the probability that a seed of A beats a seed of B at equal budget, the
  Mann-Whitney U statistic divided by the number of pairs (ties count half), with the rank
  test's two-sided p-value, Holm-adjusted over every pair of the comparison.

A rank test on n seeds per side cannot give a p-value below ``2 / C(2n, n)`` (0.10 for 3 seeds,
0.029 for 4): :func:`smallest_p` says so, and the verdict repeats it rather than hide it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

__all__ = ["CONFIDENCE", "value_at", "first_reach", "area_under", "bootstrap_interval", "iqm",
           "RankTest", "rank_test", "holm", "smallest_p", "seeds_needed", "mean_band"]

CONFIDENCE = 0.95
N_RESAMPLES = 9_999  # per interval of a table cell
BAND_RESAMPLES = 1_000  # per point of an anytime band (200 points a curve)


def _stats() -> Any:
    """scipy.stats, imported when first used (scikit-learn brings scipy; it ships no types)."""
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    return stats


def value_at(x: np.ndarray, best: np.ndarray, at: float) -> float:
    """The running best ``best`` (ordered by ``x``, what had been spent at each result) once
    ``at`` had been spent: the last value with ``x <= at`` (NaN before the first result)."""
    i = int(np.searchsorted(x, at, side="right")) - 1
    return float(best[i]) if i >= 0 else math.nan


def first_reach(x: np.ndarray, best: np.ndarray, target: float, mode: str,
                limit: float = math.inf) -> float:
    """What had been spent (``x``) when the running best first reached ``target`` (within
    ``limit``); NaN if it never did."""
    with np.errstate(invalid="ignore"):
        reached = (best >= target if mode == "max" else best <= target) & (x <= limit)
    return float(x[int(np.argmax(reached))]) if reached.any() else math.nan


def area_under(x: np.ndarray, best: np.ndarray, budget: float, floor: float) -> float:
    """Mean of the running best over ``[0, budget]`` (the area under the step curve divided by
    the budget): each value holds from its ``x`` to the next result's; before the first finite
    value the curve is ``floor`` (a common worst value, so that studies compare)."""
    if budget <= 0:
        return math.nan
    keep = x <= budget
    xs = np.concatenate([[0.0], x[keep].astype(float)])
    ys = np.concatenate([[floor], best[keep].astype(float)])
    ys = np.where(np.isfinite(ys), ys, floor)
    widths = np.diff(np.concatenate([xs, [budget]]))
    return float(np.sum(ys * widths) / budget)


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def bootstrap_interval(values: Sequence[float], seed: int = 0,
                       statistic: Callable[..., np.ndarray] = np.mean) -> tuple[float, float]:
    """95% percentile-bootstrap interval of ``statistic`` over the finite ``values`` (NaN, NaN
    for fewer than two; the value itself twice when they are all equal)."""
    data = _finite(values)
    if len(data) < 2:
        return math.nan, math.nan
    if np.ptp(data) == 0:
        return float(data[0]), float(data[0])
    result = _stats().bootstrap((data,), statistic, n_resamples=N_RESAMPLES, vectorized=True,
                             confidence_level=CONFIDENCE, method="percentile",
                             rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean of the finite ``values`` (NaN if none)."""
    data = _finite(values)
    if not len(data):
        return math.nan
    return float(_stats().trim_mean(data, 0.25))


@dataclass
class RankTest:
    """A beats B: ``p_beats`` = P(a seed of A is better than a seed of B), ties half; ``u``
    the Mann-Whitney U of A; ``p`` the two-sided p-value."""

    p_beats: float
    u: float
    p: float
    n_a: int
    n_b: int


def rank_test(a: Sequence[float], b: Sequence[float], mode: str) -> Optional[RankTest]:
    """Mann-Whitney U test of A against B (``mode``: which way is better); None when a side
    has no finite value. Exact for small samples without ties (scipy's ``auto``)."""
    x, y = _finite(a), _finite(b)
    if not len(x) or not len(y):
        return None
    if np.ptp(np.concatenate([x, y])) == 0:  # all equal: no evidence either way
        return RankTest(0.5, len(x) * len(y) / 2, 1.0, len(x), len(y))
    result = _stats().mannwhitneyu(x, y, alternative="two-sided", method="auto")
    u = float(result.statistic)  # pairs where A's value is larger, ties half
    larger = u / (len(x) * len(y))
    return RankTest(larger if mode == "max" else 1.0 - larger, u, float(result.pvalue),
                    len(x), len(y))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    running, k = 0.0, len(order)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p[i]))
        out[i] = running
    return out.tolist()


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value a rank test of ``n_a`` against ``n_b`` values can give."""
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a)) if n_a and n_b else 1.0


def seeds_needed(alpha: float) -> int:
    """The fewest seeds per variant with which the rank test can reach ``alpha``."""
    n = 1
    while smallest_p(n, n) > alpha:
        n += 1
    return n


def mean_band(curves: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``curves`` (seeds × points): the mean and its 95% percentile-bootstrap
    band, NaN where a seed has no value yet (and no band with fewer than two seeds)."""
    n, points = curves.shape
    mean = np.full(points, math.nan)
    low, high = mean.copy(), mean.copy()
    ok = np.isfinite(curves).all(axis=0) if n else np.zeros(points, dtype=bool)
    if not ok.any():
        return mean, low, high
    mean[ok] = curves[:, ok].mean(axis=0)
    if n < 2:
        return mean, low, high
    with warnings.catch_warnings():  # columns where every seed agrees: a band of width 0
        warnings.simplefilter("ignore")
        result = _stats().bootstrap((curves[:, ok],), np.mean, axis=0, vectorized=True,
                                 n_resamples=BAND_RESAMPLES, confidence_level=CONFIDENCE,
                                 method="percentile", rng=np.random.default_rng(seed))
    low[ok] = np.minimum(result.confidence_interval.low, mean[ok])
    high[ok] = np.maximum(result.confidence_interval.high, mean[ok])
    return mean, low, high
