"""Ground-truth boxes on the model's grid.

The processor stretches a non-square film to its square input, so a box given in the original
image's pixels covers the same *fraction* of the width and height on the grid: map it through those
fractions, never through a square crop.
"""

from __future__ import annotations

import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h in original image pixels


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
