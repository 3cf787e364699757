"""A scrolling grid of small maps (Line API): the head gallery and the variants side by side."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from medgemma_tui.app.bindings import TILE_BINDINGS
from medgemma_tui.app.picture import Paint, background_style, picture_strips

ALERT = Style(bold=True, color="red")


@dataclass(frozen=True)
class Tile:
    key: object  # what choosing the tile means to the screen, e.g. (layer, head)
    label: str
    grid: np.ndarray | None  # None: nothing to draw yet (e.g. a variant not run)
    note: str = ""
    film: np.ndarray | None = None
    alert: str = ""  # drawn in bold red at the end of the note line, e.g. an answer flip


LARGEST_SIDE = 40  # columns: past this a tile is as large as the inspector's own picture


def tile_size(side: int) -> tuple[int, int]:
    """Columns and rows one tile takes: the picture (side columns, side/2 rows), two label rows, gaps."""
    return side + 2, side // 2 + 3


def fitted_side(count: int, width: int, height: int, limit: int | None = None, smallest: int = 16,
                largest: int = LARGEST_SIDE) -> int:
    """The tile side that uses the space: the largest even side from ``smallest`` to ``largest`` at which
    all ``count`` tiles are in view (``limit``: at most that many per row); where even the smallest cannot
    show them all, the side that fills the width with as many tiles per row as the smallest gives."""
    def per_row(side: int) -> int:
        fits = max(1, width // tile_size(side)[0])
        return min(fits, limit) if limit else fits

    for side in range(largest - largest % 2, smallest - 1, -2):
        if -(-count // per_row(side)) * tile_size(side)[1] <= height:
            return side
    filled = width // per_row(smallest) - 2
    return max(smallest, min(largest, filled - filled % 2))


class TileGrid(ScrollView, can_focus=True):
    BINDINGS = TILE_BINDINGS
    DEFAULT_CSS = "TileGrid { height: 1fr; width: 1fr; }"

    def __init__(self, side: int = 16, grow: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.side = side  # pixels: a tile is side columns by side/2 rows, plus two label rows
        self.grow = grow  # the side follows the space (fitted_side), ``side`` the smallest it takes
        self.smallest = side
        self.tiles: list[Tile] = []
        self.per_row_limit: int | None = None
        self.selected: int | None = 0
        self.paint = Paint(overlay="map")
        self._cache: LRUCache[tuple, list[Strip]] = LRUCache(1024)

    # ---- geometry ---------------------------------------------------------------------------------
    @property
    def tile_width(self) -> int:
        return tile_size(self.side)[0]

    @property
    def tile_height(self) -> int:
        return tile_size(self.side)[1]

    @property
    def per_row(self) -> int:
        fits = max(1, self.size.width // self.tile_width)
        return min(fits, self.per_row_limit) if self.per_row_limit else fits

    def set_tiles(self, tiles: list[Tile], paint: Paint, per_row_limit: int | None = None) -> None:
        self.tiles, self.paint, self.per_row_limit = tiles, paint, per_row_limit
        if self.selected is not None:
            self.selected = min(self.selected, max(0, len(tiles) - 1))
        self._update_virtual_size()
        self.refresh()

    def _update_virtual_size(self) -> None:
        if self.grow and self.size.width and self.size.height and self.tiles:
            self.side = fitted_side(len(self.tiles), self.size.width, self.size.height, self.per_row_limit,
                                    self.smallest)
        rows = -(-len(self.tiles) // self.per_row) if self.tiles else 0
        self.virtual_size = Size(self.size.width, rows * self.tile_height)

    def on_resize(self) -> None:
        self._update_virtual_size()
        self.refresh()

    def action_move(self, dx: int, dy: int) -> None:
        self.move(dx, dy)

    def move(self, dx: int, dy: int) -> None:
        if not self.tiles or self.selected is None:
            return
        index = self.selected + dx + dy * self.per_row
        self.selected = int(np.clip(index, 0, len(self.tiles) - 1))
        row = self.selected // self.per_row
        self.scroll_to_region_rows(row * self.tile_height, self.tile_height)
        self.refresh()

    def scroll_to_region_rows(self, top: int, height: int) -> None:
        y = self.scroll_offset.y
        if top < y:
            self.scroll_to(y=top, animate=False)
        elif top + height > y + self.size.height:
            self.scroll_to(y=top + height - self.size.height, animate=False)

    # ---- drawing ----------------------------------------------------------------------------------
    def _picture(self, tile: Tile) -> list[Strip]:
        key = (id(tile.grid), id(tile.film), self.paint, self.side)
        strips = self._cache.get(key)
        if strips is None:
            strips = picture_strips(tile.film, tile.grid, self.paint, self.side, self.side // 2)
            self._cache[key] = strips
        return strips

    def _note(self, tile: Tile, base: Style) -> list[Segment]:
        """The note line: the note, then the alert (if any) in bold red, cut to the tile's width."""
        alert = tile.alert[: self.side]
        if not alert:
            return [Segment(tile.note[: self.side].ljust(self.side), base)]
        room = self.side - len(alert)
        note = tile.note[: max(0, room - 1)]
        note = f"{note} " if note else note
        return [Segment(note, base), Segment(alert, base + ALERT), Segment(" " * (room - len(note)), base)]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        bg = background_style(self.paint)
        line = y + self.scroll_offset.y
        row, inner = divmod(line, self.tile_height)
        per_row = self.per_row
        first = row * per_row
        segments: list[Segment] = []
        base = self.rich_style
        for index in range(first, min(first + per_row, len(self.tiles))):
            tile = self.tiles[index]
            chosen = index == self.selected and self.has_focus
            if inner < self.side // 2:
                if tile.grid is None:
                    segments.append(Segment(" " * self.side, bg))
                else:
                    segments.extend(self._picture(tile)[inner])
            elif inner == self.side // 2:
                style = base + Style(reverse=True) if chosen else base
                segments.append(Segment(tile.label[: self.side].ljust(self.side), style))
            elif inner == self.side // 2 + 1:
                segments.extend(self._note(tile, base))
            else:
                segments.append(Segment(" " * self.side, base))
            segments.append(Segment("  ", base))
        return Strip(segments).extend_cell_length(width, base).crop(0, width)
