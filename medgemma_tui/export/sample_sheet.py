"""The figure of one row (``visualizations/{key}_full.png``): what the model was asked, what it answered,
and where it looked, in five equal-weight panels a double journal column wide.

(a) the film with the map blended over it and the ground-truth box; (b) the map alone, as its cells,
with the box and a colour bar; (c) the film with the anatomy outlined (body, each lung, mediastinum)
and the box, every outline named in the legend, in the colours of the app and ``medtui masks``
(``colormaps.OUTLINE_COLOURS``); (d) the answer's tokens, the one that carries the verdict marked, the
token whose row made the map; (e) the key metrics as a short table. The title is the question, the
answer and how it was read: never the file key.

Everything drawn comes from ``RowFigure``, built from a finished ``SampleResult`` (``from_result``,
while ``eval`` runs) or from the files of a results tree (``from_tree``, ``medtui figures``), so a
style change redraws a tree without the model.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.colormaps import OUTLINE_COLOURS, OUTLINE_LABELS
from medgemma_tui.export import figure_style as fs
from medgemma_tui.export import figures
from medgemma_tui.export.overlay import overlay_image

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OUTLINE_PARTS = ("body", "lung_right", "lung_left", "mediastinum")  # drawn in this order, named in the legend
FILM_SIDE = 900  # the films are reduced to this long side before drawing: 3 in at 300 dpi
SHEET_INCHES = (fs.DOUBLE_COLUMN_IN, 4.7)
# (key in the metrics, label, how it reads): the few numbers a reader of the figure needs
KEY_METRICS = tuple((name, fs.metric_label(name), kind) for name, kind in (
    ("pointing_hit", "hit"), ("mass_in_box_lift", "ratio"), ("inside_lungs_ratio", "share"),
    ("inside_body_ratio", "share"), ("left_fraction", "share"), ("entropy_norm", "share"), ("top10_mass", "share"),
    ("image_share", "share"),
))


@dataclass(frozen=True)
class RowFigure:
    """What the figure of one row shows, from the result or from the tree."""

    question: str
    answer: str
    answer_label: str
    ground_truth: str | None
    correct: bool | None
    pixels: np.ndarray  # gray uint8 [h, w], the film reduced to FILM_SIDE at most
    film_size: tuple[int, int]  # the film's own (width, height): boxes are in its pixels
    grid: np.ndarray  # [R, C] float64, sums to 1
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # part -> bool [h, w] at ``pixels``' size
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    tokens: tuple[str, ...] = ()  # the answer's tokens, as decoded
    decision_index: int | None = None  # index into ``tokens`` of the token carrying the verdict
    metrics: dict[str, float] = field(default_factory=dict)
    map_description: str = ""
    finding: str = ""
    colormap: str = "magma"
    alpha: float = 0.45


def reduced(pixels: np.ndarray, side: int = FILM_SIDE) -> np.ndarray:
    """The film as gray uint8, its long side at most ``side``."""
    from PIL import Image

    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=-1)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    factor = max(image.size) / side
    if factor > 1:
        image = image.resize((max(1, round(image.width / factor)), max(1, round(image.height / factor))),
                             Image.Resampling.LANCZOS)
    return np.asarray(image)


def mask_at(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    mask = np.asarray(mask).astype(bool)
    if mask.shape == shape:
        return mask
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.NEAREST)) > 127


def from_result(result, colormap: str = "magma", alpha: float = 0.45) -> RowFigure:
    """The figure's content of a finished sample (``analysis.result.SampleResult``)."""
    analysis = result.analysis
    record = analysis.record
    film = np.asarray(result.film.pixels)
    small = reduced(film)
    masks = {}
    if analysis.masks is not None:
        masks = {part: mask_at(getattr(analysis.masks, part), small.shape) for part in OUTLINE_PARTS
                 if getattr(analysis.masks, part, None) is not None and np.asarray(getattr(analysis.masks, part)).any()}
    grid = np.asarray(analysis.grid, dtype=np.float64)
    return RowFigure(
        question=record.question, answer=record.answer or "", answer_label=analysis.answer_label,
        ground_truth=result.sample.answer or None, correct=analysis.correct, pixels=small,
        film_size=(film.shape[1], film.shape[0]), grid=grid / grid.sum() if grid.sum() > 0 else grid, masks=masks,
        boxes=tuple(tuple(float(v) for v in box) for box in result.sample.bbox),
        tokens=tuple(getattr(record, "answer_tokens", ()) or ()),
        decision_index=getattr(analysis, "decision_index", None),
        metrics=dict(analysis.metrics), map_description=analysis.view.description,
        finding=str(getattr(result.sample, "finding", "") or ""), colormap=colormap, alpha=alpha)


