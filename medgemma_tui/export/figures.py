"""Figures of the results tree: the overlay, the multi-panel figure of one sample, and the dataset plots.

Orientation, everywhere: grid row 0 is the top of the image and column 0 its left; on a PA film the
image left is the patient's right, and the figures say so.

matplotlib is imported inside the functions (``Figure`` + the Agg canvas, never ``pyplot``), so the
headless core starts fast, nothing touches a global backend, and the app's workers can draw in threads.
"""

from __future__ import annotations

import functools
import math
import textwrap
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.colormaps import MASK_COLORS, get_colormap
from medgemma_tui.export.atomic import atomic_file

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


ORIENTATION = "image left = patient's right (PA view)"
FIGURE_MAX_SIDE = 1024  # films are shown downsampled in the multi-panel figure; the overlay PNG is full size
DPI = 120
# Films are resampled to the panel's pixels when drawn; bilinear costs about a third of lanczos in Agg
# and looks the same at these scales (matplotlib's ``imshow`` interpolation gallery).
FILM_INTERPOLATION = "bilinear"
# pale lines over gray films and dark maps: colour-blind safe (Okabe-Ito)
BOX_COLOR = "#56B4E9"
BODY_COLOR = MASK_COLORS["body"]
LUNG_RIGHT_COLOR = MASK_COLORS["lung_right"]
LUNG_LEFT_COLOR = MASK_COLORS["lung_left"]
ACCENT = "#0072B2"
MASK_TINT_ALPHA = 0.38
# the multi-panel figure of one sample: its size in inches and its 2 x 3 panel grid (matplotlib's
# gridspec fractions of the figure; ``export.sample_sheet`` lays its panels out by the same numbers)
SHEET_INCHES = (15.5, 10.2)
SHEET_GRID = {"hspace": 0.32, "wspace": 0.28, "left": 0.04, "right": 0.985, "bottom": 0.06, "top": 0.80}


# ---- the overlay (numpy) ------------------------------------------------------------------------------
def upsample_grid(grid: np.ndarray, size: tuple[int, int], dtype=np.float64) -> np.ndarray:
    """A [R, C] map to [height, width] by bilinear interpolation between cell centres.

    The processor stretches the whole film to its square input, so cell (i, j) covers rows
    ``i*H/R .. (i+1)*H/R`` and columns ``j*W/C .. (j+1)*W/C`` of the film, whatever its aspect.
    """
    from PIL import Image

    width, height = size
    image = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32))
    return np.array(image.resize((width, height), Image.Resampling.BILINEAR), dtype=dtype)


def overlay_image(pixels: np.ndarray, grid: np.ndarray, colormap: str = "magma", alpha: float = 0.45) -> np.ndarray:
    """The map, scaled to its maximum and coloured, blended over the gray film: uint8 [H, W, 3].

    In float32, one pass per term: a MIMIC-size film (about 2500 x 3000) is 20M channel values, where
    float64 temporaries cost a second and a half.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=-1)
    height, width = pixels.shape
    heat = upsample_grid(grid, (width, height), np.float32)
    top = heat.max()
    if top > 0:
        heat /= top  # by the film's own hottest pixel, which need not sit on a cell's centre
    index = np.clip(heat * 255 + 0.5, 0, 255).astype(np.uint8)  # the colour map's lookup (Colormap.__call__)
    out = get_colormap(colormap).table[index].astype(np.float32)  # [H, W, 3]
    out *= alpha
    out += ((1.0 - alpha) * pixels.astype(np.float32) + 0.5)[..., None]
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def save_overlay(path: Path, pixels: np.ndarray, grid: np.ndarray, colormap: str = "magma",
                 alpha: float = 0.45) -> Path:
    """``overlays/{key}_overlay.png``: the overlay at the film's own resolution, written atomically."""
    from PIL import Image

    with atomic_file(Path(path)) as tmp:
        # zlib level 1 (Pillow documentation, PNG ``compress_level``): a film-size PNG at the default level
        # costs about two seconds to encode, for a file about a fifth smaller
        Image.fromarray(overlay_image(pixels, grid, colormap, alpha)).save(tmp, format="PNG", compress_level=1)
    return Path(path)


