"""The X-ray with its heatmap as terminal cells: blend in numpy once per change, then cut half-block rows.

A cell shows two pixels: ``▀`` with the foreground colour the upper pixel and the background colour the
lower one. A terminal cell is about twice as tall as it is wide, so ``side`` columns by ``side / 2``
rows draw a square film with square pixels. Every segment carries both colours explicitly, so the
picture never depends on the terminal's default background.

Colour: in true colour each pixel keeps its RGB; for a 256-colour terminal (OpenSSH does not forward
``COLORTERM``) the picture is quantised here, in numpy, to the xterm palette (the 6x6x6 cube and the
24 grays, whichever is nearer), rather than leaving rich to downgrade thousands of distinct colours one
at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from medgemma_tui.colormaps import MASK_COLORS, get_colormap, hex_rgb
from medgemma_tui.export.overlay import blend

HALF = "▀"
MASK_COLOURS = {name: hex_rgb(color) for name, color in MASK_COLORS.items()}  # as the figures draw them
BOX_COLOUR = (255, 95, 95)  # the ground-truth box when the theme gives no error colour
CURSOR_COLOUR = (255, 255, 255)
CUBE = np.array([0, 95, 135, 175, 215, 255], dtype=np.int32)


@dataclass(frozen=True)
class Paint:
    """Everything besides the map that a picture depends on (part of the strip cache key)."""

    colormap: str = "magma"
    alpha: float = 0.45
    overlay: str = "blend"  # blend | map | film
    masks: bool = False
    cursor: tuple[int, int] | None = None
    colors: str = "truecolor"  # truecolor | 256
    background: tuple[int, int, int] = (0, 0, 0)
    scale: str = "max"  # colours span 0..max ("max") or min..max ("range": a flat map is dark, for galleries)
    box_colour: tuple[int, int, int] = BOX_COLOUR  # ground-truth box outline (drawn with the masks)


Fractions = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the film's width and height


def box_fractions(boxes, image_size: tuple[int, int] | None) -> tuple[Fractions, ...]:
    """Ground-truth boxes (x, y, w, h in the film's pixels) as fractions of its width and height.

    The processor stretches a non-square film to its square input, so a box keeps its fractions of the
    width and of the height on the square picture (as ``analysis.grounding`` maps boxes to the grid).
    ``image_size`` is the film's real (width, height); without it nothing can be placed.
    """
    if not boxes or not image_size:
        return ()
    width, height = image_size
    out = []
    for x, y, w, h in boxes:
        x0, x1 = sorted((float(x) / width, (float(x) + float(w)) / width))
        y0, y1 = sorted((float(y) / height, (float(y) + float(h)) / height))
        x0, x1, y0, y1 = (min(max(v, 0.0), 1.0) for v in (x0, x1, y0, y1))
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1, y1))
    return tuple(out)


def box_pixels(box: Fractions, side: int) -> tuple[int, int, int, int]:
    """Inclusive pixel rows and columns (y0, y1, x0, x1) of a box's outline on a ``side`` picture."""
    x0, y0, x1, y1 = box
    last = side - 1
    left, top = min(int(x0 * side), last), min(int(y0 * side), last)
    right = min(max(int(np.ceil(x1 * side)) - 1, left), last)
    bottom = min(max(int(np.ceil(y1 * side)) - 1, top), last)
    return top, bottom, left, right


def fit(width: int, height: int) -> int:
    """Pixel side of the square picture that fits ``width`` columns x ``height`` rows (even, >= 2)."""
    side = min(width, 2 * height)
    return max(2, side - side % 2)


# ---- pixels --------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _resize_gray(film_bytes: bytes, shape: tuple[int, int], side: int) -> np.ndarray:
    image = Image.frombytes("L", (shape[1], shape[0]), film_bytes)
    return np.asarray(image.resize((side, side), Image.Resampling.BOX if shape[0] > side else Image.BILINEAR))


def film_at(film: np.ndarray | None, side: int) -> np.ndarray:
    """The square film resized to ``side`` pixels, uint8 [side, side]; a flat gray when there is none."""
    if film is None:
        return np.full((side, side), 40, dtype=np.uint8)
    film = np.ascontiguousarray(film, dtype=np.uint8)
    return _resize_gray(film.tobytes(), film.shape, side)


def outline(mask: np.ndarray, side: int) -> np.ndarray:
    """The boundary pixels of a bool mask resized (nearest) to [side, side]."""
    m = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((side, side), Image.NEAREST)) > 0
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def compose(
    film: np.ndarray | None,
    grid: np.ndarray,
    paint: Paint,
    side: int,
    masks: dict[str, np.ndarray] | None = None,
    boxes: tuple[Fractions, ...] = (),
) -> np.ndarray:
    """uint8 RGB [side, side, 3]: the film, the map blended over it, mask and ground-truth box outlines
    (both with ``paint.masks``; boxes from ``box_fractions``) and the cell cursor."""
    gray = film_at(film, side)
    if paint.overlay == "film":
        out = np.repeat(gray[..., None], 3, axis=-1)
    else:  # the tree's compositor, as cells: the cursor frames one (README, "Overlays")
        out = blend(gray, grid, paint.colormap, 1.0 if paint.overlay == "map" else paint.alpha, "cells", paint.scale)
    if paint.masks and masks:
        for name, mask in masks.items():
            out[outline(mask, side)] = MASK_COLOURS.get(name, (255, 255, 0))
    if paint.masks:
        for box in boxes:
            top, bottom, left, right = box_pixels(box, side)
            out[top : bottom + 1, [left, right]] = paint.box_colour
            out[[top, bottom], left : right + 1] = paint.box_colour
    if paint.cursor is not None:
        r, c = paint.cursor
        rows, cols = grid.shape
        y0, y1 = r * side // rows, max((r + 1) * side // rows, r * side // rows + 1)
        x0, x1 = c * side // cols, max((c + 1) * side // cols, c * side // cols + 1)
        out[y0:y1, [x0, x1 - 1]] = CURSOR_COLOUR
        out[[y0, y1 - 1], x0:x1] = CURSOR_COLOUR
    return out