def from_tree(tree, key: str, row: dict[str, Any], colormap: str = "magma", alpha: float = 0.45) -> RowFigure:
    """The figure's content of a finished row read back from a results tree (``export.layout.TreeLayout``):
    its film (``meta.json``'s ``image``), map, masks, boxes, tokens and metrics; no model, no record."""
    import json

    import pandas as pd
    from PIL import Image

    from medgemma_tui.data.images import load_image

    meta = json.loads(tree.meta_path(key).read_text(encoding="utf-8"))
    film = load_image(meta.get("image") or row.get("image_path")).pixels
    small = reduced(film)
    masks = {}
    for part in OUTLINE_PARTS:
        path = tree.mask_path(key, part)
        if path.exists():
            with Image.open(path) as image:
                mask = np.asarray(image.convert("L")) > 127
            if mask.any():
                masks[part] = mask_at(mask, small.shape)
    grid = np.load(tree.grid_path(key)).astype(np.float64)
    decision = row.get("decision_index")
    decision = int(decision) if isinstance(decision, (int, float)) and math.isfinite(decision) else None
    correct = row.get("correct")
    correct = None if correct is None or bool(pd.isna(correct)) else bool(correct)  # pandas' NA: not scored
    metrics = {name: float(row[name]) for name, _, _ in KEY_METRICS
               if isinstance(row.get(name), (int, float)) and not isinstance(row.get(name), bool)}
    return RowFigure(
        question=str(row.get("question", "")), answer=str(row.get("answer", "")),
        answer_label=str(row.get("answer_label", "")), ground_truth=str(row.get("ground_truth") or "") or None,
        correct=correct, pixels=small, film_size=(film.shape[1], film.shape[0]),
        grid=grid / grid.sum() if grid.sum() > 0 else grid, masks=masks,
        boxes=tuple(tuple(float(v) for v in box) for box in meta.get("bbox_boxes") or ()),
        tokens=tuple(str(t) for t in meta.get("answer_token_list") or ()), decision_index=decision,
        metrics=metrics, map_description=str((meta.get("map") or {}).get("description", "")),
        finding=str(row.get("finding", "") or ""), colormap=colormap, alpha=alpha)


# ---- text -------------------------------------------------------------------------------------------------
def verdict_line(content: RowFigure) -> str:
    """``Read as "no"; ground truth "yes": wrong``; ``not scored: ground truth "unlabelled"`` where the ground
    truth is no yes or no; the reading alone without one."""
    line = f'Read as "{content.answer_label or "?"}"'
    if content.ground_truth and content.correct is None:
        line += f'; not scored: ground truth "{content.ground_truth}"'
    elif content.ground_truth:
        line += f'; ground truth "{content.ground_truth}": {"correct" if content.correct else "wrong"}'
    return line


def metric_rows(metrics: dict[str, float]) -> list[tuple[str, str]]:
    """The key metrics present, as (label, text): shares to two places, a hit as yes/no."""
    out = []
    for name, label, kind in KEY_METRICS:
        value = metrics.get(name)
        if value is None or not math.isfinite(float(value)):
            continue
        value = float(value)
        text = ("yes" if value >= 0.5 else "no") if kind == "hit" else f"{value:.3g}" if kind == "ratio" \
            else f"{value:.2f}"
        out.append((label, text))
    return out


def shown_tokens(tokens: Sequence[str]) -> list[tuple[int, str]]:
    """(index, text) of the answer tokens worth drawing: special tokens (``<end_of_turn>``, ``<eos>``) and
    empty pieces left out; a piece's leading space kept as the gap before its box."""
    out = []
    for i, token in enumerate(tokens):
        text = str(token).replace("\u2581", " ").replace("\n", "\u21b5")
        if not text.strip() or (text.startswith("<") and text.endswith(">")):
            continue
        out.append((i, text.strip()))
    return out


