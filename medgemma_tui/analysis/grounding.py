"""Ground-truth boxes on the model's grid.

The processor stretches a non-square film to its square input, so a box given in the original
image's pixels covers the same *fraction* of the width and height on the grid: map it through those
fractions, never through a square crop. By the same stretch, grid cell ``(i, j)`` of an ``R x C``
grid covers ``[j W/C, (j+1) W/C) x [i H/R, (i+1) H/R)`` of a ``W x H`` film.

The pointing game (Zhang et al. 2016, "Top-down neural attention by excitation backprop", ECCV):
a map's top point is a hit when it lies within 15 pixels of a ground-truth box. Here the top point
is the centre of the top cell, in the film's own pixels, and the tolerance is in those pixels too.
``pointing_cells`` gives the cells that would be hits; the hit rate of a uniformly random top cell
(the chance level by the same rule) is their fraction.
"""

from __future__ import annotations

import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h in original image pixels
POINTING_TOLERANCE_PX = 15.0  # Zhang et al. 2016


def _interval_coverage(lo: float, hi: float, cells: int) -> np.ndarray:
    """Fraction of each of `cells` equal cells on [0, 1] covered by [lo, hi]."""
    edges = np.linspace(0.0, 1.0, cells + 1)
    overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None)
    return overlap * cells


def box_to_grid(box: Box, image_size: tuple[int, int], grid: tuple[int, int] = (16, 16)) -> np.ndarray:
    """Per-cell coverage fraction [rows, cols] of a box given in pixels of an image (width, height)."""
    width, height = image_size
    x, y, w, h = box
    cols = _interval_coverage(x / width, (x + w) / width, grid[1])
    rows = _interval_coverage(y / height, (y + h) / height, grid[0])
    return np.outer(rows, cols)


def boxes_to_grid(boxes, image_size: tuple[int, int], grid: tuple[int, int] = (16, 16)) -> np.ndarray | None:
    """Union coverage of several boxes (capped at 1 per cell); None when there is no box."""
    if not boxes:
        return None
    cover = np.zeros(grid)
    for box in boxes:
        cover = np.maximum(cover, box_to_grid(box, image_size, grid))
    return cover


def box_area_fraction(boxes, image_size: tuple[int, int], grid: tuple[int, int] = (16, 16)) -> float:
    """Area of the boxes over the image's area: the pointing game's chance level for that film."""
    cover = boxes_to_grid(boxes, image_size, grid)
    return 0.0 if cover is None else float(cover.mean())


def cell_centres(image_size: tuple[int, int], grid: tuple[int, int] = (16, 16)) -> tuple[np.ndarray, np.ndarray]:
    """(x of each column's centre [C], y of each row's centre [R]) in the film's pixels."""
    width, height = image_size
    rows, cols = grid
    return (np.arange(cols) + 0.5) * width / cols, (np.arange(rows) + 0.5) * height / rows


def pointing_cells(
    boxes, image_size: tuple[int, int], grid: tuple[int, int] = (16, 16), tolerance: float = POINTING_TOLERANCE_PX
) -> np.ndarray | None:
    """[R, C] bool: cells whose centre lies within ``tolerance`` film pixels of a box (inside counts 0).

    None when there is no box. The distance from a point to a box is the Euclidean distance to its
    nearest point (0 inside), so the hit region is the box grown by ``tolerance`` with rounded corners.
    """
    if not boxes:
        return None
    if tolerance < 0:
        raise ValueError(f"pointing tolerance must be >= 0 px, got {tolerance}")
    cx, cy = cell_centres(image_size, grid)
    hit = np.zeros(grid, dtype=bool)
    for x, y, w, h in boxes:
        dx = np.maximum(np.maximum(x - cx, cx - (x + w)), 0.0)  # [C]
        dy = np.maximum(np.maximum(y - cy, cy - (y + h)), 0.0)  # [R]
        hit |= dy[:, None] ** 2 + dx[None, :] ** 2 <= tolerance**2
    return hit


def pointing_chance(
    boxes, image_size: tuple[int, int], grid: tuple[int, int] = (16, 16), tolerance: float = POINTING_TOLERANCE_PX
) -> float:
    """Hit rate of a uniformly random top cell under the pointing rule; NaN without a box."""
    cells = pointing_cells(boxes, image_size, grid, tolerance)
    return float("nan") if cells is None else float(cells.mean())
