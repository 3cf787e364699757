"""Figures of ``export.method_tables``: the methods side by side, the heads heatmap, the sanity curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from medgemma_tui.export import figure_style as fs
from medgemma_tui.export.figures import ACCENT, _quiet, new_figure, save_figure

PANELS = (  # (column, axis label, reference line: chance, uniform or random order)
    ("pointing_game", "pointing game (top cell on the box)", "chance"),
    ("mass_in_box_lift", "mass-in-box lift (1 = uniform)", 1.0),
    ("auroc", "AUROC (cell in box)", 0.5),
    ("deletion_gain", "deletion gain over random orders", 0.0),
    ("insertion_gain", "insertion gain over random orders", 0.0),
)


@_quiet
@fs.styled
def plot_methods(table: pd.DataFrame, path: Path, formats: Sequence[str] | None = None, dpi: float | None = None
                 ) -> Path | None:
    """Per method, every column of ``methods.csv`` that has values (pointing game, mass-in-box lift, AUROC,
    deletion and insertion gains) with its 95% interval resampled by study; the seconds per row in the labels."""
    table = table[np.isfinite(table["pointing_game"].astype(float))] if not table.empty else table
    if table.empty:
        return None
    panels = [p for p in PANELS if p[0] in table and np.isfinite(table[p[0]].to_numpy(dtype=float)).any()]
    figure = new_figure(3.6 * len(panels) + 2.0, 1.6 + 0.45 * len(table))
    axes = np.atleast_1d(figure.subplots(1, len(panels), sharey=True))
    y = np.arange(len(table))[::-1]
    for ax, (column, label, reference) in zip(axes, panels, strict=True):
        value = table[column].to_numpy(dtype=float)
        low = table[f"{column}_low"].to_numpy(dtype=float)
        high = table[f"{column}_high"].to_numpy(dtype=float)
        ax.barh(y, np.nan_to_num(value), color=ACCENT, height=0.6)
        ax.errorbar(value, y, xerr=np.stack([value - low, high - value]), fmt="none", ecolor="black", capsize=3, lw=1)
        if reference == "chance":
            reference = float(np.nanmean(table["pointing_chance"].to_numpy(dtype=float)))
        if np.isfinite(reference):
            ax.axvline(reference, color="0.5", ls="--", lw=1)
        ax.set_xlabel(label)
    labels = [f"{m}  ({s:.2g} s/row)" for m, s in zip(table["method"], table["seconds_per_row"], strict=True)]
    axes[0].set_yticks(y, labels)
    figure.suptitle("Attribution methods on the boxed rows, 95% intervals by study "
                    "(dashed: chance, uniform, AUROC 0.5, no gain)")
    figure.tight_layout()
    return save_figure(figure, path, formats, dpi)


@_quiet
@fs.styled
def plot_heads(table: pd.DataFrame, path: Path, formats: Sequence[str] | None = None, dpi: float | None = None
               ) -> Path | None:
    """Layer x head heatmaps of the pointing game and the mass-in-box lift."""
    if table.empty:
        return None
    L, H = int(table["layer"].max()) + 1, int(table["head"].max()) + 1
    figure = new_figure(4.0 + 0.5 * H, 1.8 + 0.22 * L * 2)
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
        ax.set_title(title)
        figure.colorbar(image, ax=ax)
    figure.tight_layout()
    return save_figure(figure, path, formats, dpi)


@_quiet
@fs.styled
def plot_sanity(table: pd.DataFrame, path: Path, formats: Sequence[str] | None = None, dpi: float | None = None
                ) -> Path | None:
    """Spearman and SSIM against the original map as layers are randomised, one curve per method."""
    if table.empty:
        return None
    steps = table.drop_duplicates("step").sort_values("step")
    figure = new_figure(11.0, 4.2)
    axes = figure.subplots(1, 2, sharex=True)
    for ax, column in ((axes[0], "spearman"), (axes[1], "ssim")):
        for method, part in table.groupby("method", sort=False):
            part = part.sort_values("step")
            x = part["step"].to_numpy(int)
            ax.plot(x, part[column].to_numpy(float), marker="o", label=str(method))
            ax.fill_between(x, part[f"{column}_low"].to_numpy(float), part[f"{column}_high"].to_numpy(float),
                            alpha=0.15)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_ylabel(f"{column} with the original map")
        ax.set_xticks(steps["step"].to_numpy(int), steps["randomised"].astype(str), rotation=45, ha="right")
        ax.set_xlabel("randomised down to (cumulative, decoder top first)")
    axes[0].legend(fontsize=8)
    figure.suptitle("Cascading randomisation (Adebayo et al., 2018)")
    figure.tight_layout()
    return save_figure(figure, path, formats, dpi)
