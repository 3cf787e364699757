"""The multi-panel figure of one sample drawn straight into pixels with Pillow: the PNG of every row.

Through matplotlib the figure costs about a second a row on a CPU (laying out and rasterising a
hundred artists, then encoding), while what it shows is five pictures and some text. Here each panel
is a numpy array put on a white canvas, and the text is set with Pillow's FreeType fonts (the DejaVu
faces matplotlib ships), from the same ``figures.SampleContent`` and on the same 2 x 3 grid as
``figures.full_figure``, which still draws the vector formats (PDF, SVG).

Geometry follows matplotlib's: the figure is ``SHEET_INCHES`` at the raster dpi, text sizes are in
points (1/72 inch), and each picture keeps its aspect, centred in its grid cell (``imshow``'s equal
aspect with the axes anchored at the centre).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from medgemma_tui.colormaps import get_colormap
from medgemma_tui.export import figures
from medgemma_tui.export.atomic import atomic_file

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
DIM = (77, 77, 77)  # matplotlib's "0.3" gray
TEXT_PT = {"title": 14, "header": 11.5, "verdict": 10.5, "map": 9, "panel": 11, "label": 8.5, "tick": 8,
           "bar_tick": 7.5, "legend": 8, "side": 11, "metrics": 8.6}
BOX_LINE_PT = 1.6
BODY_LINE_PT = 1.4
BAR_FRACTION = 0.046  # colour bar width, and the gap before it, as fractions of the panel's width
BAR_PAD = 0.03


@dataclass(frozen=True)
class Box:
    """A rectangle of the canvas in pixels, y down: [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def centre_x(self) -> float:
        return (self.x0 + self.x1) / 2

    def fit(self, aspect: float) -> Box:
        """The largest box of ``aspect`` (width / height) centred inside this one."""
        width, height = self.width, self.height
        if width / height > aspect:
            width = max(1, round(height * aspect))
        else:
            height = max(1, round(width / aspect))
        x0 = self.x0 + (self.width - width) // 2
        y0 = self.y0 + (self.height - height) // 2
        return Box(x0, y0, x0 + width, y0 + height)


def sheet_size(dpi: float) -> tuple[int, int]:
    inches_w, inches_h = figures.SHEET_INCHES
    return round(inches_w * dpi), round(inches_h * dpi)


def panel_boxes(size: tuple[int, int], rows: int = 2, cols: int = 3) -> list[list[Box]]:
    """The grid cells of ``figures.SHEET_GRID`` in pixels (matplotlib's gridspec arithmetic: ``wspace``
    and ``hspace`` are fractions of the mean cell width and height)."""
    width, height = size
    grid = figures.SHEET_GRID
    left, right = grid["left"] * width, grid["right"] * width
    top, bottom = (1 - grid["top"]) * height, (1 - grid["bottom"]) * height
    cell_w = (right - left) / (cols + grid["wspace"] * (cols - 1))
    cell_h = (bottom - top) / (rows + grid["hspace"] * (rows - 1))
    return [[Box(round(left + c * cell_w * (1 + grid["wspace"])), round(top + r * cell_h * (1 + grid["hspace"])),
                 round(left + c * cell_w * (1 + grid["wspace"]) + cell_w),
                 round(top + r * cell_h * (1 + grid["hspace"]) + cell_h))
             for c in range(cols)] for r in range(rows)]


@cache
def font(kind: str, size_px: int) -> ImageFont.FreeTypeFont:
    """A DejaVu face from matplotlib's data folder (``matplotlib.get_data_path``), at ``size_px``."""
    import matplotlib

    name = {"sans": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf"}[kind]
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size_px)


class Sheet:
    """A white canvas with the few drawing operations the figure needs, sizes given in points."""

    def __init__(self, size: tuple[int, int], dpi: float) -> None:
        self.image = Image.new("RGB", size, WHITE)
        self.draw = ImageDraw.Draw(self.image)
        self.dpi = dpi

    def px(self, points: float) -> int:
        return max(1, round(points * self.dpi / 72))

    def font(self, role: str, kind: str = "sans") -> ImageFont.FreeTypeFont:
        return font(kind, self.px(TEXT_PT[role]))

    def text(self, xy: tuple[float, float], text: str, role: str, fill=BLACK, anchor: str = "la",
             kind: str = "sans") -> None:
        self.draw.text(xy, text, font=self.font(role, kind), fill=fill, anchor=anchor)

    def vertical_text(self, xy: tuple[float, float], text: str, role: str, fill=BLACK) -> None:
        """Text turned a quarter to the left (reading upwards), centred on ``xy``."""
        face = self.font(role)
        left, top, right, bottom = face.getbbox(text)
        label = Image.new("L", (right - left + 2, bottom - top + 2), 0)
        ImageDraw.Draw(label).text((1 - left, 1 - top), text, font=face, fill=255)
        label = label.rotate(90, expand=True)
        x0, y0 = round(xy[0] - label.width / 2), round(xy[1] - label.height / 2)
        self.image.paste(Image.new("RGB", label.size, fill), (x0, y0), label)

    def picture(self, box: Box, pixels: np.ndarray) -> None:
        """An RGB array already of the box's size."""
        self.image.paste(Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)), (box.x0, box.y0))

    def frame(self, box: Box, fill=BLACK) -> None:
        self.draw.rectangle((box.x0 - 1, box.y0 - 1, box.x1, box.y1), outline=fill, width=1)

    def boxes(self, box: Box, boxes: Sequence[Sequence[float]], sx: float, sy: float) -> None:
        """Ground-truth boxes [x, y, w, h] in film (or grid) units, scaled by sx, sy into ``box``."""
        line = self.px(BOX_LINE_PT)
        for x, y, w, h in boxes:
            x0, y0 = box.x0 + x * sx, box.y0 + y * sy
            self.draw.rectangle((x0, y0, x0 + max(w * sx, 1), y0 + max(h * sy, 1)), outline=figures.BOX_COLOR,
                                width=line)

    def sides(self, box: Box) -> None:
        """R and L in the upper corners, white on a dark square, as on a film."""
        face = self.font("side", "bold")
        pad = self.px(2)
        for letter, x, anchor in (("R", box.x0 + 0.02 * box.width, "la"), ("L", box.x1 - 0.02 * box.width, "ra")):
            y = box.y0 + 0.02 * box.height
            left, top, right, bottom = (round(v) for v in self.draw.textbbox((x, y), letter, font=face,
                                                                              anchor=anchor))
            shade = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), BLACK)
            region = (left - pad, top - pad)
            under = self.image.crop((*region, region[0] + shade.width, region[1] + shade.height))
            self.image.paste(Image.blend(under, shade, 0.6), region)
            self.draw.text((x, y), letter, font=face, fill=WHITE, anchor=anchor)


