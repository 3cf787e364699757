"""Heatmap colour tables, registered from ``themes/colormaps/*.json`` (256 RGB entries each)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np

from medgemma_tui.resources import themes_dir

DEFAULT_COLORMAP = "magma"


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


def get_colormap(name: str = DEFAULT_COLORMAP) -> Colormap:
    maps = available()
    if name not in maps:
        raise ValueError(f"unknown colormap {name!r} (known: {', '.join(maps)})")
    return maps[name]


def scale(grid: np.ndarray) -> np.ndarray:
    """A map to [0, 1] by its own maximum (zero stays zero)."""
    grid = np.asarray(grid, dtype=np.float64)
    top = grid.max()
    return grid / top if top > 0 else grid
