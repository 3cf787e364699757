"""Every map view of the current row side by side (attention, gradients and the attribution methods a
run computed), each with its pointing hit and mass-in-box lift on this row's box."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from medgemma_tui.analysis.metrics import map_metrics
from medgemma_tui.analysis.views import VIEWS, compute_view
from medgemma_tui.app.bindings import METHODS_BINDINGS
from medgemma_tui.app.frame import Frame
from medgemma_tui.app.state import available_views
from medgemma_tui.app.widgets.tiles import Tile, TileGrid


def method_tiles(frame: Frame) -> list[Tile]:
    """One tile per view the record can show, at the frame's rows, layers and heads where the view reads them."""
    record, analysis = frame.record, frame.analysis
    tiles = []
    for name in available_views(record):
        try:
            view = compute_view(record, frame.spec.with_(view=name))
        except ValueError as exc:
            tiles.append(Tile(key=name, label=VIEWS[name].tile_label, grid=None, note=str(exc)[:40]))
            continue
        note = ""
        if analysis.box_grid is not None:
            metrics = map_metrics(view.grid, box=analysis.box_grid, pointing=analysis.pointing_cells)
            note = f"{'hit' if metrics['pointing_hit'] else 'miss'} lift {metrics['mass_in_box_lift']:.1f}"
        tiles.append(Tile(key=name, label=VIEWS[name].tile_label, grid=view.grid, note=note, film=record.xray))
    return tiles


class MethodsScreen(Screen):
    BINDINGS = METHODS_BINDINGS

    def __init__(self, frame: Frame, can_run: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame = frame
        self.can_run = can_run  # a live session with a model: ``r`` computes the methods for this row

    def compose(self) -> ComposeResult:
        yield Static("", id="methods-title")
        yield TileGrid(side=16, grow=True, id="methods")
        yield Footer()

    def on_mount(self) -> None:
        self.show(self.frame)
        self.query_one(TileGrid).focus()

    def show(self, frame: Frame) -> None:
        """The tiles of ``frame`` (again after ``r`` has added the methods to its record)."""
        self.frame = frame
        self.query_one(TileGrid).set_tiles(method_tiles(frame), self.app.tile_paint())
        title = Text()
        title.append("Methods side by side ", style="bold")
        hint = " · r compute the attribution methods" if self.can_run else ""
        title.append(f"· each tile over its own range · pointing and lift on this row's box · "
                     f"enter show · esc back{hint}", style="dim")
        self.query_one("#methods-title", Static).update(title)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run_methods":
            return self.can_run
        return True

    def action_run_methods(self) -> None:
        self.app.run_methods()

    def action_choose(self) -> None:
        grid = self.query_one(TileGrid)
        if grid.selected is None or not grid.tiles:
            return
        self.dismiss(str(grid.tiles[grid.selected].key))

    def action_close(self) -> None:
        self.dismiss(None)
