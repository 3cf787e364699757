"""The comparison tree's figures: the most moved rows' difference maps over their films, and the shifts'
distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medgemma_tui.export.figures import display_film, new_figure, save_figure
from medgemma_tui.export.overlay import upsample_grid

DIFFERENCE_COLORMAP = "coolwarm"  # diverging: blue = mass lost in B, red = mass gained
SHIFT_PANELS = (
    ("js", "Jensen-Shannon divergence of the maps (nats)"),
    ("top_shift_px", "top cell moved (film pixels)"),
    ("lungs_shift", "mass moved into the lungs (B - A)"),
    ("box_shift", "mass moved into the box (B - A)"),
)


def _film(root: Path | None, image_path: str) -> np.ndarray | None:
    """The row's film in gray, or None where it cannot be read (the map is drawn alone then)."""
    if root is None or not image_path:
        return None
    from medgemma_tui.data.images import ImageError, load_image

    try:
        return load_image(root / image_path).pixels
    except ImageError:
        return None


def plot_most_moved(shifts: pd.DataFrame, out: Path, films: Path | None, count: int = 6) -> Path:
    """``figures/most_moved.png``: B - A of the ``count`` rows with the largest JS, over their films."""
    rows = shifts.head(count)
    cols = min(3, max(1, len(rows)))
    lines = (len(rows) + cols - 1) // cols
    figure = new_figure(4.2 * cols, 4.4 * lines)
    for i, (_, row) in enumerate(rows.iterrows()):
        ax = figure.add_subplot(lines, cols, i + 1)
        a = np.load(out / "grids" / f"{row['key']}_a.npy").astype(np.float64)
        b = np.load(out / "grids" / f"{row['key']}_b.npy").astype(np.float64)
        diff = b - a
        bound = float(np.abs(diff).max()) or 1.0
        pixels = _film(films, str(row["image_path"]))
        if pixels is not None:
            shown = display_film(pixels)
            height, width = pixels.shape[:2]
            ax.imshow(shown, cmap="gray", vmin=0, vmax=255, extent=(0, width, height, 0))
            heat = upsample_grid(diff, (shown.shape[1], shown.shape[0]))
            image = ax.imshow(heat, cmap=DIFFERENCE_COLORMAP, vmin=-bound, vmax=bound, alpha=0.55,
                              extent=(0, width, height, 0))
        else:
            rows_, cols_ = diff.shape
            image = ax.imshow(diff, cmap=DIFFERENCE_COLORMAP, vmin=-bound, vmax=bound, interpolation="nearest",
                              extent=(0, cols_, rows_, 0))
        ax.set_xticks([])
        ax.set_yticks([])
        flip = f", {row['flip']}" if row["flip"] else ""
        ax.set_title(f"{row['key']}\nJS {float(row['js']):.3f}, top moved {float(row['top_shift_cells']):.1f} "
                     f"cells{flip}", fontsize=8.5)
        bar = figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
        bar.set_label("B - A (share of the map)", fontsize=7.5)
        bar.ax.tick_params(labelsize=7)
    figure.suptitle("Most moved rows: where the map gained (red) and lost (blue) mass", fontsize=11)
    figure.tight_layout()
    return save_figure(figure, out / "figures" / "most_moved.png")


def plot_shifts(shifts: pd.DataFrame, out: Path) -> Path:
    """``figures/shifts.png``: histograms of the per-row shifts, flipped rows stacked apart."""
    figure = new_figure(11, 7.5)
    flipped = shifts["flipped"].astype(str).str.lower().isin(("true", "1"))
    for i, (name, title) in enumerate(SHIFT_PANELS):
        ax = figure.add_subplot(2, 2, i + 1)
        values = pd.to_numeric(shifts[name], errors="coerce")
        kept, moved = values[~flipped].dropna().to_numpy(), values[flipped].dropna().to_numpy()
        both = np.concatenate([kept, moved])
        if both.size:
            bins = np.histogram_bin_edges(both, bins=min(30, max(5, both.size // 2)))
            ax.hist([kept, moved], bins=bins, stacked=True, color=["#4c72b0", "#dd8452"],
                    label=[f"verdict kept ({kept.size})", f"verdict flipped ({moved.size})"])
            ax.axvline(float(np.median(both)), color="black", lw=1, ls="--", label=f"median {np.median(both):.3g}")
            ax.legend(fontsize=7.5)
        ax.set_title(title, fontsize=9.5)
        ax.set_ylabel("rows", fontsize=8.5)
        ax.tick_params(labelsize=8)
    figure.suptitle(f"How far each of {len(shifts)} rows moved from A to B", fontsize=11)
    figure.tight_layout()
    return save_figure(figure, out / "figures" / "shifts.png")