# ---- drawing ----------------------------------------------------------------------------------------------
def outline_layer(masks: dict[str, np.ndarray], shape: tuple[int, int], width: int) -> tuple[np.ndarray, list[str]]:
    """uint8 RGBA [h, w, 4] with each mask's outline (``width`` px) in its colour, and the parts drawn.

    The outline is the mask less its erosion by a (2 width + 1) square, as a minimum filter: separable,
    so its cost does not grow with the width (``binary_erosion`` with ``iterations`` runs once per pixel
    of width)."""
    from matplotlib.colors import to_rgba
    from scipy import ndimage

    layer = np.zeros((*shape, 4), dtype=np.uint8)
    drawn = []
    for part in OUTLINE_PARTS:
        mask = masks.get(part)
        if mask is None or not mask.any():
            continue
        inner = ndimage.minimum_filter(mask.view(np.uint8), size=2 * width + 1, mode="constant", cval=0)
        layer[mask & (inner == 0)] = np.round(np.array(to_rgba(OUTLINE_COLOURS[part])) * 255).astype(np.uint8)
        drawn.append(part)
    return layer, drawn


def with_outlines(pixels: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """The gray film as uint8 RGB with the outlines of ``outline_layer`` painted in: one image to resample."""
    rgb = np.repeat(pixels[..., None], 3, axis=-1)
    drawn = layer[..., 3] > 0
    rgb[drawn] = layer[drawn, :3]
    return rgb


def film_panel(ax, content: RowFigure, image: np.ndarray, interpolation: str = "bilinear", **imshow):
    """``image`` over the film's pixel coordinates (boxes are in them), framed, R and L marked; the image."""
    width, height = content.film_size
    shown = ax.imshow(image, extent=(0, width, height, 0), interpolation=interpolation, **imshow)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
    mark_sides(ax, width, height)
    return shown


def mark_sides(ax, width: float, height: float) -> None:
    """R and L in the upper corners, white on a dark square, as on a film (image left = patient's right)."""
    style = {"color": "white", "fontsize": fs.FONT_PT, "fontweight": "bold", "va": "top",
             "bbox": {"boxstyle": "square,pad=0.15", "fc": "black", "ec": "none", "alpha": 0.6}}
    ax.text(0.02 * width, 0.02 * height, "R", ha="left", gid="side-R", **style)
    ax.text(0.98 * width, 0.02 * height, "L", ha="right", gid="side-L", **style)


def box_patches(ax, boxes, sx: float = 1.0, sy: float = 1.0) -> int:
    from matplotlib.patches import Rectangle

    for x, y, w, h in boxes:
        ax.add_patch(Rectangle((x * sx, y * sy), w * sx, h * sy, fill=False, lw=1.2, ec=OUTLINE_COLOURS["box"],
                               gid="box"))
    return len(boxes)


TOKEN_LINES = 3  # lines of the token strip; a longer answer is shown around its decision token
TOKEN_GAP = 0.012  # between two token boxes, as a fraction of the strip's width


def token_lines(widths: Sequence[float], gap: float = TOKEN_GAP) -> list[tuple[float, int]]:
    """(x, line) of each token of ``widths`` (fractions of the strip's width), wrapped at 1."""
    out, x, line = [], 0.0, 0
    for width in widths:
        if x > 0 and x + width > 1:
            x, line = 0.0, line + 1
        out.append((x, line))
        x += width + gap
    return out


def token_window(widths: Sequence[float], decision: int | None, ellipsis: float, lines: int = TOKEN_LINES
                 ) -> tuple[int, int]:
    """[start, stop) of the tokens shown: all when they fit in ``lines``, else as many as fit around the
    decision token (with an ellipsis of width ``ellipsis`` at each cut end)."""
    def fits(start: int, stop: int) -> bool:
        shown = ([ellipsis] if start > 0 else []) + list(widths[start:stop]) + ([ellipsis] if stop < len(widths)
                                                                                else [])
        return token_lines(shown)[-1][1] < lines if shown else True

    if fits(0, len(widths)):
        return 0, len(widths)
    centre = decision if decision is not None and 0 <= decision < len(widths) else 0
    start, stop = centre, centre + 1
    grew = True
    while grew:
        grew = False
        for candidate in ((start, stop + 1), (start - 1, stop)):
            if 0 <= candidate[0] and candidate[1] <= len(widths) and fits(*candidate):
                start, stop = candidate
                grew = True
    return start, stop


def token_strip(ax, content: RowFigure) -> None:
    """The answer's tokens as boxes in reading order, wrapped; the decision token bold, filled and labelled."""
    from matplotlib.collections import PatchCollection
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import FancyBboxPatch

    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    tokens = shown_tokens(content.tokens)
    if not tokens:
        ax.text(0, 0.9, "(no answer tokens stored)", va="top", fontsize=fs.FONT_PT)
        return
    renderer = ax.figure.canvas.get_renderer()
    strip = ax.get_window_extent(renderer).width
    size = fs.FONT_PT + 0.5

    def width(text: str, bold: bool = False) -> float:
        prop = FontProperties(size=size, weight="bold" if bold else "normal")
        return renderer.get_text_width_height_descent(text, prop, ismath=False)[0] / strip + 0.008

    widths = [width(text, index == content.decision_index) for index, text in tokens]
    decision = next((k for k, (index, _) in enumerate(tokens) if index == content.decision_index), None)
    start, stop = token_window(widths, decision, width("…"))
    shown = tokens[start:stop]
    sizes = widths[start:stop]
    if start > 0:
        shown, sizes = [(-1, "…"), *shown], [width("…"), *sizes]
    if stop < len(tokens):
        shown, sizes = [*shown, (-1, "…")], [*sizes, width("…")]
    boxes = []
    for (index, text), span, (x, line) in zip(shown, sizes, token_lines(sizes), strict=True):
        y = 0.82 - 0.30 * line  # room under each line for the decision token's label
        decisive = index == content.decision_index and index >= 0
        ax.text(x + 0.004, y, text, fontsize=size, va="center", ha="left", fontweight="bold" if decisive else "normal",
                parse_math=False, gid="decision-token" if decisive else ("ellipsis" if index < 0 else None))
        if index < 0:
            continue
        boxes.append(FancyBboxPatch((x, y - 0.065), span, 0.13, boxstyle="round,pad=0,rounding_size=0.01",
                                    fc=fs.VERMILLION if decisive else "#F2F2F2", alpha=0.35 if decisive else 1.0,
                                    ec=fs.VERMILLION if decisive else "#BBBBBB", lw=1.2 if decisive else 0.5))
        if decisive:
            right = x + span > 0.6  # near the end of its line: the label runs leftwards from the token
            ax.text(x + span if right else x, y - 0.085, "decision token: its row made the map \u2191" if right
                    else "\u2191 decision token: its row made the map", ha="right" if right else "left", va="top",
                    fontsize=fs.SMALL_PT, color=fs.VERMILLION, gid="decision-label", parse_math=False)
    # the boxes as one collection under the texts: an artist each cost about as much as drawing its token
    ax.add_collection(PatchCollection(boxes, match_original=True, zorder=0, transform=ax.transAxes), autolim=False)


def metrics_table(ax, rows: list[tuple[str, str]]) -> None:
    ax.axis("off")
    if not rows:
        ax.text(0, 1, "no metric defined", va="top")
        return
    from matplotlib.collections import LineCollection

    step = min(0.12, 0.95 / len(rows))
    rules = []
    for i, (label, text) in enumerate(rows):
        y = 0.95 - i * step
        ax.text(0.0, y, label, va="top", ha="left", fontsize=fs.FONT_PT, parse_math=False, transform=ax.transAxes)
        ax.text(1.0, y, text, va="top", ha="right", fontsize=fs.FONT_PT, transform=ax.transAxes, gid=f"metric-{i}")
        rules.append([(0.0, y - step + 0.015), (1.0, y - step + 0.015)])
    # one collection for the rules: a Line2D each costs as much to make and draw as the row's two texts
    ax.add_collection(LineCollection(rules, colors="#DDDDDD", linewidths=0.4, transform=ax.transAxes),
                      autolim=False)


@fs.styled
def row_figure(content: RowFigure) -> Figure:
    """The figure of one row (see the module's docstring)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    figure = figures.new_figure(*SHEET_INCHES)
    # title: the question, the answer, how it was read
    wrap = 118
    question = textwrap.shorten(content.question, 2 * wrap)
    answer = textwrap.shorten(f"Answer: {content.answer}", 2 * wrap)
    lines = textwrap.wrap(question, wrap)[:2]
    figure.text(0.02, 0.985, "\n".join(lines), fontsize=fs.SUPTITLE_PT, fontweight="bold", va="top",
                parse_math=False, gid="title")
    top = 0.985 - 0.034 * len(lines)
    answer_lines = textwrap.wrap(answer, wrap + 8)[:2]
    figure.text(0.02, top, "\n".join(answer_lines), fontsize=fs.LABEL_PT, va="top", parse_math=False)
    top -= 0.031 * len(answer_lines)
    colour = {True: fs.GREEN, False: fs.VERMILLION}.get(content.correct, fs.GRAY)
    figure.text(0.02, top, verdict_line(content), fontsize=fs.LABEL_PT, va="top", color=colour, parse_math=False)
    top -= 0.031 + 0.04  # the verdict's line, then room for the panel titles

    grid_spec = figure.add_gridspec(2, 3, left=0.02, right=0.98, top=top, bottom=0.02, wspace=0.30, hspace=0.32,
                                    height_ratios=(2.3, 1.0))
    ax_film, ax_map, ax_anat = (figure.add_subplot(grid_spec[0, c]) for c in range(3))
    ax_tokens = figure.add_subplot(grid_spec[1, 0:2])
    ax_table = figure.add_subplot(grid_spec[1, 2])

    width, height = content.film_size
    rows, cols = content.grid.shape

    # (a) film and map
    blended = overlay_image(content.pixels, content.grid, content.colormap, content.alpha)
    film_panel(ax_film, content, blended)
    box_patches(ax_film, content.boxes)
    ax_film.set_title("Film with the map", loc="left")

    # (b) the map alone, as cells, with its colour bar outside the panel
    cmap = figures.mpl_colormap(content.colormap)
    image = film_panel(ax_map, content, content.grid, "nearest", cmap=cmap, vmin=0)
    box_patches(ax_map, content.boxes)
    ax_map.set_title(f"Map ({rows}×{cols} cells)", loc="left")
    bar_ax = ax_map.inset_axes((1.03, 0.0, 0.04, 1.0))
    bar = figure.colorbar(image, cax=bar_ax)
    bar.locator = MaxNLocator(4)
    bar.update_ticks()
    bar.set_label("share of the map", fontsize=fs.SMALL_PT, labelpad=1)
    bar.ax.tick_params(labelsize=fs.SMALL_PT, width=0.5, length=2)
    bar.outline.set_linewidth(0.5)

    # (c) anatomy
    line = max(1, round(max(content.pixels.shape) / 260))
    layer, drawn = outline_layer(content.masks, content.pixels.shape, line)
    film_panel(ax_anat, content, with_outlines(content.pixels, layer))
    if not drawn:
        ax_anat.text(0.5, 0.5, "no anatomy masks", transform=ax_anat.transAxes, ha="center", color="white")
    boxes = box_patches(ax_anat, content.boxes)
    ax_anat.set_title("Anatomy", loc="left")
    handles = [Line2D([], [], color=OUTLINE_COLOURS[p], lw=1.6, label=OUTLINE_LABELS[p]) for p in drawn]
    if boxes:
        handles.append(Line2D([], [], color=OUTLINE_COLOURS["box"], lw=1.6, label=OUTLINE_LABELS["box"]))
    if handles:
        ax_anat.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.01), ncol=2, fontsize=fs.SMALL_PT,
                       handlelength=1.0, handletextpad=0.4, columnspacing=0.6, borderaxespad=0.2)

    # (d) tokens, (e) metrics
    token_strip(ax_tokens, content)
    ax_tokens.set_title("Answer tokens", loc="left")
    metrics_table(ax_table, metric_rows(content.metrics))
    ax_table.set_title("Key metrics", loc="left")

    for ax, letter in zip((ax_film, ax_map, ax_anat, ax_tokens, ax_table), fs.letters(5), strict=True):
        fs.panel_letter(ax, letter, x=-0.01, y=1.015)
    return figure


def save_full_figure(path: Path, result, colormap: str = "magma", alpha: float = 0.45,
                     formats: str | Sequence[str] | None = None, dpi: float | None = None) -> Path:
    """``visualizations/{key}_full.png`` for one finished sample, and ``.pdf`` / ``.svg`` beside it when
    ``formats`` asks for them; returns the first file written. Every format is there or none."""
    return save_row_figure(path, from_result(result, colormap, alpha), formats, dpi)


def save_row_figure(path: Path, content: RowFigure, formats: str | Sequence[str] | None = None,
                    dpi: float | None = None) -> Path:
    return figures.save_figure(row_figure(content), path, formats, dpi)
