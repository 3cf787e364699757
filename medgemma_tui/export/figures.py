"""Figures of the results tree: the overlay, the multi-panel figure of one sample, and the dataset plots.

Orientation, everywhere: grid row 0 is the top of the image and column 0 its left; on a PA film the
image left is the patient's right, and the figures say so.

matplotlib is imported inside the functions (``Figure`` + the Agg canvas, never ``pyplot``), so the
headless core starts fast, nothing touches a global backend, and the app's workers can draw in threads.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.colormaps import get_colormap, scale
from medgemma_tui.export.atomic import atomic_file

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from medgemma_tui.analysis.result import SampleResult

ORIENTATION = "image left = patient's right (PA view)"
FIGURE_MAX_SIDE = 1024  # films are shown downsampled in the multi-panel figure; the overlay PNG is full size
DPI = 120
# pale lines over gray films and dark maps: colour-blind safe (Okabe-Ito)
BOX_COLOR = "#56B4E9"
BODY_COLOR = "#F0E442"
LUNG_RIGHT_COLOR = "#009E73"
LUNG_LEFT_COLOR = "#E69F00"
ACCENT = "#0072B2"


# ---- the overlay (numpy) ------------------------------------------------------------------------------
def upsample_grid(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A [R, C] map to [height, width] by bilinear interpolation between cell centres.

    The processor stretches the whole film to its square input, so cell (i, j) covers rows
    ``i*H/R .. (i+1)*H/R`` and columns ``j*W/C .. (j+1)*W/C`` of the film, whatever its aspect.
    """
    from PIL import Image

    width, height = size
    image = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32))
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64)


def overlay_image(pixels: np.ndarray, grid: np.ndarray, colormap: str = "magma", alpha: float = 0.45) -> np.ndarray:
    """The map, scaled to its maximum and coloured, blended over the gray film: uint8 [H, W, 3]."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=-1)
    height, width = pixels.shape
    heat = np.clip(scale(upsample_grid(grid, (width, height))), 0.0, 1.0)
    colour = get_colormap(colormap)(heat).astype(np.float64)
    gray = np.repeat(pixels.astype(np.float64)[..., None], 3, axis=-1)
    return np.clip((1.0 - alpha) * gray + alpha * colour + 0.5, 0, 255).astype(np.uint8)


def save_overlay(path: Path, pixels: np.ndarray, grid: np.ndarray, colormap: str = "magma",
                 alpha: float = 0.45) -> Path:
    """``overlays/{key}_overlay.png``: the overlay at the film's own resolution, written atomically."""
    from PIL import Image

    with atomic_file(Path(path)) as tmp:
        Image.fromarray(overlay_image(pixels, grid, colormap, alpha)).save(tmp, format="PNG")
    return Path(path)


