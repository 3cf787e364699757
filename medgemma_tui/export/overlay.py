"""The heatmap over the film: one compositor for the tree's overlays, the figure of a row and the app.

Orientation: grid row 0 is the top of the image and column 0 its left; on a PA film the image left is
the patient's right.

A map is brought to the picture's pixels in one of two ways (``upsample_grid``):

- ``smooth``: bilinear between cell centres, for ``overlays/{key}_overlay.png`` and the film panel of
  the row figure, where the film is printed at its own resolution and 16 x 16 blocks would hide it;
- ``cells``: each cell a block, for the app, whose cursor moves cell by cell: a terminal picture of
  about a hundred pixels a side gives a cell six pixels, and the block the cursor frames is then the
  cell whose numbers the app shows, where a bilinear ramp would spread it over its neighbours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medgemma_tui.colormaps import get_colormap
from medgemma_tui.export.atomic import atomic_file

UPSAMPLING = ("smooth", "cells")
SCALES = ("max", "range")  # colours span 0..max, or min..max (a flat map is dark, for galleries)


def upsample_grid(grid: np.ndarray, size: tuple[int, int], dtype=np.float64, upsampling: str = "smooth"
                  ) -> np.ndarray:
    """A [R, C] map to [height, width]: bilinear between cell centres (``smooth``) or as blocks (``cells``).

    The processor stretches the whole film to its square input, so cell (i, j) covers rows
    ``i*H/R .. (i+1)*H/R`` and columns ``j*W/C .. (j+1)*W/C`` of the film, whatever its aspect.
    """
    width, height = size
    grid = np.asarray(grid)
    if upsampling == "cells":
        rows, cols = grid.shape
        r = (np.arange(height) * rows) // height
        c = (np.arange(width) * cols) // width
        return grid[r[:, None], c[None, :]].astype(dtype)
    if upsampling != "smooth":
        raise ValueError(f"unknown upsampling {upsampling!r} (known: {', '.join(UPSAMPLING)})")
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32))
    return np.array(image.resize((width, height), Image.Resampling.BILINEAR), dtype=dtype)


def scale_map(heat: np.ndarray, scale: str = "max") -> np.ndarray:
    """The map in [0, 1] for the colour table, in place where it can be: by its maximum, or stretched over
    its own range; all zeros when it is flat."""
    if scale not in SCALES:
        raise ValueError(f"unknown map scale {scale!r} (known: {', '.join(SCALES)})")
    low = float(heat.min()) if scale == "range" else 0.0
    span = float(heat.max()) - low
    if span <= 1e-12 * max(1.0, abs(low)):
        return np.zeros_like(heat)
    heat -= low
    heat /= span
    return heat


def blend(film: np.ndarray, grid: np.ndarray, colormap: str = "magma", alpha: float = 0.45,
          upsampling: str = "smooth", scale: str = "max") -> np.ndarray:
    """The map at the film's pixels, scaled (``scale_map``), coloured and blended over the gray film:
    uint8 [H, W, 3]; ``alpha`` 1 gives the map alone.

    In float32, one pass per term: a MIMIC-size film (about 2500 x 3000) is 20M channel values, where
    float64 temporaries cost a second and a half.
    """
    film = np.asarray(film)
    if film.ndim == 3:
        film = film.mean(axis=-1)
    height, width = film.shape
    heat = scale_map(upsample_grid(grid, (width, height), np.float32, upsampling), scale)
    index = np.clip(heat * 255 + 0.5, 0, 255).astype(np.uint8)  # the colour map's lookup (Colormap.__call__)
    out = get_colormap(colormap).table[index].astype(np.float32)  # [H, W, 3]
    out *= alpha
    out += ((1.0 - alpha) * film.astype(np.float32) + 0.5)[..., None]
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def overlay_image(pixels: np.ndarray, grid: np.ndarray, colormap: str = "magma", alpha: float = 0.45) -> np.ndarray:
    """The tree's overlay: ``blend`` smooth, scaled to the map's maximum at the film's own resolution."""
    return blend(pixels, grid, colormap, alpha)


def save_overlay(path: Path, pixels: np.ndarray, grid: np.ndarray, colormap: str = "magma",
                 alpha: float = 0.45) -> Path:
    """``overlays/{key}_overlay.png``: the overlay at the film's own resolution, written atomically."""
    from PIL import Image

    with atomic_file(Path(path)) as tmp:
        # zlib level 1 (Pillow documentation, PNG ``compress_level``): a film-size PNG at the default level
        # costs about two seconds to encode, for a file about a fifth smaller
        Image.fromarray(overlay_image(pixels, grid, colormap, alpha)).save(tmp, format="PNG", compress_level=1)
    return Path(path)
