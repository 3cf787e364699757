"""Every layer x head of the current query token as a small map, sortable, to find the heads that localise.

Two orders answer "which heads localise": this row's own box (``localises``), and the dataset's heads
table (``dataset``): the pointing game and mass-in-box lift of each head over the dataset's boxed rows
with their bootstrap intervals, from the tree's ``analysis/heads.csv`` (written by ``eval --heads``)
when a tree is open, else from the boxed rows run in this session (after ``x``, run all). ``d``
switches between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from medgemma_tui.analysis.heads import head_metrics
from medgemma_tui.analysis.views import head_summaries, normalise
from medgemma_tui.app.bindings import back_key
from medgemma_tui.app.frame import Frame
from medgemma_tui.app.state import token_text
from medgemma_tui.app.widgets.tiles import Tile, TileGrid

SORTS = (
    ("layer", "layer, then head", None),
    ("image share", "image share, highest first", "image_share"),
    ("entropy", "entropy, most focused first", "entropy"),
    ("focus", "focus (max cell), highest first", "focus"),
    ("localises", "mass-in-box lift on this row's box, highest first (pointing hits first)", "mass_in_box_lift"),
    ("dataset", "pointing game over the dataset's boxed rows, then lift", "dataset"),
)
ROW_SORT = 4  # index of "localises"
DATASET_SORT = 5  # index of "dataset"


@dataclass(frozen=True)
class DatasetHeads:
    """The dataset's heads table as [L, H] grids (``export.method_tables.HEAD_TABLE_COLUMNS``)."""

    grids: dict[str, np.ndarray]
    rows: int  # boxed rows scored
    source: str  # where the table came from, for the title

    def order(self) -> list[tuple[int, int]]:
        """(layer, head), rank 1 first."""
        rank = self.grids["rank"]  # [L, H], 1 = best; no NaN (``head_table_grids`` refuses those)
        return [(int(i) // rank.shape[1], int(i) % rank.shape[1]) for i in np.argsort(rank.ravel(), kind="stable")]

    def describe(self, layer: int, head: int) -> str:
        g = self.grids
        return (f"L{layer} h{head} pointing {g['pointing_game'][layer, head]:.2f} "
                f"[{g['pointing_game_low'][layer, head]:.2f}, {g['pointing_game_high'][layer, head]:.2f}], "
                f"lift {g['mass_in_box_lift'][layer, head]:.1f} "
                f"[{g['mass_in_box_lift_low'][layer, head]:.1f}, {g['mass_in_box_lift_high'][layer, head]:.1f}]")


def dataset_heads(session, shape: tuple[int, int]) -> DatasetHeads | None:
    """The dataset's heads table for heads of ``shape`` (layers, heads), or None when there is none at hand.

    A tree's ``analysis/heads.csv`` first (every boxed row of the run, scored at the row its map view
    reads); else the boxed rows finished in this session (``Summary.heads``), with intervals by study.
    """
    from medgemma_tui.export.method_tables import head_table_grids, heads_table, read_head_table

    if session is None:
        return None
    reader = getattr(session, "tree", None)
    if reader is not None:
        grids = read_head_table(reader.paths.analysis_dir / "heads.csv", shape)
        if grids is not None:
            return DatasetHeads(grids, int(np.nanmax(grids["rows"])), "analysis/heads.csv")
    studies, pointing, lift = [], [], []
    for item in session.items:
        entry = session.entries.get(item.key)
        scores = None if entry is None or entry.summary is None else entry.summary.heads
        if scores is None or scores["pointing_hit"].shape != shape:
            continue
        studies.append(item.study or item.key)
        pointing.append(scores["pointing_hit"])
        lift.append(scores["mass_in_box_lift"])
    if not studies:
        return None
    table = heads_table(studies, np.asarray(pointing, dtype=np.float64), np.asarray(lift, dtype=np.float64))
    grids = head_table_grids(table, shape)
    return None if grids is None else DatasetHeads(grids, len(studies), "the rows run here")


def _short(value: float, digits: int) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.{digits}f}"


def head_tiles(frame: Frame, sort: int, heads: DatasetHeads | None = None) -> list[Tile]:
    """One tile per (layer, head): the row's image attention renormalised over the image tokens."""
    record = frame.record
    row = frame.spec.rows if isinstance(frame.spec.rows, int) else None
    rows = row if row is not None else frame.spec.rows
    sums = head_summaries(record, rows)
    maps = record.image_attn[row] if row is not None else record.image_attn[record.content_answer_rows].mean(axis=0)
    order = [(layer, head) for layer in range(record.num_layers) for head in range(record.num_heads)]
    _, _, metric = SORTS[sort]
    box = frame.analysis.box_grid
    if metric == "dataset":
        if heads is not None:
            order = heads.order()
    elif metric == "mass_in_box_lift" and box is not None:
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
        if metric == "dataset" and heads is not None:
            pointing, lift = (float(heads.grids[c][layer, head]) for c in ("pointing_game", "mass_in_box_lift"))
            note = f"pg {_short(pointing, 2)} lift {_short(lift, 0 if lift >= 10 else 1)}"
        else:
            note = f"img {share:.2f} H {float(sums['entropy'][layer, head]):.1f}"
        tiles.append(Tile(key=(layer, head), label=f"L{layer} h{head}", grid=grid, note=note, film=record.xray))
    return tiles


class GalleryScreen(Screen):
    BINDINGS = [
        back_key("gallery_close"),
        Binding("s", "sort", "Sort", id="gallery_sort"),
        Binding("d", "dataset_sort", "Dataset/row",
                tooltip="Sort by how the heads localise over the dataset (the tree's analysis/heads.csv, or the boxed "
                        "rows run here), or back to this row's box", id="gallery_dataset"),
        Binding("enter", "choose", "Show head", id="gallery_choose"),
    ]

    def __init__(self, frame: Frame, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame = frame
        self.sort = 0
        self._tiles_cache: dict[int, list[Tile]] = {}
        self._heads: DatasetHeads | None = None
        self._heads_read = False

    @property
    def heads(self) -> DatasetHeads | None:
        """The dataset's heads table, read once per screen (the tree's file, or the session's rows)."""
        if not self._heads_read:
            record = self.frame.record
            self._heads = dataset_heads(getattr(self.app, "session", None), (record.num_layers, record.num_heads))
            self._heads_read = True
        return self._heads

    @classmethod
    def open(cls, app) -> None:
        """``G``: every layer x head of the row shown; enter shows the chosen head in the inspector."""
        frame = app.current_frame(say=True)
        if frame is not None:
            app.push_screen(cls(frame), lambda chosen: chosen is not None and app.set_state(
                app.state.with_(layer=chosen[0], head_mode="head", head=chosen[1])))

    def compose(self) -> ComposeResult:
        yield Static("", id="gallery-title")
        yield TileGrid(side=16, grow=True, id="gallery")
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
            heads = self.heads if self.sort == DATASET_SORT else None
            tiles = self._tiles_cache[self.sort] = head_tiles(self.frame, self.sort, heads)
        limit = record.num_heads if self.sort == 0 else None
        self.query_one(TileGrid).set_tiles(tiles, self.app.tile_paint(), per_row_limit=limit)
        row = self.frame.spec.rows
        token = token_text(record, row) if isinstance(row, int) else str(row)
        title = Text()
        title.append("Head gallery ", style="bold")
        title.append(f"token {token!r} · {record.num_layers} layers x {record.num_heads} heads · ")
        if self.sort == DATASET_SORT and self.heads is not None:
            heads = self.heads
            title.append(f"sorted by pointing game over {heads.rows} boxed rows ({heads.source}), then lift",
                         style="bold")
            best = heads.order()[:2]
            title.append(" · best: " + "; ".join(heads.describe(layer, head) for layer, head in best))
        else:
            title.append(f"sorted by {SORTS[self.sort][1]}", style="bold")
        title.append(" · each tile over its own range · s sort · d dataset/row · enter show · esc back", style="dim")
        self.query_one("#gallery-title", Static).update(title)

    def _resort(self, sort: int) -> None:
        self.sort = sort
        self.query_one(TileGrid).selected = 0
        self.fill()

    def action_sort(self) -> None:
        sort = (self.sort + 1) % len(SORTS)
        if sort == DATASET_SORT and self.heads is None:
            sort = (sort + 1) % len(SORTS)
        self._resort(sort)

    def action_dataset_sort(self) -> None:
        """The dataset's order, or from it back to this row's box."""
        if self.sort == DATASET_SORT:
            self._resort(ROW_SORT)
        elif self.heads is None:
            self.notify("No dataset heads table yet: open a tree written with `eval --heads`, or run all (x) "
                        "on rows with boxes.", timeout=4)
        else:
            self._resort(DATASET_SORT)

    def action_choose(self) -> None:
        grid = self.query_one(TileGrid)
        if grid.selected is None or not grid.tiles:
            return
        layer, head = grid.tiles[grid.selected].key
        self.dismiss((int(layer), int(head)))

    def action_close(self) -> None:
        self.dismiss(None)