# ---- matplotlib plumbing --------------------------------------------------------------------------------
def new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    path = Path(path)
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return path


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
              interpolation="lanczos")
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
    from medgemma_tui.analysis.masks import mask_to_grid

    record = analysis.record
    grid = np.asarray(analysis.grid, dtype=np.float64)
    grid = grid / grid.sum()
    rows, cols = grid.shape
    height, width = pixels.shape[:2]
    cmap = mpl_colormap(colormap)
    figure = new_figure(15.5, 10.2)
    axes = figure.subplots(2, 3, gridspec_kw={"hspace": 0.32, "wspace": 0.28, "left": 0.04, "right": 0.985,
                                               "bottom": 0.06, "top": 0.80})

    # header: question, answer, verdict, how the map was made
    verdict = f"parsed: {analysis.answer_label}"
    if ground_truth:
        mark = {True: "correct", False: "wrong", None: "not scored"}[analysis.correct]
        verdict += f"   ground truth: {ground_truth}   ({mark})"
    header = [title or (Path(record.image_path).name if record.image_path else "sample")]
    plain = {"va": "top", "parse_math": False}  # questions and answers are text, never mathtext
    figure.text(0.04, 0.975, header[0], fontsize=14, fontweight="bold", **plain)
    figure.text(0.04, 0.94, textwrap.shorten("Q: " + record.question, 160), fontsize=11.5, **plain)
    figure.text(0.04, 0.91, textwrap.shorten("A: " + (record.answer or "(empty)"), 160), fontsize=11.5, **plain)
    figure.text(0.04, 0.88, verdict, fontsize=10.5, color=ACCENT, **plain)
    figure.text(0.04, 0.855, textwrap.shorten("map: " + analysis.view.description, 190), fontsize=9, color="0.3",
                **plain)

    # (a) the film with its boxes
    ax = axes[0, 0]
    film_axes(ax, pixels, width, height, f"X-ray ({width}×{height} px)")
    draw_boxes(ax, boxes)
    mark_sides(ax, width, height)

    # (b) the raw grid
    grid_axes(axes[0, 1], figure, grid, cmap, f"answer map ({rows}×{cols} cells)", "attention (sums to 1)")
    if boxes:
        draw_boxes(axes[0, 1], boxes, cols / width, rows / height)

    # (c) the masks
    ax = axes[0, 2]
    film_axes(ax, pixels, width, height, "anatomy masks")
    masks = analysis.masks
    if masks is not None:
        shown = display_film(pixels).shape
        tint = np.zeros((*shown, 4))
        for mask, colour in ((masks.lung_right, LUNG_RIGHT_COLOR), (masks.lung_left, LUNG_LEFT_COLOR)):
            from matplotlib.colors import to_rgba

            tint[display_mask(mask, shown)] = to_rgba(colour, 0.38)
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
    if masks is not None:
        lungs = mask_to_grid(masks.lungs, (rows, cols))
        inside = grid * lungs
        share = float(inside.sum())
        shown = inside / share if share > 0 else inside
        grid_axes(ax, figure, shown, cmap, f"map × lung fields ({share:.0%} of the mass)",
                  "attention inside lungs (renormalised)")
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no lung mask", transform=ax.transAxes, ha="center")

    # (e) the overlay
    ax = axes[1, 1]
    small = display_film(pixels)
    ax.imshow(overlay_image(small, grid, colormap, alpha), extent=(0, width, height, 0), interpolation="lanczos")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"overlay ({colormap}, alpha {alpha:g})", fontsize=11)
    ax.set_xlabel(ORIENTATION, fontsize=8.5)
    draw_boxes(ax, boxes)
    mark_sides(ax, width, height)

    # (f) the metrics
    ax = axes[1, 2]
    ax.axis("off")
    extra = {"gated tokens": len(analysis.gating.tokens)}
    lines = metrics_lines(analysis.metrics, extra)
    # two columns, cut at a group heading near the middle, so the box metrics fit under the others
    heads = [i for i, line in enumerate(lines) if not line.startswith(" ")]
    cut = min(heads, key=lambda i: abs(i - len(lines) / 2)) if len(lines) > 22 else len(lines)
    for x, column in ((0.0, lines[:cut]), (0.53, lines[cut:])):
        ax.text(x, 1.0, "\n".join(column), family="monospace", fontsize=8.6, va="top", ha="left",
                transform=ax.transAxes, parse_math=False)
    ax.set_title("metrics", fontsize=11, loc="left")
    return figure


def save_full_figure(path: Path, result: SampleResult, colormap: str = "magma", alpha: float = 0.45) -> Path:
    """``visualizations/{key}_full.png`` for one finished sample."""
    figure = full_figure(
        result.film.pixels, result.analysis, boxes=list(result.sample.bbox),
        ground_truth=result.sample.answer or None, title=result.sample.key, colormap=colormap, alpha=alpha,
    )
    return save_figure(figure, path)


# ---- dataset plots ---------------------------------------------------------------------------------------
DISTRIBUTION_METRICS = (
    "entropy_norm", "focus", "top10_mass", "gini", "inside_body_ratio", "inside_lungs_ratio", "border_fraction",
    "left_fraction", "apical_fraction", "basal_fraction", "bos_share", "image_share", "mass_in_box_lift",
    "auroc",
)


