"""Heatmap colour tables, registered from ``themes/colormaps/*.json`` (256 RGB entries each)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np

from medgemma_tui.errors import MedtuiError
from medgemma_tui.resources import themes_dir

DEFAULT_COLORMAP = "magma"

# The anatomy masks' colours, one for each mask wherever a mask is drawn (the app's picture, ``medtui masks``'s
# contact sheet, the per-row figure): pale lines over gray films and dark maps, colour-blind safe (the
# Okabe-Ito palette)
MASK_COLORS = {"body": "#F0E442", "lung_right": "#009E73", "lung_left": "#E69F00", "mediastinum": "#CC79A7"}


def hex_rgb(color: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` as an (r, g, b) of 0..255."""
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


@dataclass(frozen=True)
class Colormap:
    name: str
    kind: str  # "sequential" or "diverging"
    note: str
    table: np.ndarray  # [256, 3] uint8

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Values in [0, 1] -> uint8 RGB of shape values.shape + (3,)."""
        idx = np.clip(np.asarray(values, dtype=np.float64) * 255 + 0.5, 0, 255).astype(np.intp)
        return self.table[idx]


@cache
def available() -> dict[str, Colormap]:
    maps = {}
    for path in sorted((themes_dir() / "colormaps").glob("*.json")):
        data = json.loads(path.read_text())
        table = np.asarray(data["rgb"], dtype=np.uint8)
        if table.shape != (256, 3):
            raise ValueError(f"{path}: a colormap needs 256 RGB entries, found {table.shape}")
        maps[data["name"]] = Colormap(data["name"], data.get("kind", "sequential"), data.get("note", ""), table)
    return maps


class UnknownColormapError(MedtuiError, ValueError):
    """A colormap name (``--colormap``, ``[visualization] colormap``) that is not one of ``available()``."""


def get_colormap(name: str = DEFAULT_COLORMAP) -> Colormap:
    maps = available()
    if name not in maps:
        raise UnknownColormapError(f"unknown colormap {name!r} (known: {', '.join(maps)})")
    return maps[name]


def scale(grid: np.ndarray) -> np.ndarray:
    """A map to [0, 1] by its own maximum (zero stays zero)."""
    grid = np.asarray(grid, dtype=np.float64)
    top = grid.max()
    return grid / top if top > 0 else grid


# ---- outlines ------------------------------------------------------------------------------------------
# The outlines a figure names: the masks' colours (MASK_COLORS, as the app and ``medtui masks`` draw them)
# and the ground-truth box, sky blue in Okabe and Ito's palette ("Color Universal Design", 2008).
OUTLINE_COLOURS = {**MASK_COLORS, "box": "#56B4E9"}
OUTLINE_LABELS = {"body": "body", "lung_right": "right lung", "lung_left": "left lung",
                  "mediastinum": "mediastinum", "box": "ground-truth box"}


def outline_rgb(name: str) -> tuple[int, int, int]:
    """An outline's colour as 0-255 RGB (``OUTLINE_COLOURS``)."""
    return hex_rgb(OUTLINE_COLOURS[name])
