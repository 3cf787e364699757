"""The plumbing every figure of a results tree is drawn and saved through: a figure without pyplot, the
formats and dpi asked for, the atomic writes, the film reduced for a panel and the colour maps as
matplotlib's. The style of all of them is ``export.figure_style``; the heatmap over a film is
``export.overlay``; the figures themselves are ``export.sample_sheet`` (one row), ``export.dataset_figures``
and ``export.faithfulness_figure`` (the dataset), ``export.method_figures`` and
``export.comparison_figures``.

matplotlib is imported inside the functions (``Figure`` + the Agg canvas, never ``pyplot``), so the
headless core starts fast, nothing touches a global backend, and the app's workers can draw in threads.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medgemma_tui.colormaps import get_colormap
from medgemma_tui.export import figure_style as fs
from medgemma_tui.export.atomic import atomic_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure


DPI = 120  # the canvas's own; files are written at ``check_dpi``'s
FORMATS = ("png", "pdf", "svg")
DEFAULT_FORMATS = ("png",)
FIGURE_DPI = 150  # raster output (the PNG, and the films embedded in a PDF or SVG); 300 for print


FIGURE_MAX_SIDE = 1024  # px: a film is reduced to this for a figure panel (its coordinates kept through extent)


def display_film(pixels: np.ndarray, max_side: int = FIGURE_MAX_SIDE) -> np.ndarray:
    """The film reduced for a figure panel (its pixel coordinates are kept through ``extent``)."""
    from PIL import Image

    height, width = pixels.shape[:2]
    factor = max(height, width) / max_side
    if factor <= 1:
        return pixels
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def check_formats(formats: str | Sequence[str] | None) -> tuple[str, ...]:
    """Figure formats in lower case, each once, in the order given; ValueError names an unknown one."""
    if formats is None:
        return DEFAULT_FORMATS
    if isinstance(formats, str):
        formats = [formats]
    out: list[str] = []
    for fmt in formats:
        name = str(fmt).strip().lower().lstrip(".")
        if name not in FORMATS:
            raise ValueError(f"unknown figure format {fmt!r} (known: {', '.join(FORMATS)})")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError(f"no figure format given (known: {', '.join(FORMATS)})")
    return tuple(out)


def check_dpi(dpi: float | None) -> float:
    if dpi is None:
        return float(FIGURE_DPI)
    if not isinstance(dpi, int | float) or isinstance(dpi, bool) or not math.isfinite(dpi) or not 10 <= dpi <= 1200:
        raise ValueError(f"figure dpi must be a number from 10 to 1200, got {dpi!r}")
    return float(dpi)


def figure_paths(path: Path, formats: str | Sequence[str] | None = None) -> list[Path]:
    """The files one figure is written to: ``path`` with each format's suffix (``x_full.png``, ``x_full.pdf``)."""
    path = Path(path)
    return [path.with_suffix(f".{fmt}") for fmt in check_formats(formats)]


def save_figure(figure: Figure, path: Path, formats: str | Sequence[str] | None = None,
                dpi: float | None = None) -> Path:
    """Write the figure in each format beside ``path`` (see ``figure_paths``); return the first file.

    Written inside ``figure_style.style()``. Each file is written atomically; when one format fails, the
    files of this call are removed, so a figure is there in every format asked for or in none.
    """
    formats = check_formats(formats)
    dpi = check_dpi(dpi)
    paths = figure_paths(path, formats)
    written: list[Path] = []
    try:
        for fmt, target in zip(formats, paths, strict=True):
            with atomic_file(target) as tmp, fs.style():  # the PDF's TrueType text (figure_style.RC)
                if fmt == "png":
                    _write_png(figure, tmp, dpi)
                else:
                    # no creation date: the same figure gives the same bytes (matplotlib savefig metadata)
                    metadata = {"CreationDate": None} if fmt == "pdf" else {"Date": None}
                    figure.savefig(tmp, format=fmt, dpi=dpi, facecolor="white", metadata=metadata)
            written.append(target)
    except BaseException:
        for target in written:
            target.unlink(missing_ok=True)
        raise
    return paths[0]


def _write_png(figure: Figure, target: Path, dpi: float) -> None:
    """One Agg draw, saved as an RGB PNG by Pillow.

    ``savefig`` would draw again and encode four channels; the figure is opaque (a white patch), so the
    alpha channel carries nothing and Pillow's fast zlib level keeps the encode short (Pillow
    documentation, PNG ``compress_level``; the file is about 15% larger than at the default level 6).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    figure.set_dpi(dpi)
    figure.patch.set_facecolor("white")
    figure.patch.set_alpha(1.0)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(target, format="PNG", compress_level=1,
                                                             dpi=(dpi, dpi))


def mpl_colormap(name: str):
    from matplotlib.colors import ListedColormap

    table = get_colormap(name).table
    return ListedColormap(table.astype(np.float64) / 255.0, name=name)


def quiet(plot: Callable[..., Path | None]) -> Callable[..., Path | None]:
    """A dataset plot without numpy's warnings on all-NaN slices. A failure is raised, never warned: the
    caller names it in ``summary.json`` (``plot_errors``) and draws the other plots (the writes are atomic,
    so a failed plot leaves no file)."""

    @functools.wraps(plot)
    def guarded(*args, **kwargs) -> Path | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return plot(*args, **kwargs)

    return guarded


def save_or_none(figure: Figure | None, path: Path, formats: str | Sequence[str] | None = None,
                 dpi: float | None = None) -> Path | None:
    """``save_figure``, or None (and no file) where there was nothing to draw."""
    return None if figure is None else save_figure(figure, path, formats, dpi)
