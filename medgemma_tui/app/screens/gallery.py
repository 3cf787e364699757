"""Every layer x head of the current query token as a small map, sortable, to find the heads that localise."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from medgemma_tui.analysis.heads import head_metrics
from medgemma_tui.analysis.views import head_summaries, normalise
from medgemma_tui.app.bindings import GALLERY_BINDINGS
from medgemma_tui.app.frame import Frame
from medgemma_tui.app.state import token_text
from medgemma_tui.app.widgets.tiles import Tile, TileGrid

SORTS = (
    ("layer", "layer, then head", None),
    ("image share", "image share, highest first", "image_share"),
    ("entropy", "entropy, most focused first", "entropy"),
    ("focus", "focus (max cell), highest first", "focus"),
    ("localises", "mass-in-box lift on this row's box, highest first (pointing hits first)", "mass_in_box_lift"),
)


def head_tiles(frame: Frame, sort: int) -> list[Tile]:
    """One tile per (layer, head): the row's image attention renormalised over the image tokens."""
    record = frame.record
    row = frame.spec.rows if isinstance(frame.spec.rows, int) else None
    rows = row if row is not None else frame.spec.rows
    sums = head_summaries(record, rows)
    maps = record.image_attn[row] if row is not None else record.image_attn[record.answer_rows].mean(axis=0)
    order = [(layer, head) for layer in range(record.num_layers) for head in range(record.num_heads)]
    _, _, metric = SORTS[sort]
    box = frame.analysis.box_grid
    if metric == "mass_in_box_lift" and box is not None:
        scores = head_metrics(maps, tuple(record.grid), box, frame.analysis.pointing_cells)
        hit, lift = np.nan_to_num(scores["pointing_hit"]), np.nan_to_num(scores["mass_in_box_lift"])
        order.sort(key=lambda lh: (-float(hit[lh]), -float(lift[lh])))
    elif metric == "mass_in_box_lift":
        pass  # no box on this row: layer order
    elif metric is not None:
        values = sums[metric]
        sign = 1.0 if metric == "entropy" else -1.0
        order.sort(key=lambda lh: sign * float(values[lh]))
    tiles = []
    for layer, head in order:
        grid = normalise(maps[layer, head]).reshape(record.grid)
        share = float(sums["image_share"][layer, head])
        note = f"img {share:.2f} H {float(sums['entropy'][layer, head]):.1f}"
        tiles.append(Tile(key=(layer, head), label=f"L{layer} h{head}", grid=grid, note=note, film=record.xray))
    return tiles


class GalleryScreen(Screen):
    BINDINGS = GALLERY_BINDINGS

    def __init__(self, frame: Frame, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame = frame
        self.sort = 0
        self._tiles_cache: dict[int, list[Tile]] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="gallery-title")
        yield TileGrid(side=16, id="gallery")
        yield Footer()

    def on_mount(self) -> None:
        self.fill()
        grid = self.query_one(TileGrid)
        state = self.frame.state
        if state.layer is not None and state.head_mode == "head":
            keys = [t.key for t in grid.tiles]
            grid.selected = keys.index((state.layer, state.head))
        grid.focus()

    def fill(self) -> None:
        record = self.frame.record
        tiles = self._tiles_cache.get(self.sort)
        if tiles is None:
            tiles = self._tiles_cache[self.sort] = head_tiles(self.frame, self.sort)
        limit = record.num_heads if self.sort == 0 else None
        self.query_one(TileGrid).set_tiles(tiles, self.app.tile_paint(), per_row_limit=limit)
        row = self.frame.spec.rows
        token = token_text(record, row) if isinstance(row, int) else str(row)
        title = Text()
        title.append("Head gallery ", style="bold")
        title.append(f"token {token!r} · {record.num_layers} layers x {record.num_heads} heads · ")
        title.append(f"sorted by {SORTS[self.sort][1]}", style="bold")
        title.append(" · each tile over its own range · s sort · enter show · esc back", style="dim")
        self.query_one("#gallery-title", Static).update(title)

    def action_sort(self) -> None:
        self.sort = (self.sort + 1) % len(SORTS)
        self.query_one(TileGrid).selected = 0
        self.fill()

    def action_choose(self) -> None:
        grid = self.query_one(TileGrid)
        if grid.selected is None or not grid.tiles:
            return
        layer, head = grid.tiles[grid.selected].key
        self.dismiss((int(layer), int(head)))

    def action_close(self) -> None:
        self.dismiss(None)

