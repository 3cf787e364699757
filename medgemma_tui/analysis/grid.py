"""The one area resampler: masks to grid-cell coverage, films to a smaller size, masks back up, and a
map from one frame of a film onto another (``regrid``).

Resampling is a product with sparse matrices (``rows @ x @ cols.T``), not dense BLAS: multithreaded
BLAS on a busy machine ran the dense version ten times slower.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["area_matrix", "area_resize", "interp_matrix", "interp_resize", "mask_to_grid", "regrid", "resample"]


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


def regrid(grid: np.ndarray, src: tuple[float, float, float, float], dst: tuple[float, float, float, float],
           shape: tuple[int, int] | None = None) -> np.ndarray:
    """Mass of a map over box ``src`` redistributed onto a ``shape`` grid over box ``dst`` (by area).

    Boxes are (x0, y0, x1, y1) in the same pixel coordinates; each source cell gives each target cell
    the share of its area they overlap (mass outside ``dst`` is dropped). Identical boxes and shapes
    return the map unchanged.
    """
    g = np.asarray(grid, dtype=np.float64)
    rows, cols = shape or g.shape
    ry = _overlap(np.linspace(src[1], src[3], g.shape[0] + 1), np.linspace(dst[1], dst[3], rows + 1))
    rx = _overlap(np.linspace(src[0], src[2], g.shape[1] + 1), np.linspace(dst[0], dst[2], cols + 1))
    return ry @ g @ rx.T


def _overlap(src_edges: np.ndarray, dst_edges: np.ndarray) -> np.ndarray:
    """[dst, src]: the fraction of each source interval that falls in each target interval."""
    lo = np.maximum(dst_edges[:-1, None], src_edges[None, :-1])
    hi = np.minimum(dst_edges[1:, None], src_edges[None, 1:])
    return np.clip(hi - lo, 0.0, None) / np.diff(src_edges)[None, :]
