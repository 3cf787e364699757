"""Averages of a column over the finite values (NaN, None and text that is not a number are skipped), and
the accuracy of the scored rows."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _finite(values) -> pd.Series:
    vals = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").astype(float)
    return vals[np.isfinite(vals)]


def finite_mean(values) -> float | None:
    """Mean over the finite numbers in ``values``; None when there are none."""
    vals = _finite(values)
    return float(vals.mean()) if len(vals) else None


def robust_summary(values) -> dict[str, float | None]:
    """Median and interquartile range of the finite values (None without any)."""
    finite = _finite(values)
    if finite.empty:
        return {"median": None, "q1": None, "q3": None, "n": 0}
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "n": int(len(finite))}


def scored_accuracy(done: pd.DataFrame) -> tuple[float | None, int]:
    """The accuracy over the finished rows with a yes/no ground truth, and how many they are."""
    correct = done["correct"].dropna() if "correct" in done else []
    return (float(np.mean(correct.astype(bool))) if len(correct) else None), len(correct)
