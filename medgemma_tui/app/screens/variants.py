"""A hard-positive group side by side: each variant's map and answer, the pairwise JS matrix, consistency.

Every variant asks the same thing of the same film, so the answers should agree and the maps should
look alike. Maps are each variant's default map (the row that produced the first answer token, all
layers, head mean): rows and tokens differ between questions, so the inspector's layer/head/token
choice does not carry over. On a results tree (``medtui open``) the variants are already answered:
the screen reads the ones not yet in memory as it opens.

JS divergences between maps of one film are small (often under 1e-3 nats), so they are shown to two
significant figures rather than a fixed number of decimals.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from medgemma_tui.analysis.metrics import js_divergence
from medgemma_tui.app.bindings import back_key
from medgemma_tui.app.session import DONE, Session
from medgemma_tui.app.widgets.tiles import Tile, TileGrid


def variant_tiles(session: Session, keys: list[str]) -> list[Tile]:
    tiles = []
    for key in keys:
        item, entry = session.item(key), session.entries[key]
        summary = entry.summary if entry.status == DONE else None
        if summary is None:
            label = f"v{item.variant} {session.status_text(key)}"
            tiles.append(Tile(key=key, label=label, grid=None, note=item.strategy))
            continue
        mark = {True: " ✓", False: " ✗", None: ""}[summary.correct]
        tiles.append(Tile(key=key, label=f"v{item.variant} {summary.answer_label}{mark}",
                          grid=summary.grid, note=item.strategy or "original", film=summary.xray))
    return tiles


def js_text(value: float) -> str:
    """A JS divergence to two significant figures (``0.00012``, ``2.0e-05``): differences stay readable."""
    return "0" if value == 0 else f"{value:#.2g}"


def consistency_text(session: Session, keys: list[str]) -> Text:
    done = [k for k in keys if session.entries[k].status == DONE]
    text = Text()
    if not done:
        if session.is_tree:
            return Text("Reading the group from the results tree…", style="dim")
        return Text("No variant has run yet: press r to run the group.", style="dim")
    labels = [session.entries[k].summary.answer_label for k in done]
    majority, count = Counter(labels).most_common(1)[0]
    text.append(f"answers agree: {count}/{len(done)} say {majority!r}", style="bold")
    if len(done) < len(keys):
        missing = len(keys) - len(done)
        if session.is_tree:
            text.append(f"  ({missing} not read yet from the tree: r reads them)", style="dim")
        else:
            text.append(f"  ({missing} not run: r runs them)", style="dim")
    if len(done) > 1:
        grids = [session.entries[k].summary.grid for k in done]
        pairs = [js_divergence(grids[i], grids[j]) for i in range(len(done)) for j in range(i + 1, len(done))]
        text.append(f"\nmean pairwise JS divergence {js_text(sum(pairs) / len(pairs))} nats "
                    "(0 = same map, ln 2 = disjoint)")
    return text


def js_table(session: Session, keys: list[str]) -> Table:
    done = [k for k in keys if session.entries[k].status == DONE]
    table = Table(title="pairwise JS divergence (nats)", title_justify="left", box=None, pad_edge=False)
    table.add_column("")
    for k in done:
        table.add_column(f"v{session.item(k).variant}", justify="right")
    for a in done:
        cells = []
        for b in done:
            value = js_divergence(session.entries[a].summary.grid, session.entries[b].summary.grid)
            cells.append("·" if a == b else js_text(value))
        table.add_row(f"v{session.item(a).variant}", *cells)
    return table


def questions_table(session: Session, keys: list[str]) -> Table:
    table = Table(box=None, pad_edge=False, expand=True)
    for name in ("var", "strategy", "question", "answer", "truth"):
        table.add_column(name, overflow="fold")
    for key in keys:
        item, entry = session.item(key), session.entries[key]
        answer = entry.summary.answer_label if entry.status == DONE and entry.summary else entry.status
        table.add_row(str(item.variant), item.strategy or "original", item.question, answer, item.truth)
    return table


SMALL_TILE, LARGE_TILE = 16, 24  # a tile's side in columns: the larger from LARGE_TILE_ROWS rows of terminal up
LARGE_TILE_ROWS = 40


class VariantsScreen(Screen):
    BINDINGS = [
        back_key("variants_close"),
        Binding("r", "run_group", "Run the group",
                tooltip="Run the variants not run yet (on a results tree: read them)", id="variants_run"),
    ]

    def __init__(self, key: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.key = key

    @classmethod
    def open(cls, app) -> None:
        """``V``: the hard-positive group of the row shown, side by side."""
        if app.current_key is None:
            app.notify("No sample is shown yet.", timeout=2)
            return
        app.push_screen(cls(app.current_key))

    @property
    def keys(self) -> list[str]:
        return [item.key for item in self.app.session.group_of(self.key)]

    def compose(self) -> ComposeResult:
        yield Static("", id="variants-title")
        yield TileGrid(side=LARGE_TILE, id="variant-maps")
        with VerticalScroll(id="variant-details"):
            yield Static("", id="variant-text")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_group()
        if self.app.session.is_tree and not self.app.job_running():
            self.read_missing()

    def missing(self) -> list[str]:
        return [k for k in self.keys if self.app.session.entries[k].status != DONE]

    def read_missing(self) -> None:
        """On a results tree the variants are answered already: reading them is all "running" them takes."""
        missing = self.missing()
        if missing:
            self.app.run_keys(missing, job="reading variants")

    def refresh_group(self) -> None:
        session: Session = self.app.session
        keys = self.keys
        item = session.item(self.key)
        title = Text()
        title.append("Variants ", style="bold")
        # r and esc are in the footer; on a tree, r reads the variants rather than running them
        read = " · r read from the tree" if session.is_tree else ""
        title.append(f"of {item.group[1]!r} on {item.group[0]} · {len(keys)} questions{read}")
        self.query_one("#variants-title", Static).update(title)
        self.query_one(TileGrid).set_tiles(variant_tiles(session, keys), self.app.tile_paint(blend=True))
        self._fit_tiles()
        parts = [consistency_text(session, keys), questions_table(session, keys)]
        if sum(session.entries[k].status == DONE for k in keys) > 1:
            parts.append(js_table(session, keys))
        self.query_one("#variant-text", Static).update(Group(*parts))

    def _fit_tiles(self) -> None:
        """Tiles as large as the screen allows, in at most half its height (a third on a short screen; they
        scroll past that), so the answers' table below is in view without scrolling, at 80 x 24 too."""
        grid = self.query_one(TileGrid)
        width, height = self.size
        if not height:
            return
        large = height >= LARGE_TILE_ROWS
        grid.side = LARGE_TILE if large else SMALL_TILE
        per_row = max(1, width // grid.tile_width)
        rows = max(1, -(-len(grid.tiles) // per_row))
        room = height // 2 if large else height // 3  # a short screen keeps two thirds for the answers
        grid.styles.height = min(rows * grid.tile_height, max(room, 4))
        grid.refresh()

    def on_resize(self) -> None:
        self._fit_tiles()

    def action_run_group(self) -> None:
        missing = self.missing()
        if not missing:
            self.notify("Every variant has been read." if self.app.session.is_tree else "Every variant has run.")
            return
        self.app.run_keys(missing, job="reading variants" if self.app.session.is_tree else "variants")

    def action_close(self) -> None:
        self.dismiss(None)
