"""A map as coloured terminal cells (rich renderables), for ``medtui check`` and plain terminals."""

from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text

from medgemma_tui.colormaps import get_colormap, scale


def heatmap_text(grid: np.ndarray, colormap: str = "magma", cell_width: int = 2) -> Text:
    """One terminal cell pair per grid cell, coloured by the map scaled to its maximum."""
    cmap = get_colormap(colormap)
    rgb = cmap(scale(grid))
    text = Text()
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            color = Color.from_rgb(*(int(v) for v in rgb[r, c]))
            text.append(" " * cell_width, Style(bgcolor=color))
        text.append("\n")
    return text


def colorbar_text(grid: np.ndarray, colormap: str = "magma", width: int = 32) -> Text:
    cmap = get_colormap(colormap)
    text = Text("0 ")
    for v in cmap(np.linspace(0, 1, width)):
        text.append(" ", Style(bgcolor=Color.from_rgb(*(int(x) for x in v))))
    text.append(f" {float(np.max(grid)):.4f} (max cell)")
    return text
