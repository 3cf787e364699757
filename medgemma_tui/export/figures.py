"""Figures of the results tree: the overlay, the plumbing every figure is saved through, and the dataset
plots (the figure of one row is ``export.sample_sheet``; the style of all of them ``export.figure_style``).

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

from medgemma_tui.colormaps import get_colormap
from medgemma_tui.export import figure_style as fs
from medgemma_tui.export.atomic import atomic_file

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


DPI = 120
ACCENT = fs.BLUE


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


# ---- dataset plots ---------------------------------------------------------------------------------------
DISTRIBUTION_METRICS = (
    "entropy_norm", "focus", "top10_mass", "gini", "inside_body_ratio", "inside_lungs_ratio", "border_fraction",
    "left_fraction", "apical_fraction", "basal_fraction", "bos_share", "image_share", "mass_in_box_lift",
    "auroc",
)


CORRECT_COLOR = fs.GREEN
WRONG_COLOR = fs.VERMILLION


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
@fs.styled
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
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    figure = new_figure(fs.DOUBLE_COLUMN_IN, min(fs.MAX_HEIGHT_IN, 1.75 * nrows + 0.7))
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
            ax.set_ylabel("share of the group")
            subtitle = f"n = {len(values)}: " + ", ".join(counts)
        else:
            ax.hist(values, bins=bins, color=ACCENT, alpha=0.85)
            ax.axvline(float(np.median(values)), color="black", ls="--", lw=1.3)
            ax.set_ylabel("rows")
            subtitle = f"n = {len(values)}"
        ax.set_title(f"{name}\n{subtitle}", fontsize=fs.FONT_PT, parse_math=False)
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
    figure.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False,
                  bbox_to_anchor=(0.5, 1 - 0.3 / figure.get_figheight()))
    figure.suptitle(f"Where the maps fall, over {len(done)} finished rows: correct and wrong answers apart"
                    if split else f"Where the maps fall, over {len(done)} finished rows", x=0.02, ha="left",
                    fontweight="bold", y=1 - 0.05 / figure.get_figheight())
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.3 / figure.get_figheight(),
                           top=1 - 0.85 / figure.get_figheight(), hspace=0.85, wspace=0.42)
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
    """Accuracy per paraphrase strategy kind with 95% Wilson intervals (``table`` from summary.by_strategy);
    see ``accuracy_by_strategy_figure``. ``summary`` is accepted for the callers' sake: the figure draws one
    interval method, and the study-bootstrap interval of the overall accuracy is in dataset_intervals.png.
    None (and no file) when no kind has a scored row."""
    return _save_or_none(accuracy_by_strategy_figure(table, summary), path, formats, dpi)


def _save_or_none(figure: Figure | None, path: Path, formats, dpi) -> Path | None:
    return None if figure is None else save_figure(figure, path, formats, dpi)


def accuracy_limits(low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """The accuracy axis: from a round baseline below the lowest whisker to 1, so that values between 0.93
    and 1.00 are told apart; 0 where a whisker goes below 0.5. Every whisker lies inside."""
    bottom = float(np.min(low))
    if bottom < 0.5:
        return 0.0, 1.0
    return math.floor(bottom * 20 - 1e-9) / 20, 1.0  # the next 0.05 below


def multi_kind_note(table: pd.DataFrame) -> str:
    """The rule for variants naming several kinds (they count in each kind's row), with how many there are."""
    several, variants = multi_kind_variants(table)
    if not several:
        return ""
    return (f"{several} of {variants} variant rows name several kinds (e.g. synonym replacement + clause "
            "reordering) and count in each of their kinds' rows.")


@fs.styled
def accuracy_by_strategy_figure(table: pd.DataFrame, summary: dict[str, Any] | None = None) -> Figure | None:
    """Accuracy of the original questions (the baseline, first, gray) and of each paraphrase kind, best
    first, as a point with its 95% Wilson interval (one interval method: every point's), n beside each;
    the axis runs from a stated baseline (``accuracy_limits``) to 1 and the original's accuracy is a
    dashed line under the points. The rule for multi-kind variants is under the axis."""
    import pandas as pd

    bars = strategy_bars(table)
    if bars.empty:
        return None
    acc = bars["accuracy"].to_numpy(dtype=float)
    low, high = bars["low"].to_numpy(dtype=float), bars["high"].to_numpy(dtype=float)
    is_base = (bars["strategy"] == "original").to_numpy()
    note = multi_kind_note(table)
    figure = new_figure(fs.SINGLE_COLUMN_IN * 1.6, 0.95 + 0.2 * len(bars) + (0.25 if note else 0.0))
    ax = figure.subplots()
    y = np.arange(len(bars))
    left, right = accuracy_limits(low, high)
    if is_base.any():
        ax.axvline(float(acc[is_base][0]), color=fs.GRAY, ls="--", lw=0.7, zorder=1, gid="baseline")
    if left <= 0.5:
        ax.axvline(0.5, color=fs.REFERENCE, ls=":", lw=0.7, zorder=1, gid="chance")
    for base in (True, False):
        pick = is_base == base
        if not pick.any():
            continue
        colour = fs.GRAY if base else fs.ESTIMATE
        bars_ = ax.errorbar(acc[pick], y[pick], xerr=np.stack([acc[pick] - low[pick], high[pick] - acc[pick]]),
                            fmt="o", color=colour, ecolor=colour, elinewidth=1.0, capsize=2, ms=3.5, zorder=3,
                            gid="baseline-interval" if base else "intervals")
        for artist in (bars_.lines[0], *bars_.lines[1], *bars_.lines[2]):
            artist.set_clip_on(False)
    studies = table.set_index(table["strategy"].astype(str))["studies"] if "studies" in table else None
    for yi, value, lo, hi, n, kind in zip(y, acc, low, high, bars["scored"], bars["strategy"], strict=True):
        count = f"n = {n}"
        if studies is not None and pd.notna(studies.get(kind)):
            count += f", {int(studies[kind])} stud{'y' if int(studies[kind]) == 1 else 'ies'}"
        ax.text(1.04, yi, f"{fs.estimate_text(value, lo, hi)}   {count}", va="center", ha="left",
                transform=ax.get_yaxis_transform(), parse_math=False, gid="estimate")
    ax.set_yticks(y, list(bars["label"]))
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(len(bars) - 0.5, -0.5)  # the baseline on top, then the kinds from best to worst
    ax.set_xlim(left, right)
    ax.set_xlabel(f"accuracy (axis from {left:g})")
    ax.grid(axis="x")
    if left <= 0.5:
        ax.text(0.5, -0.5, "chance", ha="center", va="bottom", fontsize=fs.SMALL_PT, color=fs.REFERENCE)
    figure.suptitle("Does rephrasing the question change the answer?", x=0.02, ha="left", fontweight="bold")
    height = figure.get_figheight()
    bottom = (0.45 + (0.25 if note else 0.0)) / height
    figure.subplots_adjust(left=0.33, right=0.62, top=1 - 0.45 / height, bottom=bottom)
    if note:
        figure.text(0.02, 0.06 / height, "\n".join(textwrap.wrap(note, 95)), fontsize=fs.SMALL_PT, color="0.25",
                    parse_math=False, gid="note")
    return figure


@_quiet
@fs.styled
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
    figure = new_figure(fs.DOUBLE_COLUMN_IN, 3.4)
    axes = figure.subplots(1, 2, gridspec_kw={"wspace": 0.3})

    def band(ax, name: str, colour: str, label: str, transform=None):
        values = np.array([np.asarray(s[name][:layers], dtype=float) for s in summaries])
        if transform is not None:
            values = transform(values)
        q25, q50, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
        ax.fill_between(x, q25, q75, color=colour, alpha=0.22, lw=0)
        ax.plot(x, q50, color=colour, lw=1.2, marker="o", ms=2, label=f"{label} (median, IQR)")

    band(axes[0], "image_share", fs.BLUE, "image tokens")
    if all(len(s.get("bos_share", ())) >= layers for s in summaries):
        band(axes[0], "bos_share", fs.VERMILLION, "BOS")
    axes[0].set_ylabel("share of the raw attention row")
    axes[0].set_ylim(0, 1)
    axes[0].set_title("Where the answer row's attention goes", loc="left")
    band(axes[1], "entropy", fs.GREEN, "entropy of the image map")
    if cells:
        axes[1].axhline(math.log(cells), color="0.3", ls="--", lw=1, label=f"uniform over {cells} cells")
    axes[1].set_ylabel("entropy of the image map (nats)")
    axes[1].set_title("How spread the image map is", loc="left")
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
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    for ax, letter in zip(axes, fs.letters(2), strict=True):
        fs.panel_letter(ax, letter, x=-0.12, y=1.02)
    figure.suptitle(f"Which layers read the film, over {len(summaries)} rows", x=0.02, ha="left", fontweight="bold")
    figure.subplots_adjust(top=0.85, bottom=0.38, left=0.09, right=0.98)
    return save_figure(figure, path, formats, dpi)


# ---- the dataset-level figures with their study-bootstrap intervals ---------------------------------

INTERVAL_LABEL = "95% CI, study bootstrap"
PANEL_TITLES = {  # what each panel of dataset_intervals.png asks
    "share": "Shares (chance marked |)",
    "ratio": "Against chance (1 = chance)",
    "gain": "Faithfulness: gain over random orders (0 = random)",
}
RATIO_LOG_SPAN = 50.0  # a ratio panel whose whiskers span more than this factor is drawn on a log axis


def ratio_limits(low: np.ndarray, high: np.ndarray) -> tuple[float, float, bool]:
    """(left, right, log) of a ratio axis: from 0 to past the highest whisker and 1, or logarithmic when
    the whiskers span more than ``RATIO_LOG_SPAN`` (a ratio is never negative, so the axis never is)."""
    top = max(float(np.max(high)), 1.0)
    bottom = min(float(np.min(low)), 1.0)
    if bottom > 0 and top / bottom > RATIO_LOG_SPAN:
        return bottom / 1.5, top * 1.5, True
    return 0.0, top * 1.08, False


def gain_limits(low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """An axis holding every whisker and 0, with a margin of 8% of the span."""
    left, right = min(float(np.min(low)), 0.0), max(float(np.max(high)), 0.0)
    margin = 0.08 * max(right - left, 1e-3)
    return left - margin, right + margin


def count_text(h) -> str:
    """``n = 120, 40 studies`` beside an estimate (the studies its interval resampled)."""
    parts = [f"n = {h.n}"] if h.n is not None else []
    if h.studies is not None:
        parts.append(f"{h.studies} stud{'y' if h.studies == 1 else 'ies'}")
    return ", ".join(parts)


def finding_title(shown) -> str:
    """The figure's title: the headline finding in words (accuracy, pointing game against its chance)."""
    by_name = {h.name: h for h in shown}
    parts = []
    if "accuracy" in by_name:
        h = by_name["accuracy"]
        parts.append(f"accuracy {fs.estimate_text(h.value, h.low, h.high)}")
    if "pointing_game" in by_name:
        h = by_name["pointing_game"]
        text = f"pointing game {fs.estimate_text(h.value, h.low, h.high)}"
        if h.reference is not None:
            text += f" (chance {h.reference:.2f})"
        parts.append(text)
    if not parts:
        return "Dataset-level figures with their 95% intervals"
    return "; ".join(parts).capitalize()


@fs.styled
def dataset_intervals_figure(summary: dict[str, Any]) -> Figure | None:
    """Every dataset-level figure of ``summary`` (``intervals_summary.headlines``) as a point with the
    whiskers of its study-bootstrap 95% interval (``summary["intervals"]``), its value, interval, n and
    studies beside it; one panel per kind: shares on 0..1 with chance marked, ratios to chance on an axis
    from 0 (or logarithmic), faithfulness gains around 0. Every whisker lies inside its axis. The method is
    said once, in ``analysis/captions.md``. None when no figure has a value."""
    from medgemma_tui.export.intervals_summary import headlines

    shown = headlines(summary)
    if not shown:
        return None
    kinds = [k for k in PANEL_TITLES if any(h.kind == k for h in shown)]
    rows = [[h for h in shown if h.kind == k] for k in kinds]
    heights = [len(r) + 0.9 for r in rows]
    figure = new_figure(fs.DOUBLE_COLUMN_IN, min(fs.MAX_HEIGHT_IN, 0.75 + 0.2 * sum(heights) + 0.5 * (len(kinds) - 1)))
    axes = np.atleast_1d(figure.subplots(len(kinds), 1, gridspec_kw={"height_ratios": heights}))
    for ax, kind, items, letter in zip(axes, kinds, rows, fs.letters(len(kinds)), strict=True):
        y = np.arange(len(items))
        values = np.array([h.value for h in items], dtype=float)
        low = np.array([h.value if h.low is None else h.low for h in items], dtype=float)
        high = np.array([h.value if h.high is None else h.high for h in items], dtype=float)
        low, high = np.minimum(low, values), np.maximum(high, values)
        if kind == "share":
            left, right, log = 0.0, 1.0, False
        elif kind == "ratio":
            left, right, log = ratio_limits(low, high)
        else:
            (left, right), log = gain_limits(low, high), False
        if log:
            from matplotlib.ticker import FuncFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.set_xlim(left, right)
        if kind == "share":
            references = [(yi, h.reference) for yi, h in zip(y, items, strict=True) if h.reference is not None]
            if references:
                ax.plot([r for _, r in references], [yi for yi, _ in references], ls="none", marker="|", ms=9,
                        mew=1.5, color=fs.REFERENCE, gid="references", zorder=1)
        else:
            ax.axvline(1.0 if kind == "ratio" else 0.0, color=fs.REFERENCE, ls="--", lw=0.8, gid="references",
                       zorder=1)
        bars = ax.errorbar(values, y, xerr=np.stack([values - low, high - values]), fmt="o", color=fs.ESTIMATE,
                           ecolor=fs.ESTIMATE, elinewidth=1.0, capsize=2, ms=3.5, gid="intervals", zorder=3)
        for artist in (bars.lines[0], *bars.lines[1], *bars.lines[2]):
            artist.set_clip_on(False)  # a share of 0 or 1 sits on the frame, whole
        for yi, h in zip(y, items, strict=True):
            estimate = fs.estimate_text(h.value, h.low, h.high)
            if h.low is None and h.studies is not None:
                estimate += " (no interval)"
            ax.text(1.04, yi, f"{estimate}   {count_text(h)}".rstrip(), va="center", ha="left", fontsize=fs.FONT_PT,
                    transform=ax.get_yaxis_transform(), parse_math=False, gid="estimate")
        ax.set_yticks(y, [h.label for h in items])
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(len(items) - 0.5, -0.5)
        ax.grid(axis="x")
        ax.set_title(PANEL_TITLES[kind], loc="left")
        fs.panel_letter(ax, letter, x=-0.31, y=1.0)
    figure.suptitle(finding_title(shown), x=0.02, ha="left", fontweight="bold")
    height = figure.get_figheight()
    top, bottom, gap = 1 - 0.5 / height, 0.25 / height, 0.5  # gap: inches between panels, for the titles
    mean_height = ((top - bottom) * height - (len(kinds) - 1) * gap) / len(kinds)
    figure.subplots_adjust(left=0.26, right=0.66, top=top, bottom=bottom, hspace=gap / mean_height)
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


@fs.styled
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
