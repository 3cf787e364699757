"""The one area resampler: masks to grid-cell coverage, films to a smaller size, masks back up.

Resampling is a product with sparse matrices (``rows @ x @ cols.T``), not dense BLAS: multithreaded
BLAS on a busy machine ran the dense version ten times slower.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["area_matrix", "area_resize", "interp_matrix", "interp_resize", "mask_to_grid", "resample"]


def area_matrix(n_out: int, n_in: int) -> sparse.csr_matrix:
    """Sparse (n_out, n_in) weights averaging input pixels over each output cell, by overlap length."""
    edges = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
    rows, cols, data = [], [], []
    for i in range(n_out):
        j = np.arange(int(np.floor(edges[i])), min(n_in, int(np.ceil(edges[i + 1]))))
        w = np.minimum(j + 1, edges[i + 1]) - np.maximum(j, edges[i])
        keep = w > 0
        rows.append(np.full(keep.sum(), i))
        cols.append(j[keep])
        data.append(w[keep] / w[keep].sum())
    return sparse.csr_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n_out, n_in)
    )


def interp_matrix(n_out: int, n_in: int) -> sparse.csr_matrix:
    """Sparse (n_out, n_in) linear interpolation weights, pixel centres aligned."""
    x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.minimum(np.floor(x).astype(int), max(n_in - 2, 0))
    w = x - lo
    rows = np.repeat(np.arange(n_out), 2)
    cols = np.stack([lo, np.minimum(lo + 1, n_in - 1)], axis=1).ravel()
    data = np.stack([1 - w, w], axis=1).ravel()
    return sparse.csr_matrix((data, (rows, cols)), shape=(n_out, n_in))


def resample(x: np.ndarray, rows: sparse.csr_matrix, cols: sparse.csr_matrix, dtype=np.float32) -> np.ndarray:
    """``rows @ x @ cols.T`` for sparse ``rows`` and ``cols``."""
    y = rows @ np.asarray(x, dtype=dtype)
    return np.ascontiguousarray((cols @ y.T).T)


def mask_to_grid(mask: np.ndarray, grid: tuple[int, int] | int = (16, 16)) -> np.ndarray:
    """Fraction of each grid cell covered by ``mask`` (area resampling), float64 ``grid``-shaped.

    Cell ``(i, j)`` covers rows ``[i*H/R, (i+1)*H/R)`` and columns ``[j*W/C, (j+1)*W/C)`` in
    continuous pixel coordinates, so H and W need not be multiples of the grid; a pixel cut by a cell
    edge counts in each cell by its overlap. A float mask is averaged the same way.
    """
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    return resample(m, area_matrix(rows, m.shape[0]), area_matrix(cols, m.shape[1]), np.float64)


def area_resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``x`` (2-D) averaged by area onto ``shape`` (rows, cols), float32; also upsamples (nearest-like)."""
    return resample(x, area_matrix(shape[0], x.shape[0]), area_matrix(shape[1], x.shape[1])).astype(np.float32)


def interp_resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``x`` (2-D) linearly interpolated onto ``shape`` (rows, cols), pixel centres aligned, float32."""
    return resample(x, interp_matrix(shape[0], x.shape[0]), interp_matrix(shape[1], x.shape[1])).astype(np.float32)
