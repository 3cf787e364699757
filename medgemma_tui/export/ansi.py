"""A map as coloured terminal cells (rich renderables), for ``medtui check`` and plain terminals."""

from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text

from medgemma_tui.colormaps import get_colormap, scale

SHADES = " .:-=+*#%@"  # for output without colour (a pipe, a log file)


def heatmap_text(grid: np.ndarray, colormap: str = "magma", cell_width: int = 2, color: bool = True) -> Text:
    """One terminal cell pair per grid cell, coloured by the map scaled to its maximum.

    Without colour each cell is a shade character, so the map still reads in a log file.
    """
    scaled = scale(grid)
    rgb = get_colormap(colormap)(scaled)
    text = Text()
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            if color:
                text.append(" " * cell_width, Style(bgcolor=Color.from_rgb(*(int(v) for v in rgb[r, c]))))
            else:
                text.append(SHADES[min(int(scaled[r, c] * len(SHADES)), len(SHADES) - 1)] * cell_width)
        text.append("\n")
    return text


def colorbar_text(grid: np.ndarray, colormap: str = "magma", width: int = 32) -> Text:
    cmap = get_colormap(colormap)
    text = Text("0 ")
    for v in cmap(np.linspace(0, 1, width)):
        text.append(" ", Style(bgcolor=Color.from_rgb(*(int(x) for x in v))))
    text.append(f" {float(np.max(grid)):.4f} (max cell)")
    return text