def gray_film(pixels: np.ndarray, box: Box) -> np.ndarray:
    """The film resized to the panel's pixels, as uint8 gray [h, w]."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=-1)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return np.asarray(image.resize((box.width, box.height), Image.Resampling.BILINEAR, reducing_gap=2.0))


def grid_top(grid: np.ndarray) -> float:
    """The map's largest finite value (0 for a map with none): where the colour scale ends."""
    return float(np.nanmax(grid)) if np.isfinite(grid).any() else 0.0


def mask_at(mask: np.ndarray, box: Box) -> np.ndarray:
    image = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255)
    return np.asarray(image.resize((box.width, box.height), Image.Resampling.NEAREST)) > 127


def rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def tinted_masks(gray: np.ndarray, masks, box: Box, line_px: int) -> np.ndarray:
    """The lungs tinted (``MASK_TINT_ALPHA`` of their colour) and the body outlined, over the gray film."""
    out = np.repeat(gray.astype(np.float64)[..., None], 3, axis=-1)
    alpha = figures.MASK_TINT_ALPHA
    for mask, colour in ((masks.lung_right, figures.LUNG_RIGHT_COLOR), (masks.lung_left, figures.LUNG_LEFT_COLOR)):
        inside = mask_at(mask, box)
        out[inside] = (1 - alpha) * out[inside] + alpha * rgb(colour)
    body = Image.fromarray(mask_at(masks.body, box).astype(np.uint8) * 255)
    size = 2 * max(1, line_px // 2) + 1  # odd, as the rank filters need
    edge = (np.asarray(body.filter(ImageFilter.MaxFilter(size))) > 127) & ~(
        np.asarray(body.filter(ImageFilter.MinFilter(size))) > 127)
    out[edge] = rgb(figures.BODY_COLOR)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def cells(grid: np.ndarray, box: Box, colormap: str) -> np.ndarray:
    """The map as flat cells, coloured from 0 to its maximum (``imshow`` with ``vmin=0``)."""
    top = grid_top(grid)
    scaled = grid / top if top > 0 else np.zeros_like(grid)
    colours = get_colormap(colormap)(np.nan_to_num(scaled))  # [R, C, 3] uint8
    image = Image.fromarray(colours)
    return np.asarray(image.resize((box.width, box.height), Image.Resampling.NEAREST))


def bar_ticks(top: float) -> list[float]:
    """Round tick values from 0 to ``top`` (matplotlib's ``MaxNLocator``, as its colour bars use)."""
    from matplotlib.ticker import MaxNLocator

    if not top > 0:
        return [0.0]
    return [float(t) for t in MaxNLocator(nbins=8).tick_values(0.0, top) if -1e-12 <= t <= top * (1 + 1e-9)]


def tick_text(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 3
    mantissa = step / 10 ** math.floor(math.log10(step)) if step > 0 else 1
    if not math.isclose(mantissa, round(mantissa)):
        decimals += 1  # a step of 2.5 x 10^k needs one more digit
    return f"{value:.{decimals}f}"


def grid_panel(sheet: Sheet, cell: Box, grid: np.ndarray, colormap: str, title: str, label: str,
               boxes: Sequence[Sequence[float]] = (), film_size: tuple[int, int] | None = None) -> Box:
    """A map with its cell indices and colour bar, row 0 at the top; returns the box of the cells."""
    rows, cols = grid.shape
    bar_w = max(4, round(BAR_FRACTION * cell.width * 0.6))
    gutter = sheet.px(TEXT_PT["tick"]) * 3  # the row numbers and the rotated label on the left
    room = Box(cell.x0 + gutter, cell.y0, cell.x1 - round((BAR_FRACTION + BAR_PAD) * cell.width) - bar_w,
               cell.y1)
    box = room.fit(cols / rows)
    sheet.picture(box, cells(grid, box, colormap))
    sheet.frame(box)
    if boxes and film_size:
        sheet.boxes(box, boxes, box.width / film_size[0], box.height / film_size[1])
    step = max(1, cols // 4)
    tick_len = sheet.px(3.5)
    for i in range(0, cols, step):
        x = box.x0 + (i + 0.5) * box.width / cols
        sheet.draw.line((x, box.y1, x, box.y1 + tick_len), fill=BLACK)
        sheet.text((x, box.y1 + tick_len + 1), str(i), "tick", anchor="mt")
    for i in range(0, rows, step):
        y = box.y0 + (i + 0.5) * box.height / rows
        sheet.draw.line((box.x0 - tick_len, y, box.x0, y), fill=BLACK)
        sheet.text((box.x0 - tick_len - 2, y), str(i), "tick", anchor="rm")
    sheet.text((box.centre_x, box.y0 - sheet.px(6)), title, "panel", anchor="ms")
    below = box.y1 + tick_len + sheet.px(TEXT_PT["tick"]) + sheet.px(4)
    sheet.text((box.centre_x, below), f"grid column   ({figures.ORIENTATION})", "label", anchor="mt")
    sheet.vertical_text((box.x0 - tick_len - sheet.px(TEXT_PT["tick"]) * 1.6, (box.y0 + box.y1) / 2),
                        "grid row (0 = top)", "label")
    colour_bar(sheet, Box(box.x1 + round(BAR_PAD * cell.width), box.y0,
                          box.x1 + round(BAR_PAD * cell.width) + bar_w, box.y1), grid, colormap, label)
    return box


def colour_bar(sheet: Sheet, bar: Box, grid: np.ndarray, colormap: str, label: str) -> None:
    top = grid_top(grid)
    ramp = np.linspace(1.0, 0.0, bar.height)[:, None].repeat(bar.width, axis=1)
    sheet.picture(bar, get_colormap(colormap)(ramp))
    sheet.frame(bar)
    ticks = bar_ticks(top)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    tick_len = sheet.px(2.5)
    widest = 0
    for value in ticks:
        y = bar.y1 - (value / top if top > 0 else 0.0) * bar.height
        sheet.draw.line((bar.x1, y, bar.x1 + tick_len, y), fill=BLACK)
        text = tick_text(value, step)
        widest = max(widest, sheet.font("bar_tick").getbbox(text)[2])
        sheet.text((bar.x1 + tick_len + 2, y), text, "bar_tick", anchor="lm")
    sheet.vertical_text((bar.x1 + tick_len + widest + sheet.px(9), (bar.y0 + bar.y1) / 2), label, "label")


def film_panel(sheet: Sheet, cell: Box, film_size: tuple[int, int], title: str) -> Box:
    """The box a film picture takes in ``cell`` (its aspect kept), with the title and the side note."""
    width, height = film_size
    label_room = sheet.px(TEXT_PT["label"]) + sheet.px(6)
    box = Box(cell.x0, cell.y0, cell.x1, cell.y1 - label_room).fit(width / height)
    sheet.text((box.centre_x, box.y0 - sheet.px(6)), title, "panel", anchor="ms")
    sheet.text((box.centre_x, box.y1 + sheet.px(4)), figures.ORIENTATION, "label", anchor="mt")
    return box


def legend(sheet: Sheet, box: Box) -> None:
    """body / right lung / left lung, in a pale box at the bottom of the masks panel."""
    face = sheet.font("legend")
    swatch = sheet.px(TEXT_PT["legend"])
    entries = (("body", None, figures.BODY_COLOR), ("right lung", figures.LUNG_RIGHT_COLOR, None),
               ("left lung", figures.LUNG_LEFT_COLOR, None))
    gap = sheet.px(6)
    widths = [swatch + gap // 2 + face.getbbox(name)[2] for name, _, _ in entries]
    total = sum(widths) + gap * (len(entries) + 1)
    height = swatch + 2 * gap
    x0 = round(box.centre_x - total / 2)
    y0 = box.y1 - height - sheet.px(4)
    region = (x0, y0, x0 + total, y0 + height)
    under = sheet.image.crop(region)
    sheet.image.paste(Image.blend(under, Image.new("RGB", under.size, WHITE), 0.85), region[:2])
    x = x0 + gap
    for (name, fill, outline), width in zip(entries, widths, strict=True):
        square = (x, y0 + gap, x + swatch, y0 + gap + swatch)
        sheet.draw.rectangle(square, fill=fill, outline=outline, width=max(1, sheet.px(1.2)) if outline else 0)
        sheet.draw.text((x + swatch + gap // 2, y0 + gap + swatch / 2), name, font=face, fill=BLACK, anchor="lm")
        x += width + gap


def sample_sheet(pixels: np.ndarray, content: figures.SampleContent, dpi: float) -> Image.Image:
    """The whole figure of one sample as an RGB image of ``SHEET_INCHES`` at ``dpi``."""
    size = sheet_size(dpi)
    sheet = Sheet(size, dpi)
    height, width = np.asarray(pixels).shape[:2]
    panels = panel_boxes(size)
    films: dict[tuple[int, int], np.ndarray] = {}

    def film_in(box: Box) -> np.ndarray:
        """The gray film at ``box``'s size, resized once: the three film panels are the same size."""
        if (box.width, box.height) not in films:
            films[box.width, box.height] = gray_film(pixels, box)
        return films[box.width, box.height]

    # header: question, answer, verdict, how the map was made (the figure fractions of full_figure)
    x = 0.04 * size[0]
    for y, text, role, fill, kind in ((0.975, content.title, "title", BLACK, "bold"),
                                      (0.94, content.question, "header", BLACK, "sans"),
                                      (0.91, content.answer, "header", BLACK, "sans"),
                                      (0.88, content.verdict, "verdict", figures.ACCENT, "sans"),
                                      (0.855, content.map_line, "map", DIM, "sans")):
        sheet.text((x, (1 - y) * size[1]), text, role, fill=fill, kind=kind)

    # (a) the film with its boxes
    box = film_panel(sheet, panels[0][0], (width, height), content.film_title)
    gray = film_in(box)
    sheet.picture(box, np.repeat(gray[..., None], 3, axis=-1))
    sheet.frame(box)
    sheet.boxes(box, content.boxes, box.width / width, box.height / height)
    sheet.sides(box)

    # (b) the raw grid
    grid_panel(sheet, panels[0][1], content.grid, content.colormap, content.grid_title, content.GRID_LABEL,
               content.boxes, (width, height))

    # (c) the masks
    box = film_panel(sheet, panels[0][2], (width, height), "anatomy masks")
    if content.masks is not None:
        sheet.picture(box, tinted_masks(film_in(box), content.masks, box, sheet.px(BODY_LINE_PT)))
        legend(sheet, box)
    else:
        sheet.picture(box, np.repeat(film_in(box)[..., None], 3, axis=-1))
        sheet.text((box.centre_x, (box.y0 + box.y1) / 2), "no masks", "label", fill=WHITE, anchor="mm")
    sheet.frame(box)
    sheet.sides(box)

    # (d) the map inside the lung fields
    if content.lung_grid is not None:
        grid_panel(sheet, panels[1][0], content.lung_grid, content.colormap, content.lung_title,
                   content.LUNG_LABEL)
    else:
        cell = panels[1][0]
        sheet.text((cell.centre_x, (cell.y0 + cell.y1) / 2), content.lung_title, "panel", anchor="mm")

    # (e) the overlay
    box = film_panel(sheet, panels[1][1], (width, height), content.overlay_title)
    sheet.picture(box, figures.overlay_image(film_in(box), content.grid, content.colormap, content.alpha))
    sheet.frame(box)
    sheet.boxes(box, content.boxes, box.width / width, box.height / height)
    sheet.sides(box)

    # (f) the metrics, two monospace columns
    cell = panels[1][2]
    sheet.text((cell.x0, cell.y0 - sheet.px(6)), content.METRICS_TITLE, "panel", anchor="ls")
    for offset, column in zip((0.0, 0.53), content.metric_columns, strict=True):
        sheet.draw.multiline_text((cell.x0 + offset * cell.width, cell.y0), "\n".join(column),
                                  font=sheet.font("metrics", "mono"), fill=BLACK, spacing=sheet.px(2))
    return sheet.image


def save_sample_sheet(path: Path, image: Image.Image, dpi: float) -> None:
    """An RGB PNG at Pillow's fast zlib level (as ``figures._write_png``), written atomically."""
    with atomic_file(Path(path)) as tmp:
        image.save(tmp, format="PNG", compress_level=1, dpi=(dpi, dpi))


def save_full_figure(path: Path, result, colormap: str = "magma", alpha: float = 0.45,
                     formats: str | Sequence[str] | None = None, dpi: float | None = None) -> Path:
    """``visualizations/{key}_full.png`` for one finished sample, and ``.pdf`` / ``.svg`` beside it when
    ``formats`` asks for them (those through matplotlib, as vectors); returns the first file written.

    Every format is there or none: a failure removes the files this call wrote.
    """
    formats = figures.check_formats(formats)
    dpi = figures.check_dpi(dpi)
    paths = figures.figure_paths(path, formats)
    pixels = result.film.pixels
    content = figures.sample_content(pixels, result.analysis, boxes=list(result.sample.bbox),
                                     ground_truth=result.sample.answer or None, title=result.sample.key,
                                     colormap=colormap, alpha=alpha)
    vectors = [fmt for fmt in formats if fmt != "png"]
    written: list[Path] = []
    try:
        for fmt, target in zip(formats, paths, strict=True):
            if fmt == "png":
                save_sample_sheet(target, sample_sheet(pixels, content, dpi), dpi)
                written.append(target)
        if vectors:
            figure = figures.full_figure(pixels, result.analysis, boxes=list(content.boxes),
                                         ground_truth=result.sample.answer or None, title=result.sample.key,
                                         colormap=colormap, alpha=alpha)
            base = paths[formats.index(vectors[0])]
            figures.save_figure(figure, base, vectors, dpi)
            written.extend(p for fmt, p in zip(formats, paths, strict=True) if fmt != "png")
    except BaseException:
        for target in written:
            target.unlink(missing_ok=True)
        raise
    return paths[0]