# ---- matplotlib plumbing --------------------------------------------------------------------------------
FORMATS = ("png", "pdf", "svg")
DEFAULT_FORMATS = ("png",)
FIGURE_DPI = 150  # raster output (the PNG, and the films embedded in a PDF or SVG); 300 for print


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

    Each file is written atomically; when one format fails, the files of this call are removed, so a
    figure is there in every format asked for or in none.
    """
    formats = check_formats(formats)
    dpi = check_dpi(dpi)
    paths = figure_paths(path, formats)
    written: list[Path] = []
    try:
        for fmt, target in zip(formats, paths, strict=True):
            with atomic_file(target) as tmp:
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


def display_film(pixels: np.ndarray, max_side: int = FIGURE_MAX_SIDE) -> np.ndarray:
    """The film reduced for a figure panel (its pixel coordinates are kept through ``extent``)."""
    from PIL import Image

    height, width = pixels.shape[:2]
    factor = max(height, width) / max_side
    if factor <= 1:
        return pixels
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


def display_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if mask.shape == shape:
        return mask.astype(bool)
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.NEAREST)) > 127


def mark_sides(ax, width: float, height: float) -> None:
    """R and L markers in the upper corners, as on a film."""
    style = {"color": "white", "fontsize": 11, "fontweight": "bold", "va": "top",
             "bbox": {"boxstyle": "square,pad=0.15", "fc": "black", "ec": "none", "alpha": 0.6}}
    ax.text(0.02 * width, 0.02 * height, "R", ha="left", **style)
    ax.text(0.98 * width, 0.02 * height, "L", ha="right", **style)


def draw_boxes(ax, boxes: Sequence[Sequence[float]], sx: float = 1.0, sy: float = 1.0, **style) -> None:
    from matplotlib.patches import Rectangle

    for x, y, w, h in boxes:
        ax.add_patch(Rectangle((x * sx, y * sy), w * sx, h * sy, fill=False, lw=1.6, ec=BOX_COLOR, **style))


def film_axes(ax, pixels: np.ndarray, width: int, height: int, title: str) -> None:
    ax.imshow(display_film(pixels), cmap="gray", vmin=0, vmax=255, extent=(0, width, height, 0),
              interpolation=FILM_INTERPOLATION)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(ORIENTATION, fontsize=8.5)


def grid_axes(ax, figure, grid: np.ndarray, cmap, title: str, label: str) -> None:
    """A map as cells (no smoothing), row 0 at the top, with its colour bar."""
    rows, cols = grid.shape
    im = ax.imshow(grid, cmap=cmap, vmin=0, extent=(0, cols, rows, 0), interpolation="nearest")
    step = max(1, cols // 4)
    ax.set_xticks(np.arange(0, cols, step) + 0.5, [str(i) for i in range(0, cols, step)], fontsize=8)
    ax.set_yticks(np.arange(0, rows, step) + 0.5, [str(i) for i in range(0, rows, step)], fontsize=8)
    ax.set_xlabel(f"grid column   ({ORIENTATION})", fontsize=8.5)
    ax.set_ylabel("grid row (0 = top)", fontsize=8.5)
    ax.set_title(title, fontsize=11)
    bar = figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label(label, fontsize=8.5)
    bar.ax.tick_params(labelsize=7.5)


# ---- the multi-panel figure of one sample --------------------------------------------------------------
def metrics_lines(metrics: dict[str, float], extra: dict[str, Any] | None = None) -> list[str]:
    def fmt(value) -> str:
        if value is None or isinstance(value, float) and not math.isfinite(value):
            return "n/a"
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    groups = (
        ("map", ("entropy", "entropy_norm", "focus", "top10_mass", "gini", "spread")),
        ("anatomy", ("inside_body_ratio", "inside_lungs_ratio", "border_fraction")),
        ("position", ("left_fraction", "right_fraction", "apical_fraction", "middle_fraction", "basal_fraction",
                      "com_row", "com_col")),
        ("raw row", ("bos_share", "image_share", "text_share")),
        ("box", ("pointing_hit", "mass_in_box", "mass_in_box_lift", "cnr", "iou_top10", "auroc")),
    )
    lines = []
    for title, names in groups:
        present = [n for n in names if n in metrics]
        if not present:
            continue
        lines.append(f"{title}")
        lines.extend(f"  {n:<18}{fmt(metrics[n]):>7}" for n in present)
    for name, value in (extra or {}).items():
        lines.append(f"{name:<20}{fmt(value):>7}")
    return lines


@dataclass(frozen=True)
class SampleContent:
    """What the multi-panel figure of one sample shows, whichever renderer draws it (matplotlib here,
    Pillow in ``export.sample_sheet``): header lines, panel titles, the maps and the metric columns."""

    title: str
    question: str
    answer: str
    verdict: str
    map_line: str
    film_title: str
    grid: np.ndarray  # [R, C] float64, sums to 1
    grid_title: str
    lung_grid: np.ndarray | None  # the map inside the lung fields, renormalised; None without masks
    lung_title: str
    overlay_title: str
    metric_columns: tuple[list[str], list[str]]
    boxes: tuple[tuple[float, float, float, float], ...]
    masks: Any  # AnatomyMasks or None
    colormap: str
    alpha: float

    GRID_LABEL = "attention (sums to 1)"
    LUNG_LABEL = "attention inside lungs (renormalised)"
    METRICS_TITLE = "metrics"


def sample_content(pixels: np.ndarray, analysis, *, boxes: Sequence[Sequence[float]] = (),
                   ground_truth: str | None = None, title: str | None = None, colormap: str = "magma",
                   alpha: float = 0.45) -> SampleContent:
    from medgemma_tui.analysis.grid import mask_to_grid

    record = analysis.record
    grid = np.asarray(analysis.grid, dtype=np.float64)
    grid = grid / grid.sum()
    rows, cols = grid.shape
    height, width = pixels.shape[:2]
    verdict = f"parsed: {analysis.answer_label}"
    if ground_truth:
        mark = {True: "correct", False: "wrong", None: "not scored"}[analysis.correct]
        verdict += f"   ground truth: {ground_truth}   ({mark})"
    masks = analysis.masks
    lung_grid, lung_title = None, "no lung mask"
    if masks is not None:
        inside = grid * mask_to_grid(masks.lungs, (rows, cols))
        share = float(inside.sum())
        lung_grid = inside / share if share > 0 else inside
        lung_title = f"map × lung fields ({share:.0%} of the mass)"
    lines = metrics_lines(analysis.metrics, {"gated tokens": len(analysis.gating.tokens)})
    # two columns, cut at a group heading near the middle, so the box metrics fit under the others
    heads = [i for i, line in enumerate(lines) if not line.startswith(" ")]
    cut = min(heads, key=lambda i: abs(i - len(lines) / 2)) if len(lines) > 22 else len(lines)
    return SampleContent(
        title=title or (Path(record.image_path).name if record.image_path else "sample"),
        question=textwrap.shorten("Q: " + record.question, 160),
        answer=textwrap.shorten("A: " + (record.answer or "(empty)"), 160),
        verdict=verdict,
        map_line=textwrap.shorten("map: " + analysis.view.description, 190),
        film_title=f"X-ray ({width}×{height} px)",
        grid=grid,
        grid_title=f"answer map ({rows}×{cols} cells)",
        lung_grid=lung_grid,
        lung_title=lung_title,
        overlay_title=f"overlay ({colormap}, alpha {alpha:g})",
        metric_columns=(lines[:cut], lines[cut:]),
        boxes=tuple(tuple(float(v) for v in box) for box in boxes),
        masks=masks,
        colormap=colormap,
        alpha=alpha,
    )


def full_figure(
    pixels: np.ndarray,
    analysis,
    *,
    boxes: Sequence[Sequence[float]] = (),
    ground_truth: str | None = None,
    title: str | None = None,
    colormap: str = "magma",
    alpha: float = 0.45,
) -> Figure:
    """X-ray, raw grid with a colour bar, masks, masked map, overlay, metrics, question and answer."""
    content = sample_content(pixels, analysis, boxes=boxes, ground_truth=ground_truth, title=title,
                             colormap=colormap, alpha=alpha)
    grid = content.grid
    rows, cols = grid.shape
    height, width = pixels.shape[:2]
    boxes = content.boxes
    cmap = mpl_colormap(colormap)
    figure = new_figure(*SHEET_INCHES)
    axes = figure.subplots(2, 3, gridspec_kw=SHEET_GRID)

    # header: question, answer, verdict, how the map was made
    plain = {"va": "top", "parse_math": False}  # questions and answers are text, never mathtext
    figure.text(0.04, 0.975, content.title, fontsize=14, fontweight="bold", **plain)
    figure.text(0.04, 0.94, content.question, fontsize=11.5, **plain)
    figure.text(0.04, 0.91, content.answer, fontsize=11.5, **plain)
    figure.text(0.04, 0.88, content.verdict, fontsize=10.5, color=ACCENT, **plain)
    figure.text(0.04, 0.855, content.map_line, fontsize=9, color="0.3", **plain)

    # (a) the film with its boxes
    ax = axes[0, 0]
    film_axes(ax, pixels, width, height, content.film_title)
    draw_boxes(ax, boxes)
    mark_sides(ax, width, height)

    # (b) the raw grid
    grid_axes(axes[0, 1], figure, grid, cmap, content.grid_title, content.GRID_LABEL)
    if boxes:
        draw_boxes(axes[0, 1], boxes, cols / width, rows / height)

    # (c) the masks
    ax = axes[0, 2]
    film_axes(ax, pixels, width, height, "anatomy masks")
    masks = content.masks
    if masks is not None:
        shown = display_film(pixels).shape
        tint = np.zeros((*shown, 4))
        for mask, colour in ((masks.lung_right, LUNG_RIGHT_COLOR), (masks.lung_left, LUNG_LEFT_COLOR)):
            from matplotlib.colors import to_rgba

            tint[display_mask(mask, shown)] = to_rgba(colour, MASK_TINT_ALPHA)
        ax.imshow(tint, extent=(0, width, height, 0), interpolation="nearest")
        ax.contour(display_mask(masks.body, shown).astype(float), levels=[0.5], colors=[BODY_COLOR],
                   linewidths=1.4, extent=(0, width, 0, height), origin="upper")
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(fc="none", ec=BODY_COLOR, label="body"),
                           Patch(fc=LUNG_RIGHT_COLOR, alpha=0.6, label="right lung"),
                           Patch(fc=LUNG_LEFT_COLOR, alpha=0.6, label="left lung")],
                  loc="lower center", fontsize=8, ncol=3, framealpha=0.85)
    else:
        ax.text(0.5, 0.5, "no masks", transform=ax.transAxes, ha="center", color="white")
    mark_sides(ax, width, height)

    # (d) the map inside the lung fields
    ax = axes[1, 0]
    if content.lung_grid is not None:
        grid_axes(ax, figure, content.lung_grid, cmap, content.lung_title, content.LUNG_LABEL)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, content.lung_title, transform=ax.transAxes, ha="center")

    # (e) the overlay
    ax = axes[1, 1]
    small = display_film(pixels)
    ax.imshow(overlay_image(small, grid, colormap, alpha), extent=(0, width, height, 0),
              interpolation=FILM_INTERPOLATION)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(content.overlay_title, fontsize=11)
    ax.set_xlabel(ORIENTATION, fontsize=8.5)
    draw_boxes(ax, boxes)
    mark_sides(ax, width, height)

    # (f) the metrics
    ax = axes[1, 2]
    ax.axis("off")
    for x, column in zip((0.0, 0.53), content.metric_columns, strict=True):
        ax.text(x, 1.0, "\n".join(column), family="monospace", fontsize=8.6, va="top", ha="left",
                transform=ax.transAxes, parse_math=False)
    ax.set_title(content.METRICS_TITLE, fontsize=11, loc="left")
    return figure


# ---- dataset plots ---------------------------------------------------------------------------------------
DISTRIBUTION_METRICS = (
    "entropy_norm", "focus", "top10_mass", "gini", "inside_body_ratio", "inside_lungs_ratio", "border_fraction",
    "left_fraction", "apical_fraction", "basal_fraction", "bos_share", "image_share", "mass_in_box_lift",
    "auroc",
)


CORRECT_COLOR = "#009E73"
WRONG_COLOR = "#D55E00"


def _quiet(plot: Callable[..., Path | None]) -> Callable[..., Path | None]:
    """A dataset plot without numpy's warnings on all-NaN slices. A failure is raised, never warned: the
    caller names it in ``summary.json`` (``plot_errors``) and draws the other plots (the writes are atomic,
    so a failed plot leaves no file)."""

    @functools.wraps(plot)
    def guarded(*args, **kwargs) -> Path | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return plot(*args, **kwargs)

    return guarded


def _finite(values) -> np.ndarray:
    import pandas as pd

    array = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    return array[np.isfinite(array)]


def _correct_mask(done: pd.DataFrame, want: bool) -> np.ndarray:
    if "correct" not in done:
        return np.zeros(len(done), dtype=bool)
    text = done["correct"].astype(str).str.strip().str.lower()
    return text.isin(("true", "1", "1.0") if want else ("false", "0", "0.0")).to_numpy()


@dataclass(frozen=True)
class DistributionPanel:
    name: str
    values: np.ndarray  # the finite values of the metric over the finished rows
    correct: np.ndarray  # those of rows answered correctly
    wrong: np.ndarray  # those of rows answered wrongly (rows not scored are in neither)


def distribution_panels(rows: pd.DataFrame | None) -> tuple[pd.DataFrame | None, list[DistributionPanel]]:
    """The finished rows and one panel per metric of DISTRIBUTION_METRICS that has a finite value there."""
    if rows is None or rows.empty:
        return rows, []
    done = rows[rows["error"].fillna("").astype(str) == ""] if "error" in rows else rows
    right, wrong = _correct_mask(done, True), _correct_mask(done, False)
    panels = []
    for name in DISTRIBUTION_METRICS:
        if name not in done:
            continue
        values = _finite(done[name])
        if len(values):
            panels.append(DistributionPanel(name, values, _finite(done[name][right]), _finite(done[name][wrong])))
    return done, panels


@_quiet
def plot_metric_distributions(rows: pd.DataFrame, path: Path, formats: str | Sequence[str] | None = None,
                              dpi: float | None = None) -> Path | None:
    """Histograms of the main metrics over finished rows, correct and wrong answers apart.

    Each panel counts its own rows (a metric undefined on a row, such as a box metric on a row without
    a box, leaves it out), shows each group as a share of that group so a small wrong group stays
    visible beside a large correct one, and marks each group's median. Metrics with no finite value
    are left out; None (and no file) when no metric has one.
    """
    from matplotlib.ticker import MaxNLocator

    done, panels = distribution_panels(rows)
    if not panels:
        return None
    split = any(len(p.correct) for p in panels) and any(len(p.wrong) for p in panels)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    figure = new_figure(4.6 * ncols, 3.3 * nrows + 1.3)
    axes = np.atleast_1d(figure.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        name, values = panel.name, panel.values
        bins = np.histogram_bin_edges(values, bins=int(np.clip(np.sqrt(len(values)), 5, 25)))
        if split:
            counts = []
            for label, group, colour in (("correct", panel.correct, CORRECT_COLOR),
                                         ("wrong", panel.wrong, WRONG_COLOR)):
                counts.append(f"{label} {len(group)}")
                if len(group):
                    ax.hist(group, bins=bins, weights=np.full(len(group), 1 / len(group)), histtype="stepfilled",
                            alpha=0.45, color=colour, lw=0)
                    ax.hist(group, bins=bins, weights=np.full(len(group), 1 / len(group)), histtype="step",
                            color=colour, lw=1.4)
                    ax.axvline(float(np.median(group)), color=colour, ls="--", lw=1.3)
            ax.set_ylabel("share of the group", fontsize=10)
            subtitle = f"n = {len(values)}: " + ", ".join(counts)
        else:
            ax.hist(values, bins=bins, color=ACCENT, alpha=0.85)
            ax.axvline(float(np.median(values)), color="black", ls="--", lw=1.3)
            ax.set_ylabel("rows", fontsize=10)
            subtitle = f"n = {len(values)}"
        ax.set_title(f"{name}\n{subtitle}", fontsize=11, parse_math=False)
        ax.tick_params(labelsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_locator(MaxNLocator(4, integer=not split))  # whole rows, or shares of a group
        ax.grid(axis="y", alpha=0.25)
    for ax in axes[len(panels):]:
        ax.axis("off")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if split:
        handles = [Patch(fc=CORRECT_COLOR, alpha=0.6, label="correct answer"),
                   Patch(fc=WRONG_COLOR, alpha=0.6, label="wrong answer"),
                   Line2D([], [], color="0.3", ls="--", label="median of the group")]
    else:
        handles = [Patch(fc=ACCENT, alpha=0.85, label="all finished rows"),
                   Line2D([], [], color="black", ls="--", label="median")]
    figure.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=10, frameon=False,
                  bbox_to_anchor=(0.5, 1 - 0.55 / figure.get_figheight()))
    figure.suptitle(f"Metric distributions over {len(done)} finished rows", fontsize=13,
                    y=1 - 0.15 / figure.get_figheight())
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.5 / figure.get_figheight(),
                           top=1 - 1.35 / figure.get_figheight(), hspace=0.62, wspace=0.3)
    return save_figure(figure, path, formats, dpi)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def multi_kind_variants(table: pd.DataFrame) -> tuple[int, int]:
    """(variant rows naming several kinds, variant rows) behind a by_strategy table.

    Read from ``raw_strategies`` ("text (n) | text (n)"): a text naming several kinds appears, with the
    same count, in each of its kinds' rows, so it is counted once here.
    """
    import re

    from medgemma_tui.data.schema import normalise_strategy

    if "raw_strategies" not in table:
        return (0, int(table.loc[table["strategy"] != "original", "rows"].sum()) if "rows" in table else 0)
    texts: dict[str, int] = {}
    for cell in table.loc[table["strategy"] != "original", "raw_strategies"].fillna("").astype(str):
        for part in cell.split(" | "):
            match = re.fullmatch(r"(.*) \((\d+)\)", part.strip())
            if match:
                texts[match.group(1)] = int(match.group(2))
    several = sum(n for text, n in texts.items() if len(normalise_strategy(text)) > 1)
    if "rows" not in table:
        return (several, sum(texts.values()))
    kind_rows = int(table.loc[table["strategy"] != "original", "rows"].sum())
    overcount = sum(n * (len(normalise_strategy(text)) - 1) for text, n in texts.items())
    return (several, max(kind_rows - overcount, several))


def interval_errors(accuracy: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """[2, n] distances from each accuracy down and up to its 95% Wilson bounds, never negative.

    At 0 or 1 the bound and the point meet, and the floating-point difference can be -1e-17, which
    matplotlib's ``errorbar`` rejects ("'xerr' must not contain negative values").
    """
    successes = np.rint(accuracy * scored).astype(int)
    bounds = np.array([wilson_interval(int(k), int(n)) for k, n in zip(successes, scored, strict=True)]).reshape(-1, 2)
    return np.clip(np.stack([accuracy - bounds[:, 0], bounds[:, 1] - accuracy]), 0.0, None)


def strategy_bars(table: pd.DataFrame | None) -> pd.DataFrame:
    """The bars of the accuracy plot, top to bottom: ``original (baseline)`` first, then the paraphrase
    kinds from the most to the least accurate; only kinds with scored rows. Columns: strategy, label,
    scored, accuracy, low, high (the 95% Wilson bounds, never on the wrong side of the accuracy)."""
    import pandas as pd

    columns = ["strategy", "label", "scored", "accuracy", "low", "high"]
    if table is None or table.empty or not {"strategy", "scored", "accuracy"} <= set(table.columns):
        return pd.DataFrame(columns=columns)
    scored = pd.to_numeric(table["scored"], errors="coerce").fillna(0)
    accuracy = pd.to_numeric(table["accuracy"], errors="coerce")
    keep = (scored > 0) & accuracy.between(0, 1)
    frame = pd.DataFrame({"strategy": table["strategy"].astype(str), "scored": scored.astype(int),
                          "accuracy": accuracy.astype(float)})[keep]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    baseline = frame[frame["strategy"] == "original"]
    kinds = frame[frame["strategy"] != "original"].sort_values(["accuracy", "strategy"], ascending=[False, True])
    bars = pd.concat([baseline, kinds], ignore_index=True)
    bars["label"] = ["original (baseline)" if s == "original" else s.replace("_", " ") for s in bars["strategy"]]
    acc = bars["accuracy"].to_numpy(dtype=float)
    errors = interval_errors(acc, bars["scored"].to_numpy(dtype=int))
    bars["low"], bars["high"] = acc - errors[0], acc + errors[1]
    return bars[columns]


@_quiet
def plot_accuracy_by_strategy(table: pd.DataFrame, path: Path, formats: str | Sequence[str] | None = None,
                              dpi: float | None = None, summary: dict[str, Any] | None = None) -> Path | None:
    """Accuracy per paraphrase strategy kind with 95% Wilson intervals (``table`` from summary.by_strategy).

    The original questions are the baseline, not a strategy: their bar comes first, in gray, and their
    accuracy is a dashed line across the paraphrase bars. A variant naming several kinds counts in each
    of their bars; the figure says how many do. With ``summary`` (summary.json), the accuracy over every
    scored row is a shaded band from its study-bootstrap interval (``intervals.accuracy``): rows of one
    study are resampled together, which the per-bar Wilson intervals cannot do. None (and no file) when
    no kind has a scored row.
    """
    return _save_or_none(accuracy_by_strategy_figure(table, summary), path, formats, dpi)


def _save_or_none(figure: Figure | None, path: Path, formats, dpi) -> Path | None:
    return None if figure is None else save_figure(figure, path, formats, dpi)


def overall_accuracy(summary: dict[str, Any] | None) -> tuple[float, float, float] | None:
    """(accuracy, low, high) over every scored row, from summary.json's ``accuracy`` and ``intervals``."""
    if not summary:
        return None
    value, pair = summary.get("accuracy"), (summary.get("intervals") or {}).get("accuracy")
    if not isinstance(value, (int, float)) or not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return None
    return float(value), float(pair[0]), float(pair[1])


