"""Figures of ``export.method_tables``: the methods side by side, the heads heatmap, the sanity curves."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from medgemma_tui.export import figure_style as fs
from medgemma_tui.export.dataset_figures import ACCENT
from medgemma_tui.export.figures import new_figure, quiet, save_figure

PANELS = (  # (column, axis label, reference line: chance, uniform or random order)
    ("pointing_game", "pointing game (top cell on the box)", "chance"),
    ("mass_in_box_lift", "mass-in-box lift (1 = uniform)", 1.0),
    ("auroc", "AUROC (cell in box)", 0.5),
    ("deletion_gain", "deletion gain over random orders", 0.0),
    ("insertion_gain", "insertion gain over random orders", 0.0),
)


@quiet
@fs.styled
def plot_methods(table: pd.DataFrame, path: Path, formats: Sequence[str] | None = None, dpi: float | None = None
                 ) -> Path | None:
    """Per method, every column of ``methods.csv`` that has values (pointing game, mass-in-box lift, AUROC,
    deletion and insertion gains) as a point with its 95% interval resampled by study, on an axis holding
    every whisker and the reference (chance, uniform, AUROC 0.5, no gain: dashed); the seconds per row in
    the labels."""
    table = table[np.isfinite(table["pointing_game"].astype(float))] if not table.empty else table
    if table.empty:
        return None
    panels = [p for p in PANELS if p[0] in table and np.isfinite(table[p[0]].to_numpy(dtype=float)).any()]
    figure = new_figure(fs.DOUBLE_COLUMN_IN, 1.2 + 0.22 * len(table))
    axes = np.atleast_1d(figure.subplots(1, len(panels), sharey=True))
    y = np.arange(len(table))[::-1]
    for ax, (column, label, reference) in zip(axes, panels, strict=True):
        value = table[column].to_numpy(dtype=float)
        low = table[f"{column}_low"].to_numpy(dtype=float)
        high = table[f"{column}_high"].to_numpy(dtype=float)
        low, high = np.fmin(low, value), np.fmax(high, value)
        ax.errorbar(value, y, xerr=np.nan_to_num(np.stack([value - low, high - value])), fmt="o", color=ACCENT,
                    ecolor=ACCENT, elinewidth=1.0, capsize=2, ms=3, gid="intervals")
        if reference == "chance":
            reference = float(np.nanmean(table["pointing_chance"].to_numpy(dtype=float)))
        if np.isfinite(reference):
            ax.axvline(reference, color=fs.REFERENCE, ls="--", lw=0.8, zorder=1)
        ends = np.concatenate([low[np.isfinite(low)], high[np.isfinite(high)], [reference] if np.isfinite(reference)
                               else []])
        if ends.size:
            margin = 0.08 * max(float(ends.max() - ends.min()), 1e-3)
            ax.set_xlim(float(ends.min()) - margin, float(ends.max()) + margin)
        ax.set_xlabel(textwrap.fill(label, 22))
        ax.grid(axis="x")
        ax.tick_params(axis="y", length=0)
    labels = [f"{m}  ({s:.2g} s/row)" for m, s in zip(table["method"], table["seconds_per_row"], strict=True)]
    axes[0].set_yticks(y, labels)
    for ax, letter in zip(axes, fs.letters(len(axes)), strict=True):
        fs.panel_letter(ax, letter, x=0.0, y=1.02)
        ax.yaxis.set_tick_params(labelleft=ax is axes[0])
    figure.suptitle("Which attribution method finds the box?", x=0.02, ha="left", fontweight="bold")
    figure.tight_layout()
    return save_figure(figure, path, formats, dpi)


@quiet
@fs.styled
def plot_heads(table: pd.DataFrame, path: Path, formats: Sequence[str] | None = None, dpi: float | None = None
               ) -> Path | None:
    """Layer x head heatmaps of the pointing game and the mass-in-box lift."""
    if table.empty:
        return None
    L, H = int(table["layer"].max()) + 1, int(table["head"].max()) + 1
    figure = new_figure(min(fs.DOUBLE_COLUMN_IN, 2.2 + 0.5 * H), min(fs.MAX_HEIGHT_IN, 1.4 + 0.12 * L))
    axes = figure.subplots(1, 2)
    for ax, column, title in ((axes[0], "pointing_game", "pointing game"), (axes[1], "mass_in_box_lift",
                                                                            "mass-in-box lift")):
        grid = np.full((L, H), np.nan)
        grid[table["layer"].to_numpy(int), table["head"].to_numpy(int)] = table[column].to_numpy(float)
        image = ax.imshow(grid, aspect="auto", cmap="viridis", origin="lower")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers and heads are whole numbers
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(title, loc="left")
        figure.colorbar(image, ax=ax)
    for ax, letter in zip(axes, fs.letters(2), strict=True):
        fs.panel_letter(ax, letter, x=-0.15, y=1.01)
    figure.suptitle("Which heads look at the box?", x=0.02, ha="left", fontweight="bold")
    figure.tight_layout()
    return save_figure(figure, path, formats, dpi)


@quiet
@fs.styled
def plot_sanity(table: pd.DataFrame, path: Path, formats: Sequence[str] | None = None, dpi: float | None = None
                ) -> Path | None:
    """Spearman and SSIM against the original map as layers are randomised, one curve per method."""
    if table.empty:
        return None
    steps = table.drop_duplicates("step").sort_values("step")
    figure = new_figure(fs.DOUBLE_COLUMN_IN, 3.0)
    axes = figure.subplots(1, 2, sharex=True)
    for ax, column in ((axes[0], "spearman"), (axes[1], "ssim")):
        for method, part in table.groupby("method", sort=False):
            part = part.sort_values("step")
            x = part["step"].to_numpy(int)
            ax.plot(x, part[column].to_numpy(float), marker="o", ms=2.5, label=str(method))
            ax.fill_between(x, part[f"{column}_low"].to_numpy(float), part[f"{column}_high"].to_numpy(float),
                            alpha=0.15)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_ylabel(f"{column} with the original map")
        ax.set_xticks(steps["step"].to_numpy(int), steps["randomised"].astype(str), rotation=45, ha="right")
        ax.set_xlabel("randomised down to (cumulative, decoder top first)")
    for ax, letter in zip(axes, fs.letters(2), strict=True):
        fs.panel_letter(ax, letter, x=-0.12, y=1.01)
    axes[0].legend()
    figure.suptitle("Do the maps change when the model is randomised? (Adebayo et al. 2018)", x=0.02, ha="left",
                    fontweight="bold")
    figure.tight_layout()
    return save_figure(figure, path, formats, dpi)
