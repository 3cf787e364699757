"""``analysis/faithfulness.png``: does the map's order of image tokens matter more to the answer than random
orders of the same tokens? A double journal column wide, in ``export.figure_style``; the methods (RISE's
deletion and insertion curves, ERASER's comprehensiveness and sufficiency) and the interval are said once,
in ``captions.md`` (``export.captions``), not in the titles.

(a) deletion and (b) insertion on the probability of the followed token; (c) comprehensiveness and (d)
sufficiency at ERASER's bins, where the study ran them; each with the mean curve of the map's order (solid)
and of the random orders (dashed, shaded by one order's SD), per answer reading, n per reading in the
legend (and above a panel whose samples differ). (e) every mean gain over the random orders (> 0: the map
beats random) with its study-bootstrap interval, whiskers whole, value, n and studies beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.faithfulness_curves import MeanCurve, mean_curves
from medgemma_tui.export import figure_style as fs
from medgemma_tui.export.dataset_figures import estimate_panel
from medgemma_tui.export.figures import new_figure, quiet, save_or_none

if TYPE_CHECKING:
    from matplotlib.figure import Figure

READING_COLOURS = {"yes": fs.BLUE, "no": fs.VERMILLION, "uncertain": fs.GRAY}
OTHER_COLOUR = fs.BLACK
# (curve, panel title, x label, y label)
CURVE_PANELS = (
    ("deletion", "Deletion", "share of image tokens removed, the map's first", "p(followed token)"),
    ("insertion", "Insertion", "share of image tokens restored, the map's first", "p(followed token)"),
)
ERASER_PANELS = (  # (score, panel title, what happens to the map's top tokens)
    ("comprehensiveness", "Comprehensiveness (higher is better)", "the map's top tokens removed"),
    ("sufficiency", "Sufficiency (lower is better)", "the map's top tokens kept alone"),
)
CURVES_IN = 1.85  # height of a row of curve panels
GAIN_ROW_IN = 0.19  # per gain in panel (e)


def draw_curves(ax, curves: Sequence[MeanCurve], legend_n: dict[str, int], positions=None) -> None:
    """Each reading's mean map curve (solid) and random mean (dashed, shaded +-1 SD); n per reading above the
    panel, on the right, where it is not the legend's (``legend_n``). ``positions`` replaces the x values
    (ERASER's bins at even steps)."""
    counts = []
    for curve in curves:
        colour = READING_COLOURS.get(curve.reading, OTHER_COLOUR)
        x = curve.x if positions is None else positions[: len(curve.x)]
        ax.plot(x, curve.map, color=colour, lw=1.3, marker="o" if positions is not None else None, ms=2.5,
                gid=f"map-{curve.reading}", zorder=3)
        if curve.random is not None:
            ax.plot(x, curve.random, color=colour, lw=0.9, ls="--", gid=f"random-{curve.reading}", zorder=2)
            if curve.random_sd is not None:
                ax.fill_between(x, curve.random - curve.random_sd, curve.random + curve.random_sd, color=colour,
                                alpha=0.15, lw=0, zorder=1)
        counts.append(f"{curve.n} {curve.reading}")
    if {c.reading: c.n for c in curves} != legend_n:
        ax.set_title("n = " + ", ".join(counts), loc="right", fontsize=fs.SMALL_PT, color="0.3", gid="counts")
    ax.grid(alpha=0.3)


def gain_items(summary: dict[str, Any] | None) -> list:
    from medgemma_tui.export.intervals_summary import headlines

    return [h for h in headlines(summary or {}) if h.kind == "gain"]


def finding_title(samples: int, gains: Sequence) -> str:
    """The headline: the deletion gain on the probability curve (RISE's), else the first gain there is."""
    title = f"Map order against random orders, {samples} samples"
    lead = next((h for h in gains if h.name == "deletion_gain_prob"), gains[0] if gains else None)
    if lead is not None:
        title += f": {lead.label} {fs.estimate_text(lead.value, lead.low, lead.high)}"
    return title


@fs.styled
def faithfulness_figure(payloads: Sequence[dict[str, Any]], summary: dict[str, Any] | None = None
                        ) -> Figure | None:
    """The figure of the module's docstring from the ``faithfulness`` sections of ``robustness/{key}.json``
    (each with its ``answer_label``) and the gains and intervals of ``summary.json``. None without a curve."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    payloads = [p for p in payloads if isinstance(p, dict) and isinstance(p.get("deletion"), dict)]
    if not payloads:
        return None
    eraser = any(isinstance(p.get("comprehensiveness"), dict) for p in payloads)
    gains = gain_items(summary)
    rows = 1 + eraser
    gain_in = (GAIN_ROW_IN * len(gains) + 0.55) if gains else 0.0
    top_in, gap_in, bottom_in = 0.78, 0.62, 0.2
    height = top_in + rows * CURVES_IN + (rows - 1) * gap_in + (gap_in + gain_in if gains else 0) + bottom_in
    figure = new_figure(fs.DOUBLE_COLUMN_IN, min(fs.MAX_HEIGHT_IN, height))
    height = figure.get_figheight()
    ratios = [CURVES_IN] * rows + ([gain_in] if gains else [])
    grid = figure.add_gridspec(len(ratios), 2, height_ratios=ratios, left=0.09, right=0.98, top=1 - top_in / height,
                               bottom=bottom_in / height, hspace=gap_in / np.mean(ratios), wspace=0.28)
    letters = iter(fs.letters(2 * rows + 1))
    curves = {curve: mean_curves(payloads, curve, "_prob") for curve, *_ in CURVE_PANELS}
    readings = {c.reading: c.n for c in curves["deletion"]}  # n in the legend
    for col, (curve, title, xlabel, ylabel) in enumerate(CURVE_PANELS):
        ax = figure.add_subplot(grid[0, col])
        draw_curves(ax, curves[curve], readings)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(title, loc="left")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        fs.panel_letter(ax, next(letters), x=-0.1, y=1.03)
    if eraser:
        for col, (score, title, action) in enumerate(ERASER_PANELS):
            ax = figure.add_subplot(grid[1, col])
            curves = mean_curves(payloads, score)
            bins = curves[0].x if curves else np.asarray([])
            positions = np.arange(len(bins), dtype=float)  # AOPC weighs the bins alike: drawn at even steps
            draw_curves(ax, curves, readings, positions)
            ax.axhline(0.0, color="0.4", lw=0.5, zorder=0)
            ax.set_xticks(positions, [f"{100 * b:g}%" for b in bins])
            ax.set_xlim(-0.25, len(bins) - 0.75)
            ax.set_title(title, loc="left")
            ax.set_xlabel(f"{action} (share of image tokens)")
            ax.set_ylabel("probability lost")
            fs.panel_letter(ax, next(letters), x=-0.1, y=1.03)
    if gains:
        ax = figure.add_subplot(grid[rows, :])
        estimate_panel(ax, gains, "gain")
        ax.set_title("Gain over random orders (0 = no better than random; > 0 beats it)", loc="left")
        fs.panel_letter(ax, next(letters), x=-0.02, y=1.03)
        position = ax.get_position()  # room on the right for the estimates, on the left for the labels
        ax.set_position([position.x0 + 0.17, position.y0, position.width * 0.5, position.height])
    handles = [Patch(fc=READING_COLOURS.get(r, OTHER_COLOUR), label=f"answer '{r}' (n = {n})")
               for r, n in readings.items()]
    handles += [Line2D([], [], color="0.2", lw=1.3, label="map's order"),
                Line2D([], [], color="0.2", lw=0.9, ls="--", label="random orders (±1 SD)")]
    figure.legend(handles=handles, loc="upper left", ncol=len(handles), bbox_to_anchor=(0.01, 1 - 0.26 / height),
                  frameon=False, handlelength=1.6, columnspacing=1.2)
    figure.suptitle(finding_title(len(payloads), gains), x=0.01, ha="left", fontweight="bold",
                    y=1 - 0.06 / height, va="top")
    return figure


@quiet
def plot_faithfulness(payloads: Sequence[dict[str, Any]], summary: dict[str, Any] | None, path: Path,
                      formats: str | Sequence[str] | None = None, dpi: float | None = None) -> Path | None:
    """``faithfulness_figure`` written to ``path``; None (and no file) without curves."""
    return save_or_none(faithfulness_figure(payloads, summary), path, formats, dpi)