def accuracy_by_strategy_figure(table: pd.DataFrame, summary: dict[str, Any] | None = None) -> Figure | None:
    """The figure of ``plot_accuracy_by_strategy``, unsaved."""
    bars = strategy_bars(table)
    if bars.empty:
        return None
    acc = bars["accuracy"].to_numpy(dtype=float)
    errors = np.stack([acc - bars["low"].to_numpy(dtype=float), bars["high"].to_numpy(dtype=float) - acc])
    labels = [f"{label}\nn = {n} scored" for label, n in zip(bars["label"], bars["scored"], strict=True)]
    is_base = (bars["strategy"] == "original").to_numpy()
    several, variants = multi_kind_variants(table)
    notes = []
    if several:
        notes.append(f"{several} of {variants} variant rows name several kinds (e.g. synonym replacement + "
                     "clause reordering) and count in each of their bars.")

    figure = new_figure(10.0, 1.9 + 0.55 * len(bars) + 0.3 * len(notes))
    ax = figure.subplots()
    y = np.arange(len(bars))
    colours = ["0.6" if base else ACCENT for base in is_base]
    ax.barh(y, acc, color=colours, height=0.62)
    ax.errorbar(acc, y, xerr=errors, fmt="none", ecolor="black", capsize=3, lw=1, clip_on=False)
    for yi, value, low, high in zip(y, acc, acc - errors[0], acc + errors[1], strict=True):
        # the numbers beside the axes, where no bar or interval can hide them
        ax.text(1.02, yi, f"{value:.2f}  [{low:.2f}, {high:.2f}]", va="center", ha="left", fontsize=9,
                transform=ax.get_yaxis_transform(), parse_math=False)
    handles = []
    if is_base.any():
        base = float(acc[is_base][0])
        handles.append(ax.axvline(base, color="0.35", ls="--", lw=1.2, label=f"original accuracy {base:.2f}"))
    handles.append(ax.axvline(0.5, color="0.6", ls=":", lw=1, label="0.5"))
    overall = overall_accuracy(summary)
    if overall is not None:
        value, low, high = overall
        handles.append(ax.axvspan(low, high, color="#CC79A7", alpha=0.18, lw=0, gid="overall-interval", zorder=0,
                                  label=f"all scored rows {value:.2f} [{low:.2f}, {high:.2f}] ({INTERVAL_LABEL})"))
    ax.set_yticks(y, labels, fontsize=9.5)
    ax.invert_yaxis()  # the baseline on top, then the strategies from best to worst
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy   (whiskers and [brackets]: 95% Wilson interval)", fontsize=10)
    ax.grid(axis="x", alpha=0.25)
    ax.set_title("Accuracy by paraphrase strategy", fontsize=12, pad=28)
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(handles), 3),
              fontsize=9, frameon=False)
    height = figure.get_figheight()
    bottom = (0.75 + 0.3 * len(notes)) / height
    figure.subplots_adjust(left=0.26, right=0.8, top=1 - 0.85 / height, bottom=bottom)
    for i, note in enumerate(notes):
        figure.text(0.02, 0.1 / height + 0.3 * i / height, note, fontsize=9, color="0.25", parse_math=False)
    return figure