# ---- colours -------------------------------------------------------------------------------------
def _luma_chroma(v: np.ndarray) -> np.ndarray:
    """[..., 3] RGB -> (luma, weighted blue and red chroma): hue errors count double, so a tinted
    heatmap over the film keeps its tint instead of collapsing onto the gray ramp."""
    y = 0.299 * v[..., 0] + 0.587 * v[..., 1] + 0.114 * v[..., 2]
    return np.stack([y, 1.4 * (v[..., 2] - y), 1.4 * (v[..., 0] - y)], axis=-1)


def xterm256(rgb: np.ndarray) -> np.ndarray:
    """Nearest xterm-256 palette index (16..255) of each RGB pixel: the colour cube or the gray ramp."""
    v = rgb.astype(np.int32)
    idx = np.clip((v - 35) // 40, 0, 5)  # cube level nearest to each channel: 0, 95, 135, ... 255
    idx[(v >= 48) & (v < 115)] = 1
    idx[v < 48] = 0
    cube = CUBE[idx]
    cube_index = 16 + 36 * idx[..., 0] + 6 * idx[..., 1] + idx[..., 2]
    mean = v.mean(axis=-1)
    g = np.clip(np.round((mean - 8) / 10), 0, 23).astype(np.int32)
    gray_level = 8 + 10 * g
    target = _luma_chroma(v.astype(np.float32))
    d_cube = ((_luma_chroma(cube.astype(np.float32)) - target) ** 2).sum(axis=-1)
    gray = np.repeat(gray_level[..., None], 3, axis=-1).astype(np.float32)
    d_gray = ((_luma_chroma(gray) - target) ** 2).sum(axis=-1)
    return np.where(d_gray < d_cube, 232 + g, cube_index)


# True colour keeps 64 levels a channel (0 and 255 exact): invisible in a half-block picture, and it lets
# styles made for one frame serve the next (a redraw at 96x48 went from ~10 ms to ~5 ms, its p95 from ~50 to ~8).
LEVELS64 = ((np.arange(256) >> 2) * 255 // 63).astype(np.uint8)


def pack(rgb: np.ndarray, colors: str) -> np.ndarray:
    """One int per pixel naming its colour: 0xRRGGBB in true colour, the palette index in 256 colours."""
    if colors == "256":
        return xterm256(rgb).astype(np.int64)
    v = LEVELS64[rgb].astype(np.int64)
    return (v[..., 0] << 16) | (v[..., 1] << 8) | v[..., 2]


_COLORS: dict[tuple[int, bool], Color] = {}
_STYLES: dict[tuple[int, bool], Style] = {}
CACHE_LIMIT = 1 << 17


def color_of(code: int, palette: bool) -> Color:
    """A rich Color from a packed code, built directly (``Color.from_rgb`` is ten times slower)."""
    key = (code, palette)
    color = _COLORS.get(key)
    if color is None:
        if len(_COLORS) > CACHE_LIMIT:
            _COLORS.clear()
        if palette:
            color = Color.from_ansi(code)
        else:
            triplet = ColorTriplet(code >> 16, (code >> 8) & 255, code & 255)
            color = Color(f"#{code:06x}", ColorType.TRUECOLOR, triplet=triplet)
        _COLORS[key] = color
    return color


def style_for(key: int, palette: bool) -> Style:
    """The style of a half-block cell whose packed ``top << 24 | bottom`` colour key is ``key``."""
    style = _STYLES.get((key, palette))
    if style is None:
        if len(_STYLES) > CACHE_LIMIT:
            _STYLES.clear()
        top, bottom = color_of(key >> 24, palette), color_of(key & 0xFFFFFF, palette)
        style = _STYLES[(key, palette)] = Style.from_color(top, bottom)
    return style


def background_style(paint: Paint) -> Style:
    r, g, b = paint.background
    if paint.colors == "256":
        code = int(xterm256(np.array([[r, g, b]], dtype=np.uint8))[0])
        return Style(bgcolor=Color.from_ansi(code))
    return Style(bgcolor=Color.from_rgb(r, g, b))


def half_block_strips(rgb: np.ndarray, paint: Paint, width: int, height: int) -> list[Strip]:
    """Cut [2R, C, 3] pixels into ``height`` strips of ``width`` cells, centred, on the explicit background.

    Runs of equal cells become one segment; the styles of the distinct cells are looked up once.
    """
    palette = paint.colors == "256"
    codes = pack(rgb, paint.colors)
    rows, cols = codes.shape[0] // 2, codes.shape[1]
    keys = (codes[0 : 2 * rows : 2] << 24) | codes[1 : 2 * rows : 2]
    distinct, which = np.unique(keys, return_inverse=True)
    which = which.reshape(keys.shape)
    styles = [style_for(k, palette) for k in distinct.tolist()]
    bg = background_style(paint)
    left = max(0, (width - cols) // 2)
    right = max(0, width - cols - left)
    pad_left = [Segment(" " * left, bg)] if left else []
    pad_right = [Segment(" " * right, bg)] if right else []
    blocks = [HALF * n for n in range(cols + 1)]
    change = np.ones(keys.shape, dtype=bool)
    change[:, 1:] = keys[:, 1:] != keys[:, :-1]
    strips = []
    for y in range(min(rows, height)):
        starts = np.flatnonzero(change[y])
        lengths = np.diff(np.append(starts, cols)).tolist()
        segments = [*pad_left]
        segments += [Segment(blocks[n], styles[i]) for n, i in zip(lengths, which[y, starts].tolist(), strict=True)]
        segments += pad_right
        strips.append(Strip(segments, left + cols + right))
    blank = Strip([Segment(" " * width, bg)], width)
    strips.extend([blank] * max(0, height - rows))
    return strips


def picture_strips(
    film: np.ndarray | None,
    grid: np.ndarray,
    paint: Paint,
    width: int,
    height: int,
    masks: dict[str, np.ndarray] | None = None,
    boxes: tuple[Fractions, ...] = (),
) -> list[Strip]:
    """The whole picture for a ``width`` x ``height`` cell area."""
    if width < 2 or height < 1:
        return [Strip.blank(max(width, 0))] * max(height, 0)
    side = fit(width, height)
    return half_block_strips(compose(film, grid, paint, side, masks, boxes), paint, width, height)


def colorbar_segments(colormap: str, width: int, colors: str) -> list[Segment]:
    """A horizontal colour bar ``width`` cells wide, low to high, with explicit colours."""
    if width <= 0:
        return []
    rgb = get_colormap(colormap)(np.linspace(0.0, 1.0, width))[None, :, :]
    codes = pack(rgb, colors)[0]
    palette = colors == "256"
    return [Segment(" ", Style.from_color(bgcolor=color_of(int(c), palette))) for c in codes]
