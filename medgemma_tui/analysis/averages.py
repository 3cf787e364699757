"""The mean of the finite values of a column: NaN, None and text that is not a number are skipped."""

from __future__ import annotations

import numpy as np
import pandas as pd


def finite_mean(values) -> float | None:
    """Mean over the finite numbers in ``values``; None when there are none."""
    vals = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").astype(float)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if len(vals) else None
