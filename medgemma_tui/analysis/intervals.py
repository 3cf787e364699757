"""Bootstrap confidence intervals that resample studies, not rows.

Rows of one study (a film's questions and their paraphrases) are not independent: resampling rows
treats ten paraphrases of one question as ten observations and makes intervals too narrow. These
functions resample *groups* with replacement (the cluster bootstrap; Davison and Hinkley 1997,
"Bootstrap Methods and their Application", section 3.8) and report the percentile interval (Efron and
Tibshirani 1993, "An Introduction to the Bootstrap", chapter 13).

Every function is seeded (the same call gives the same interval) and NaN-safe: rows where any input is
NaN are left out before resampling, and replicates whose statistic is NaN are left out of the
quantiles. With no usable row the interval is ``(nan, nan)``, and so it is with fewer than ``min_groups``
groups: resampling a single study draws that study every time, and its zero-width interval would say
"no uncertainty" where there is no information about it (pass ``min_groups=2`` for a study bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["bootstrap_ci", "bootstrap_columns_ci", "ratio_ci", "paired_difference_ci"]

Interval = tuple[float, float]
NAN_INTERVAL: Interval = (math.nan, math.nan)
# the study bootstrap of every dataset figure (summary.json, comparisons): seeded, 1000 replicates, and no
# interval over fewer than two studies
SEED = 0
RESAMPLES = 1000
MIN_STUDIES = 2


def _check(n: int, level: float) -> None:
    if n < 1:
        raise ValueError(f"bootstrap needs n >= 1 replicates, got {n}")
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")


def bootstrap_columns_ci(
    columns: Sequence[Sequence[float]],
    groups: Sequence | None,
    statistic: Callable[..., float],
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    min_groups: int = 1,
) -> Interval:
    """Percentile interval of ``statistic(*columns)`` under resampling of ``groups`` with replacement.

    ``columns`` are equal-length arrays (one per argument of ``statistic``), ``groups`` a label per
    row (a study id); None makes every row its own group (the plain bootstrap).
    """
    _check(n, level)
    data = [np.asarray(c, dtype=np.float64).ravel() for c in columns]
    length = len(data[0])
    if any(len(c) != length for c in data):
        raise ValueError(f"columns differ in length: {[len(c) for c in data]}")
    labels = np.arange(length) if groups is None else np.asarray(groups, dtype=object).ravel()
    if len(labels) != length:
        raise ValueError(f"{len(labels)} group labels for {length} rows")
    keep = np.logical_and.reduce([np.isfinite(c) for c in data]) if data else np.zeros(0, bool)
    data = [c[keep] for c in data]
    labels = labels[keep]
    if len(labels) == 0:
        return NAN_INTERVAL
    _, codes = np.unique(labels.astype(str), return_inverse=True)
    if codes.max() + 1 < min_groups:
        return NAN_INTERVAL
    members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]  # rows of each group
    rng = np.random.default_rng(seed)
    stats = np.empty(n)
    for b in range(n):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        stats[b] = statistic(*(c[rows] for c in data))
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return NAN_INTERVAL
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float],
    groups: Sequence | None = None,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    min_groups: int = 1,
) -> Interval:
    """(low, high) percentile interval of ``statistic(values)``, resampling ``groups`` (studies).

    For accuracy, consistency or the pointing game pass the 0/1 column and its study ids.
    """
    return bootstrap_columns_ci([values], groups, statistic, n=n, seed=seed, level=level, min_groups=min_groups)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> float:
    total = denominator.sum()
    return float(numerator.sum() / total) if total != 0 else math.nan


def ratio_ci(
    numerator: Sequence[float],
    denominator: Sequence[float],
    groups: Sequence | None = None,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    min_groups: int = 1,
) -> Interval:
    """Interval of the ratio of sums (= ratio of means), rows resampled together by group.

    E.g. the pointing game over its chance: ``ratio_ci(pointing_hit, pointing_chance, study_id)``.
    """
    return bootstrap_columns_ci([numerator, denominator], groups, _ratio, n=n, seed=seed, level=level,
                                min_groups=min_groups)


def paired_difference_ci(after: Sequence[float], before: Sequence[float], groups: Sequence | None = None,
                         statistic: Callable[[np.ndarray], float] = np.mean, n: int = 1000, seed: int = 0,
                         level: float = 0.95, min_groups: int = 1) -> Interval:
    """Interval of ``statistic(after) - statistic(before)`` on the same resampled rows (a paired gain)."""

    def difference(a: np.ndarray, b: np.ndarray) -> float:
        return float(statistic(a) - statistic(b))

    return bootstrap_columns_ci([after, before], groups, difference, n=n, seed=seed, level=level,
                                min_groups=min_groups)