def plot_metric_distributions(rows: pd.DataFrame, path: Path) -> Path | None:
    """Histograms of the main metrics over finished rows, split by correct and wrong answers."""
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    done = rows[rows["error"] == ""] if "error" in rows else rows
    names = [n for n in DISTRIBUTION_METRICS if n in done and pd.to_numeric(done[n], errors="coerce").notna().any()]
    if done.empty or not names:
        return None
    ncols = 4
    nrows = math.ceil(len(names) / ncols)
    figure = new_figure(14, 2.7 * nrows + 0.8)
    axes = np.atleast_2d(figure.subplots(nrows, ncols, gridspec_kw={"hspace": 0.55, "wspace": 0.3}))
    correct = done["correct"] if "correct" in done else pd.Series([pd.NA] * len(done), index=done.index)
    for ax, name in zip(axes.ravel(), names, strict=False):
        values = pd.to_numeric(done[name], errors="coerce")
        finite = values[np.isfinite(values)]
        bins = np.histogram_bin_edges(finite, bins=min(20, max(5, len(finite) // 2))) if len(finite) else 10
        split = [("correct", correct == True, "#009E73"), ("wrong", correct == False, "#D55E00")]  # noqa: E712
        split = [(label, mask.fillna(False).astype(bool), c) for label, mask, c in split]
        if all(mask.any() for _, mask, _ in split):
            for label, mask, colour in split:
                ax.hist(values[mask].dropna(), bins=bins, alpha=0.6, color=colour, label=f"{label} ({mask.sum()})")
            ax.legend(fontsize=7)
        else:
            ax.hist(finite, bins=bins, color=ACCENT, alpha=0.85)
        ax.set_title(f"{name}  (mean {finite.mean():.3f}, n={len(finite)})" if len(finite) else name, fontsize=9)
        ax.tick_params(labelsize=7.5)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax.set_ylabel("samples", fontsize=7.5)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    figure.suptitle(f"Metric distributions over {len(done)} finished samples", fontsize=12)
    return save_figure(figure, path)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def plot_accuracy_by_strategy(table: pd.DataFrame, path: Path) -> Path | None:
    """Accuracy per paraphrase strategy kind with 95% Wilson intervals (``table`` from summary.by_strategy)."""
    scored = table[table["scored"] > 0] if not table.empty else table
    if scored.empty:
        return None
    scored = scored.sort_values("accuracy")
    figure = new_figure(8.5, 1.2 + 0.45 * len(scored))
    ax = figure.subplots()
    y = np.arange(len(scored))
    acc = scored["accuracy"].to_numpy(dtype=float)
    lo_hi = np.array([wilson_interval(round(a * n), int(n)) for a, n in zip(acc, scored["scored"], strict=True)])
    ax.barh(y, acc, color=ACCENT, alpha=0.85)
    ax.errorbar(acc, y, xerr=[acc - lo_hi[:, 0], lo_hi[:, 1] - acc], fmt="none", ecolor="black", capsize=3, lw=1)
    ax.set_yticks(y, [f"{s}  (n={int(n)})" for s, n in zip(scored["strategy"], scored["scored"], strict=True)],
                  fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (95% Wilson interval)")
    ax.axvline(0.5, color="0.5", ls=":", lw=1)
    ax.set_title("Accuracy by paraphrase strategy", fontsize=12)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_layer_profile(summaries: Sequence[dict[str, Sequence[float]]], path: Path,
                       layer_types: Sequence[str] | None = None, cells: int | None = None) -> Path | None:
    """Per-layer image share (and BOS share) and map entropy across the dataset: median and IQR over samples.

    ``summaries`` are ``analysis.views.layer_summaries`` of each sample (as stored in its meta.json).
    """
    summaries = [s for s in summaries if s and "image_share" in s]
    if not summaries:
        return None
    layers = min(len(s["image_share"]) for s in summaries)
    x = np.arange(layers)
    figure = new_figure(13, 4.4)
    axes = figure.subplots(1, 2, gridspec_kw={"wspace": 0.22})

    def band(ax, name: str, colour: str, label: str, transform=None):
        values = np.array([np.asarray(s[name][:layers], dtype=float) for s in summaries])
        if transform is not None:
            values = transform(values)
        q25, q50, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
        ax.fill_between(x, q25, q75, color=colour, alpha=0.22, lw=0)
        ax.plot(x, q50, color=colour, lw=1.8, marker="o", ms=3, label=f"{label} (median, IQR)")

    band(axes[0], "image_share", ACCENT, "image tokens")
    if "bos_share" in summaries[0]:
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
        ax.legend(fontsize=8, loc="best")
    figure.suptitle(f"Per-layer profile over {len(summaries)} samples (row that produced the first answer token)",
                    fontsize=12)
    figure.subplots_adjust(top=0.84, bottom=0.13, left=0.06, right=0.985)
    return save_figure(figure, path)
