"""Similarity of a map to the original's, for the model-parameter randomisation test (Adebayo et al.,
2018, "Sanity Checks for Saliency Maps"): the Spearman rank correlation of the cells and the structural
similarity index (Wang, Bovik, Sheikh and Simoncelli, 2004), both on maps scaled to [0, 1].

A method whose map depends on the model keeps falling as more layers are randomised; a map that stays
near 1 shows the image (edges, intensity) rather than what the model computed.
"""

from __future__ import annotations

import math

import numpy as np


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average 1-based ranks, ties sharing their mean rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def spearman(p: np.ndarray, q: np.ndarray) -> float:
    """Spearman's rho of the cells of two maps (Pearson of their average ranks); NaN for a constant map."""
    a, b = np.asarray(p, np.float64).ravel(), np.asarray(q, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps differ in size: {a.size} vs {b.size}")
    ra, rb = _ranks(a) - (a.size + 1) / 2.0, _ranks(b) - (b.size + 1) / 2.0
    denom = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else math.nan


def scaled(grid: np.ndarray) -> np.ndarray:
    """The map scaled to [0, 1] by its range (a constant map becomes zeros)."""
    g = np.asarray(grid, dtype=np.float64)
    span = g.max() - g.min()
    return (g - g.min()) / span if span > 0 else np.zeros_like(g)


def ssim(p: np.ndarray, q: np.ndarray, window: int = 7) -> float:
    """Mean SSIM of two 2-D maps over ``window`` x ``window`` windows (uniform, valid positions only),
    each map first scaled to [0, 1]; constants C1 = (0.01)^2 and C2 = (0.03)^2 for the data range 1."""
    a, b = scaled(p), scaled(q)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"SSIM needs two 2-D maps of one shape, got {a.shape} and {b.shape}")
    w = min(window, *a.shape)
    c1, c2 = 0.01**2, 0.03**2
    from numpy.lib.stride_tricks import sliding_window_view

    wa, wb = sliding_window_view(a, (w, w)), sliding_window_view(b, (w, w))  # [r, c, w, w]
    mu_a, mu_b = wa.mean(axis=(-2, -1)), wb.mean(axis=(-2, -1))
    var_a, var_b = wa.var(axis=(-2, -1)), wb.var(axis=(-2, -1))
    cov = (wa * wb).mean(axis=(-2, -1)) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())
