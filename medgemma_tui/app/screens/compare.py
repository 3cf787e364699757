"""Two prompts about the same film side by side (the original system's app tab 3): both maps, their difference
map and Jensen-Shannon divergence, and both answers.

Prompt A is the row on screen; prompt B is another finished row of the same film (``n``/``p`` step through
them; ``k`` in the inspector asks a new one). Maps are each row's default map, as in the variants screen.
The difference map is A - B, drawn over its own range (dark: B attends more, bright: A attends more).
"""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from medgemma_tui.analysis.metrics import js_divergence, pearson, top_iou
from medgemma_tui.app.bindings import back_key
from medgemma_tui.app.screens.variants import js_text
from medgemma_tui.app.session import DONE, Session
from medgemma_tui.app.widgets.tiles import Tile, TileGrid


def film_of(session: Session, key: str) -> str:
    """The film a row asks about: its image file in a live session, its ``image_path`` in a tree."""
    item = session.item(key)
    return str(item.sample.image) if item.sample is not None else str(item.group[0])


def same_film_keys(session: Session, key: str) -> list[str]:
    """The other finished rows about the film of ``key``, in table order."""
    film = film_of(session, key)
    return [i.key for i in session.items
            if i.key != key and session.entries[i.key].status == DONE and film_of(session, i.key) == film]


def answer_text(session: Session, key: str) -> str:
    """The row's answer: its text when its record is in memory, else its label."""
    entry = session.entries[key]
    if entry.analysis is not None:
        return entry.analysis.record.answer.strip()
    return entry.summary.answer_label if entry.summary is not None else session.status_text(key)


def comparison(session: Session, a: str, b: str) -> dict[str, float]:
    """JS divergence (nats), Pearson r and top-10% IoU of the two rows' default maps."""
    grid_a, grid_b = (np.asarray(session.entries[k].summary.grid, dtype=np.float64) for k in (a, b))
    return {"js": js_divergence(grid_a, grid_b), "pearson": pearson(grid_a, grid_b),
            "top_iou": top_iou(grid_a, grid_b, 0.1)}


class CompareScreen(Screen):
    BINDINGS = [
        back_key("compare_close"),
        Binding("n", "other(1)", "Next prompt B", tooltip="The next other prompt about this film", id="compare_next"),
        Binding("p", "other(-1)", "Previous prompt B", id="compare_prev", show=False),
    ]

    def __init__(self, key: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.index = 0

    @property
    def others(self) -> list[str]:
        return same_film_keys(self.app.session, self.key)

    @property
    def other(self) -> str | None:
        others = self.others
        return others[self.index % len(others)] if others else None

    @classmethod
    def open(cls, app) -> None:
        """``C``: the row's prompt and another about the same film."""
        if app.current_key is None or app.session.entries[app.current_key].summary is None:
            app.notify("No finished sample is shown yet.", timeout=2)
            return
        app.push_screen(cls(app.current_key))

    def compose(self) -> ComposeResult:
        yield Static("", id="compare-title")
        yield TileGrid(side=24, id="compare-maps")
        with VerticalScroll(id="compare-details"):
            yield Static("", id="compare-text")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_pair()

    def refresh_pair(self) -> None:
        session: Session = self.app.session
        other = self.other
        title = Text()
        title.append("Compare prompts ", style="bold")
        title.append(f"on {film_of(session, self.key)} · n/p other prompt · esc back")
        self.query_one("#compare-title", Static).update(title)
        grid = self.query_one(TileGrid)
        summary_a = session.entries[self.key].summary
        if other is None or summary_a is None:
            grid.set_tiles([], self.app.tile_paint(blend=True))
            self.query_one("#compare-text", Static).update(Text(
                "No other finished prompt about this film: press esc, then k to ask one (or run another row of "
                "this film).", style="dim"))
            return
        summary_b = session.entries[other].summary
        difference = np.asarray(summary_a.grid, dtype=np.float64) - np.asarray(summary_b.grid, dtype=np.float64)
        numbers = comparison(session, self.key, other)
        tiles = [Tile(key="A", label=f"A {summary_a.answer_label}", grid=summary_a.grid, note="prompt A",
                      film=summary_a.xray),
                 Tile(key="B", label=f"B {summary_b.answer_label}", grid=summary_b.grid, note="prompt B",
                      film=summary_b.xray),
                 Tile(key="A-B", label=f"A - B · JS {js_text(numbers['js'])}", grid=difference,
                      note="bright: A more")]
        grid.set_tiles(tiles, self.app.tile_paint(blend=False))
        table = Table(box=None, pad_edge=False, expand=True)
        for name in ("", "question", "answer", "label"):
            table.add_column(name, overflow="fold")
        for mark, key, summary in (("A", self.key, summary_a), ("B", other, summary_b)):
            table.add_row(mark, session.item(key).question, answer_text(session, key), summary.answer_label)
        line = Text(f"JS divergence {js_text(numbers['js'])} nats (0 = the same map, ln 2 = disjoint) · Pearson r "
                    f"{numbers['pearson']:.3f} · top-10% IoU {numbers['top_iou']:.2f} · "
                    f"B {self.index % len(self.others) + 1} of {len(self.others)}", style="bold")
        self.query_one("#compare-text", Static).update(Group(line, table))

    def action_other(self, step: int) -> None:
        if self.others:
            self.index = (self.index + step) % len(self.others)
            self.refresh_pair()

    def action_close(self) -> None:
        self.dismiss(None)
