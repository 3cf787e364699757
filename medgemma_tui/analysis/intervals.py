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

__all__ = ["bootstrap_ci", "bootstrap_columns_ci", "bootstrap_means_ci", "ratio_ci", "paired_difference_ci"]

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


def _group_codes(labels: np.ndarray) -> np.ndarray:
    """Each row's group as 0..G-1 (groups compared as text, so 1 and "1" are one study)."""
    return np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)[1]


def _draws(groups: int, n: int, seed: int):
    """The ``n`` seeded resamples of ``groups`` groups with replacement: each the drawn group indices."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield rng.integers(0, groups, groups)


def _percentiles(stats: np.ndarray, level: float, axis: int | None = None):
    alpha = (1.0 - level) / 2.0
    return np.quantile(stats, [alpha, 1.0 - alpha], axis=axis)


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
    codes = _group_codes(labels)
    if codes.max() + 1 < min_groups:
        return NAN_INTERVAL
    members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]  # rows of each group
    stats = np.empty(n)
    for b, drawn in enumerate(_draws(len(members), n, seed)):
        rows = np.concatenate([members[g] for g in drawn])
        stats[b] = statistic(*(c[rows] for c in data))
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return NAN_INTERVAL
    low, high = _percentiles(stats, level)
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


def bootstrap_means_ci(values: np.ndarray, groups: Sequence, n: int = 1000, seed: int = 0, level: float = 0.95
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``bootstrap_ci`` of the mean of every column of ``values`` [rows, K] at once (a map's heads).

    The same replicates (the same seeded draws of studies) for every column, so a column without NaN
    gets the interval ``bootstrap_ci`` gives it alone; each replicate's mean is (draw counts @ study
    sums) / (draw counts @ study sizes). Columns with a NaN are left to ``bootstrap_ci``, which drops
    their NaN rows first. Returns (low, high), each [K].
    """
    _check(n, level)
    values = np.asarray(values, dtype=np.float64)
    rows, k = values.shape
    low, high = np.full(k, np.nan), np.full(k, np.nan)
    clean = np.isfinite(values).all(axis=0)
    for column in np.flatnonzero(~clean):
        low[column], high[column] = bootstrap_ci(values[:, column], groups, n=n, seed=seed, level=level)
    if rows == 0 or not clean.any():
        return low, high
    codes = _group_codes(groups)
    g = int(codes.max()) + 1
    sums = np.zeros((g, int(clean.sum())))
    np.add.at(sums, codes, values[:, clean])
    sizes = np.bincount(codes, minlength=g).astype(np.float64)
    counts = np.stack([np.bincount(drawn, minlength=g) for drawn in _draws(g, n, seed)]).astype(np.float64)
    means = (counts @ sums) / (counts @ sizes)[:, None]  # [n, K clean]
    low[clean], high[clean] = _percentiles(means, level, axis=0)
    return low, high


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
