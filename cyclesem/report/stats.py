"""Statistics over seeds: t-intervals, paired differences and the bootstrap data-efficiency estimate.

A study repeats every (method, real_frac) job over seeds; a seed fixes the labelled subset, so two methods
with the same seed saw the same real images and their difference is paired. Scores are fractions in [0, 1].
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """Mean over n values with its sample std and a two-sided t confidence interval (std and bounds are None
    for one value: a pilot, not an estimate)."""

    n: int
    mean: float
    std: float | None
    low: float | None
    high: float | None

    def spans_zero(self) -> bool:
        return self.low is None or self.low <= 0.0 <= self.high


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student-t interval of the mean of ``values`` (nan values are left out)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        raise ValueError("t_interval needs at least one finite value")
    mean = statistics.fmean(values)
    if len(values) == 1:
        return Interval(1, mean, None, None, None)
    std = statistics.stdev(values)
    half = scipy_stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * std / math.sqrt(len(values))
    return Interval(len(values), mean, std, mean - half, mean + half)


def paired_difference(ours: Mapping[int, float], theirs: Mapping[int, float],
                      confidence: float = CONFIDENCE) -> Interval | None:
    """t-interval of ours[seed] − theirs[seed] over the seeds both have; None when they share none."""
    seeds = sorted(set(ours) & set(theirs))
    if not seeds:
        return None
    return t_interval([ours[s] - theirs[s] for s in seeds], confidence)


def first_crossing(curve: Mapping[float, float], score: float) -> float | None:
    """The smallest real fraction at which ``curve`` (fraction → score, read as straight lines between its
    points) reaches ``score``; its first fraction when it starts at or above it; None when it never does
    (no extrapolation)."""
    points = sorted(curve.items())
    if not points:
        return None
    if points[0][1] >= score:
        return points[0][0]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if y0 < score <= y1:
            return x0 + (score - y0) / (y1 - y0) * (x1 - x0)
    return None


@dataclass(frozen=True)
class Efficiency:
    """How much real data the baseline needs to match the method at one fraction, with a bootstrap CI over
    seeds. ``verdict``: "resolved" (a CI inside the grid), "not reached" (the baseline's mean curve never
    gets there) or "not resolved" (the CI runs past the grid's first or last fraction)."""

    frac: float
    score: float
    needed: float | None
    low: float | None
    high: float | None
    verdict: str
    n_seeds: int


def bootstrap_efficiency(method_scores: Mapping[int, float], baseline: Mapping[float, Mapping[int, float]],
                         frac: float, *, resamples: int = 2000, confidence: float = CONFIDENCE,
                         seed: int = 0) -> Efficiency:
    """The baseline's real fraction that matches the method's mean score at ``frac``.

    ``method_scores``: seed → score of the method at ``frac``; ``baseline``: fraction → seed → score. Seeds
    are resampled with replacement, the same draw for the method and every baseline fraction (a seed is one
    labelled subset for all of them); a resample whose baseline curve never reaches the method counts as
    beyond the grid. Percentile interval.
    """
    seeds = sorted(set(method_scores) & {s for scores in baseline.values() for s in scores})
    if not seeds:
        raise ValueError("bootstrap_efficiency needs seeds that both the method and the baseline have")

    def needed(draw: Sequence[int]) -> float | None:
        target = statistics.fmean(method_scores[s] for s in draw)
        curve = {}
        for f, scores in baseline.items():
            drawn = [scores[s] for s in draw if s in scores]
            if drawn:
                curve[f] = statistics.fmean(drawn)
        return first_crossing(curve, target)

    score = statistics.fmean(method_scores[s] for s in seeds)
    point = needed(seeds)
    if len(seeds) < 2:  # a pilot: one labelled subset has no spread to resample, so no interval
        return Efficiency(frac, score, point, None, None, "not reached" if point is None else "pilot", 1)
    rng = np.random.default_rng(seed)
    draws = [needed([seeds[i] for i in rng.integers(0, len(seeds), len(seeds))]) for _ in range(resamples)]
    values = np.array([math.inf if d is None else d for d in draws])
    # no interpolation between draws: one of them may be inf (beyond the grid)
    low, high = (float(v) for v in np.quantile(values, [0.5 - confidence / 2, 0.5 + confidence / 2],
                                                method="inverted_cdf"))
    grid = sorted(baseline)
    if point is None:
        verdict = "not reached"
    elif len(seeds) < 2 or math.isinf(high) or (low <= grid[0] and high >= grid[-1]):
        verdict = "not resolved"
    else:
        verdict = "resolved"
    return Efficiency(frac, score, point, low if math.isfinite(low) else None,
                      high if math.isfinite(high) else None, verdict, len(seeds))


@dataclass(frozen=True)
class Ratio:
    """mean(numerator) / mean(denominator) with a delta-method t interval (None bounds when either side has one
    value: a pilot)."""

    value: float
    low: float | None
    high: float | None
    n_numerator: int
    n_denominator: int


def ratio_interval(numerator: Sequence[float], denominator: Sequence[float],
                   confidence: float = CONFIDENCE) -> Ratio:
    """The ratio of two independent groups' means (different jobs: no pairing by seed), with its 95 % interval by
    the delta method: ``se² = (s_a² / n_a) / b² + a² (s_b² / n_b) / b⁴`` for means a, b, and a Student-t quantile
    at the Welch–Satterthwaite degrees of freedom (a t-interval of the mean when the denominator has no spread)."""
    a_values = [v for v in numerator if math.isfinite(v)]
    b_values = [v for v in denominator if math.isfinite(v)]
    if not a_values or not b_values:
        raise ValueError("ratio_interval needs at least one finite value on each side")
    a, b = statistics.fmean(a_values), statistics.fmean(b_values)
    if b == 0:
        raise ValueError("ratio_interval: the denominator's mean is 0")
    ratio = a / b
    if len(a_values) < 2 or len(b_values) < 2:
        return Ratio(ratio, None, None, len(a_values), len(b_values))
    u_a = statistics.variance(a_values) / len(a_values) / b**2  # each side's share of the ratio's variance
    u_b = a**2 * statistics.variance(b_values) / len(b_values) / b**4
    if u_a + u_b == 0:
        return Ratio(ratio, ratio, ratio, len(a_values), len(b_values))
    dof = (u_a + u_b) ** 2 / (u_a**2 / (len(a_values) - 1) + u_b**2 / (len(b_values) - 1))
    half = scipy_stats.t.ppf(0.5 + confidence / 2, dof) * math.sqrt(u_a + u_b)
    return Ratio(ratio, ratio - half, ratio + half, len(a_values), len(b_values))
