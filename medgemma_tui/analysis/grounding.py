"""Ground-truth boxes on the model's grid.

The processor stretches a non-square film to its square input, so a box given in the original
image's pixels covers the same *fraction* of the width and height on the grid: map it through those
fractions, never through a square crop. By the same stretch, grid cell ``(i, j)`` of an ``R x C``
grid covers ``[j W/C, (j+1) W/C) x [i H/R, (i+1) H/R)`` of a ``W x H`` film.

The pointing game (Zhang et al. 2016, "Top-down neural attention by excitation backprop", ECCV):
a map's top point is a hit when it lies within 15 pixels of a ground-truth box. A map on the grid
knows its top point only to a cell, so here, once for every caller (the row metrics, the studies, the
methods and heads tables, the app): the top cell is a **hit when its centre lies within the tolerance
of a box, or when it holds part of a box** (positive area of the box inside the cell). The first part
is Zhang et al.'s rule with the cell's centre as the point, the rule where cells are small against
15 px; the second keeps a top cell that contains the box (or a piece of it) from being a miss where
cells are larger than the box (a 2048 px film has 128 px cells). Distances are in the film's own
pixels. ``pointing_cells`` gives the cells that are hits; the hit rate of a uniformly random top cell
(the chance level by the same rule) is their fraction, and it is above 0 for every box inside the film.
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


def _elementary_intervals(box_edges: list[tuple[float, float]], cells: int):
    """Cut [0, 1] at every cell edge and box edge: (widths [n], cell of each [n], box k covers it [K, n])."""
    cuts = np.unique(np.clip(np.concatenate([np.linspace(0.0, 1.0, cells + 1), np.ravel(box_edges)]), 0.0, 1.0))
    lo, hi = cuts[:-1], cuts[1:]
    mid = 0.5 * (lo + hi)
    cell = np.minimum((mid * cells).astype(int), cells - 1)
    inside = np.array([(mid > a) & (mid < b) for a, b in box_edges])  # [K, n]
    return hi - lo, cell, inside


def boxes_to_grid(boxes, image_size: tuple[int, int], grid: tuple[int, int] = (16, 16)) -> np.ndarray | None:
    """Per-cell coverage [rows, cols] of the *union* of several boxes; None when there is no box.

    Two boxes that overlap count their shared part once, and two that together fill a cell cover it
    fully: the plane is cut at every cell edge and box edge into rectangles that each lie inside a box
    or outside all of them, and a cell's coverage is the area of its covered rectangles over its own.
    """
    if not boxes:
        return None
    width, height = image_size
    widths, col, in_x = _elementary_intervals([(x / width, (x + w) / width) for x, _, w, _ in boxes], grid[1])
    heights, row, in_y = _elementary_intervals([(y / height, (y + h) / height) for _, y, _, h in boxes], grid[0])
    covered = (in_y[:, :, None] & in_x[:, None, :]).any(axis=0)  # [ny, nx]
    area = np.where(covered, heights[:, None] * widths[None, :], 0.0)
    cover = np.zeros(grid)
    np.add.at(cover, (row[:, None], col[None, :]), area)
    return np.clip(cover * grid[0] * grid[1], 0.0, 1.0)


def box_area_fraction(boxes, image_size: tuple[int, int], grid: tuple[int, int] = (16, 16)) -> float:
    """Area of the union of the boxes (inside the film) over the film's area: mass-in-box lift's denominator."""
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
    """[R, C] bool: the pointing game's hit cells (module docstring): centre within ``tolerance`` film
    pixels of a box, or part of a box inside the cell.

    None when there is no box. The distance from a point to a box is the Euclidean distance to its
    nearest point (0 inside), so the centres that hit fill the box grown by ``tolerance`` with rounded
    corners.
    """
    if not boxes:
        return None
    if tolerance < 0:
        raise ValueError(f"pointing tolerance must be >= 0 px, got {tolerance}")
    cx, cy = cell_centres(image_size, grid)
    hit = boxes_to_grid(boxes, image_size, grid) > 0  # the cell holds part of a box
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