@_quiet
def plot_layer_profile(summaries: Sequence[dict[str, Sequence[float]]], path: Path,
                       layer_types: Sequence[str] | None = None, cells: int | None = None,
                       formats: str | Sequence[str] | None = None, dpi: float | None = None) -> Path | None:
    """Per-layer image share (and BOS share) and map entropy across the dataset: median and IQR over samples.

    ``summaries`` are ``analysis.views.layer_summaries`` of each sample (as stored in its meta.json).
    None (and no file) when no sample has a finite per-layer image share and entropy.
    """
    summaries = [s for s in (summaries or []) if isinstance(s, dict) and "image_share" in s and "entropy" in s]
    if not summaries:
        return None
    layers = min(min(len(s["image_share"]), len(s["entropy"])) for s in summaries)
    if layers == 0:
        return None
    for name in ("image_share", "entropy"):
        values = np.array([np.asarray(s[name][:layers], dtype=float) for s in summaries])
        if not np.isfinite(values).any():
            return None
    x = np.arange(layers)
    figure = new_figure(13, 5.4)
    axes = figure.subplots(1, 2, gridspec_kw={"wspace": 0.22})

    def band(ax, name: str, colour: str, label: str, transform=None):
        values = np.array([np.asarray(s[name][:layers], dtype=float) for s in summaries])
        if transform is not None:
            values = transform(values)
        q25, q50, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
        ax.fill_between(x, q25, q75, color=colour, alpha=0.22, lw=0)
        ax.plot(x, q50, color=colour, lw=1.8, marker="o", ms=3, label=f"{label} (median, IQR)")

    band(axes[0], "image_share", ACCENT, "image tokens")
    if all(len(s.get("bos_share", ())) >= layers for s in summaries):
        band(axes[0], "bos_share", "#D55E00", "BOS")
    axes[0].set_ylabel("share of the raw attention row")
    axes[0].set_ylim(0, 1)
    axes[0].set_title("Where the answer row's attention goes, per layer", fontsize=11)
    band(axes[1], "entropy", "#009E73", "entropy of the image map")
    if cells:
        axes[1].axhline(math.log(cells), color="0.3", ls="--", lw=1, label=f"uniform over {cells} cells")
    axes[1].set_ylabel("entropy (nats) of the head-mean image map")
    axes[1].set_title("How spread the image map is, per layer", fontsize=11)
    for ax in axes:
        ax.set_xlabel("decoder layer")
        ax.set_xticks(x[:: max(1, layers // 17)])
        ax.grid(alpha=0.25)
        if layer_types:
            globals_ = [i for i, t in enumerate(layer_types[:layers]) if t == "full_attention"]
            if globals_ and len(globals_) < layers:
                for i in globals_:
                    ax.axvline(i, color="0.55", ls=":", lw=1)
                ax.plot([], [], color="0.55", ls=":", lw=1, label="global-attention layer")
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    figure.suptitle(f"Per-layer profile over {len(summaries)} samples (row that produced the first answer token)",
                    fontsize=12)
    figure.subplots_adjust(top=0.87, bottom=0.27, left=0.06, right=0.985)
    return save_figure(figure, path, formats, dpi)


# ---- the dataset-level figures with their study-bootstrap intervals ---------------------------------

INTERVAL_LABEL = "95% CI, study bootstrap"
PANEL_TITLES = {
    "share": "shares (0..1); orange tick: chance (pointing game: by the same rule; accuracy: 0.5)",
    "ratio": "against chance (orange line: 1 = chance)",
    "gain": "faithfulness: mean AUC gain of the map over the random orders (orange line: 0 = random)",
}


def dataset_intervals_figure(summary: dict[str, Any]) -> Figure | None:
    """Every dataset-level figure of ``summary`` (``intervals_summary.headlines``) as a point with the
    whiskers of its study-bootstrap 95% interval read from ``summary["intervals"]``, and the value and
    interval written beside it; one panel per kind (shares, ratios to chance, faithfulness gains), each
    with what chance or a random order gives. None when no figure has a value."""
    from medgemma_tui.export.intervals_summary import headlines

    shown = headlines(summary)
    if not shown:
        return None
    kinds = [k for k in PANEL_TITLES if any(h.kind == k for h in shown)]
    rows = [[h for h in shown if h.kind == k] for k in kinds]
    heights = [len(r) + 1.2 for r in rows]
    figure = new_figure(12.5, 1.3 + 0.42 * sum(heights))  # room on the right for the longest value text
    axes = np.atleast_1d(figure.subplots(len(kinds), 1, gridspec_kw={"height_ratios": heights}))
    for ax, kind, items in zip(axes, kinds, rows, strict=True):
        y = np.arange(len(items))
        values = np.array([h.value for h in items], dtype=float)
        low = np.array([h.value if h.low is None else h.low for h in items], dtype=float)
        high = np.array([h.value if h.high is None else h.high for h in items], dtype=float)
        errors = np.clip(np.stack([values - low, high - values]), 0.0, None)
        bars = ax.errorbar(values, y, xerr=errors, fmt="o", color=ACCENT, ecolor="black", capsize=4, lw=1.2, ms=6,
                           gid="intervals")
        for artist in (bars.lines[0], *bars.lines[1], *bars.lines[2]):
            artist.set_clip_on(False)  # a share of 0 or 1 sits on the frame, whole
        references = [(yi, h.reference) for yi, h in zip(y, items, strict=True) if h.reference is not None]
        if kind == "share":
            if references:
                ax.plot([r for _, r in references], [yi for yi, _ in references], ls="none", marker="|", ms=16,
                        mew=2, color="#D55E00", gid="references")
            ax.set_xlim(0, 1)
        else:
            line = 1.0 if kind == "ratio" else 0.0
            ax.axvline(line, color="#D55E00", ls="--", lw=1.2, gid="references")
            finite = np.concatenate([low, high, [line]])
            span = max(float(np.max(finite) - np.min(finite)), 1e-3)
            ax.set_xlim(min(float(np.min(finite)), line) - 0.08 * span, max(float(np.max(finite)), line) + 0.08 * span)
        for yi, h in zip(y, items, strict=True):
            counts = ", ".join(part for part in (f"n = {h.n}" if h.n is not None else "",
                                                 f"{h.studies} studies" if h.studies and h.low is not None else "")
                               if part)
            ax.text(1.02, yi, h.text()[len(h.label) + 1:] + (f"   {counts}" if counts else ""),
                    va="center", ha="left", fontsize=9.5, transform=ax.get_yaxis_transform(), parse_math=False)
        ax.set_yticks(y, [h.label for h in items], fontsize=9.5)
        ax.set_ylim(len(items) - 0.4, -0.6)
        ax.grid(axis="x", alpha=0.25)
        ax.set_title(PANEL_TITLES[kind], fontsize=9.5, loc="left")
    figure.suptitle(f"Dataset figures: value and whiskers of the {INTERVAL_LABEL}\n(studies resampled with "
                    "replacement, seeded; value [low, high] beside each)", fontsize=11)
    height = figure.get_figheight()
    figure.subplots_adjust(left=0.19, right=0.64, top=1 - 0.95 / height, bottom=0.35 / height, hspace=0.75)
    return figure


@_quiet
def plot_dataset_intervals(summary: dict[str, Any], path: Path, formats: str | Sequence[str] | None = None,
                           dpi: float | None = None) -> Path | None:
    """``dataset_intervals_figure`` written to ``path``; None (and no file) when there is nothing to draw."""
    figure = dataset_intervals_figure(summary)
    return None if figure is None else save_figure(figure, path, formats, dpi)


def _curves(payloads: Sequence[dict[str, Any]], curve: str, field: str) -> np.ndarray:
    """[samples, steps + 1] of one curve field over the samples that have it with the common length."""
    rows = [np.asarray(p[curve][field], dtype=float) for p in payloads
            if isinstance(p.get(curve), dict) and p[curve].get(field) is not None]
    if not rows:
        return np.zeros((0, 0))
    length = min(len(r) for r in rows)
    return np.stack([r[:length] for r in rows])


LABEL_COLOURS = {"yes": "#0072B2", "no": "#D55E00", "uncertain": "#777777"}


def faithfulness_figure(payloads: Sequence[dict[str, Any]], summary: dict[str, Any] | None = None
                        ) -> Figure | None:
    """Deletion and insertion curves of the map against the random orders, log-probability beside
    probability (RISE's curve), split by answer label; below them, where the payloads have them, ERASER's
    comprehensiveness and sufficiency (DeYoung et al. 2020) at each of its bins, the map's order against
    the random orders' on the same samples.

    ``payloads`` are the ``faithfulness`` sections of ``robustness/{key}.json`` (with ``answer_label``).
    Per label, the solid line is the mean over samples of the map's curve and the dashed line the mean
    of the random orders' mean curve, shaded by the mean over samples of the random orders' SD at each
    step (the spread of one random order). The panel titles give each mean gain with its study-bootstrap
    interval from ``summary["intervals"]``. None without a curve.
    """
    payloads = [p for p in payloads if isinstance(p, dict) and isinstance(p.get("deletion"), dict)]
    if not payloads:
        return None
    intervals = (summary or {}).get("intervals") or {}
    faith = (summary or {}).get("faithfulness") or {}
    order = list(LABEL_COLOURS)
    labels = sorted({str(p.get("answer_label") or "uncertain") for p in payloads},
                    key=lambda x: (order.index(x) if x in order else len(order), x))
    eraser = any(isinstance(p.get("comprehensiveness"), dict) for p in payloads)
    figure = new_figure(12.5, 12.6 if eraser else 8.6)
    axes = figure.subplots(3 if eraser else 2, 2)
    for row, curve in enumerate(("deletion", "insertion")):
        for col, (kind, map_field, random_field, sd_field, axis) in enumerate((
                ("", "map", "random", "random_sd", "log p(followed token)"),
                ("_prob", "map_prob", "random_prob", "random_prob_sd", "p(followed token)"))):
            ax = axes[row, col]
            for label in labels:
                part = [p for p in payloads if str(p.get("answer_label") or "uncertain") == label]
                mapped = _curves(part, curve, map_field)
                randoms = _curves(part, curve, random_field)
                spread = _curves(part, curve, sd_field)
                if mapped.size == 0:
                    continue
                fractions = np.asarray(part[0].get("fractions") or np.linspace(0, 1, mapped.shape[1]), dtype=float)
                fractions = fractions[:mapped.shape[1]]
                colour = LABEL_COLOURS.get(label, "#333333")
                ax.plot(fractions, mapped.mean(axis=0), color=colour, lw=2,
                        label=f"answer '{label}': map order (n = {len(part)})", gid=f"map-{label}")
                if randoms.size:
                    mean = randoms.mean(axis=0)
                    ax.plot(fractions, mean, color=colour, lw=1.3, ls="--", label=f"answer '{label}': random orders",
                            gid=f"random-{label}")
                    if spread.size:
                        sd = spread.mean(axis=0)
                        ax.fill_between(fractions, mean - sd, mean + sd, color=colour, alpha=0.15, lw=0)
            name = f"{curve}_gain{kind}"
            gain = faith.get(f"mean_{name}")
            pair = intervals.get(name)
            title = f"{curve}, {'probability' if kind else 'log-probability'}"
            if isinstance(gain, (int, float)):
                title += f"\nmean gain {gain:.3f}"
                if isinstance(pair, (list, tuple)) and len(pair) == 2:
                    title += f" [{pair[0]:.3f}, {pair[1]:.3f}] ({INTERVAL_LABEL})"
            ax.set_title(title, fontsize=10, parse_math=False)
            ax.set_xlabel(f"fraction of image tokens {'removed' if curve == 'deletion' else 'restored'} "
                          "(most attended first)", fontsize=9)
            ax.set_ylabel(axis, fontsize=9)
            ax.grid(alpha=0.25)
            ax.legend(fontsize=7.5, frameon=False)
    if eraser:
        _eraser_panels(axes[2], payloads, labels, faith, intervals)

    def beats_label(key: str) -> str:  # deletion_beats_random_prob -> deletion (probability)
        curve, _, scale = key.partition("_beats_random")
        if curve in ("comprehensiveness", "sufficiency"):
            return curve
        return f"{curve} ({'probability' if scale else 'log-probability'})"

    beats = [f"{beats_label(k)}: {v:.2f}" for k, v in faith.items()
             if k.endswith(("_beats_random", "_beats_random_prob")) and isinstance(v, (int, float))]
    note = "shaded: random orders' mean ± 1 SD of one order (mean over samples)"
    if beats:
        note += "; share of samples whose map beats random (every order and 2 SD): " + ", ".join(beats)
    figure.text(0.01, 0.01, textwrap.fill(note, 170), fontsize=8.5, color="0.25", parse_math=False)
    what = "Deletion and insertion (Petsiuk et al. 2018)" + (", comprehensiveness and sufficiency (DeYoung et al. "
                                                             "2020)" if eraser else "")
    figure.suptitle(f"{what} over {len(payloads)} samples, split by answer", fontsize=12)
    figure.subplots_adjust(left=0.07, right=0.985, top=0.93 if eraser else 0.9, bottom=0.08 if eraser else 0.11,
                           hspace=0.42, wspace=0.2)
    return figure


def _eraser_panels(axes, payloads: Sequence[dict[str, Any]], labels: Sequence[str], faith: dict[str, Any],
                   intervals: dict[str, Any]) -> None:
    """ERASER's comprehensiveness (left) and sufficiency (right) per bin: for each answer label the mean
    over samples of the map order's drop in probability (solid) and of the random orders' mean (dashed),
    shaded by the mean random SD; titles give the mean AOPC gain with its interval."""
    for ax, score, better in zip(axes, ("comprehensiveness", "sufficiency"), ("higher", "lower"), strict=True):
        bins = None
        for label in labels:
            part = [p for p in payloads if str(p.get("answer_label") or "uncertain") == label
                    and isinstance(p.get(score), dict)]
            mapped = _curves(part, score, "map")
            if mapped.size == 0:
                continue
            bins = 100 * np.asarray(part[0][score].get("bins") or [0.01, 0.05, 0.1, 0.2, 0.5], dtype=float)
            bins = bins[:mapped.shape[1]]
            colour = LABEL_COLOURS.get(label, "#333333")
            ax.plot(bins, mapped.mean(axis=0), color=colour, lw=2, marker="o", ms=3,
                    label=f"answer '{label}': map order (n = {len(part)})", gid=f"{score}-map-{label}")
            randoms, spread = _curves(part, score, "random"), _curves(part, score, "random_sd")
            if randoms.size:
                mean = randoms.mean(axis=0)
                ax.plot(bins, mean, color=colour, lw=1.3, ls="--", label=f"answer '{label}': random orders",
                        gid=f"{score}-random-{label}")
                if spread.size:
                    sd = spread.mean(axis=0)
                    ax.fill_between(bins, mean - sd, mean + sd, color=colour, alpha=0.15, lw=0)
        if bins is not None:
            ax.set_xscale("log")
            ax.set_xticks(bins, [f"{b:g}%" for b in bins])
        title = f"{score} (ERASER; {better} is better)"
        gain, pair = faith.get(f"mean_{score}_gain"), intervals.get(f"{score}_gain")
        if isinstance(gain, (int, float)):
            title += f"\nmean AOPC gain {gain:.3f}"
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                title += f" [{pair[0]:.3f}, {pair[1]:.3f}] ({INTERVAL_LABEL})"
        ax.set_title(title, fontsize=10, parse_math=False)
        action = "removed" if score == "comprehensiveness" else "kept alone"
        ax.set_xlabel(f"share of image tokens {action} (the map's top k%)", fontsize=9)
        ax.set_ylabel("p(full film) - p(followed token)", fontsize=9)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7.5, frameon=False)


@_quiet
def plot_faithfulness(payloads: Sequence[dict[str, Any]], summary: dict[str, Any] | None, path: Path,
                      formats: str | Sequence[str] | None = None, dpi: float | None = None) -> Path | None:
    """``faithfulness_figure`` written to ``path``; None (and no file) without curves."""
    figure = faithfulness_figure(payloads, summary)
    return None if figure is None else save_figure(figure, path, formats, dpi)
