"""Every map view of the current row side by side (attention, gradients and the attribution methods a
run computed), each with its pointing hit and mass-in-box lift on this row's box."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from medgemma_tui.analysis.metrics import map_metrics
from medgemma_tui.analysis.views import VIEWS, compute_view
from medgemma_tui.app import jobs
from medgemma_tui.app.bindings import back_key
from medgemma_tui.app.frame import Frame
from medgemma_tui.app.state import available_views
from medgemma_tui.app.widgets.tiles import Tile, TileGrid
from medgemma_tui.config import Config
from medgemma_tui.registry import chosen_method_names


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
    BINDINGS = [
        back_key("methods_close"),
        Binding("enter", "choose", "Show view", id="methods_choose"),
        Binding("r", "run_methods", "Compute methods",
                tooltip="Compute the attribution methods of [methods] names (all of them when none is named) for "
                        "this row with the loaded model (live sessions)", id="methods_run"),
    ]

    def __init__(self, frame: Frame, can_run: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame = frame
        self.can_run = can_run  # a live session with a model: ``r`` computes the methods for this row

    @classmethod
    def open(cls, app) -> None:
        """``M``: every map view of the row shown; enter shows the chosen view in the inspector."""
        frame = app.current_frame(say=True)
        if frame is not None:
            live = app.session.needs_model and not app.session.is_tree
            app.push_screen(cls(frame, can_run=live),
                            lambda view: view is not None and app.set_state(app.state.with_(view=view)))

    def compose(self) -> ComposeResult:
        yield Static("", id="methods-title")
        yield TileGrid(side=16, grow=True, id="method-tiles")
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
        """Compute the attribution methods of the row shown, in a worker (they hold the model)."""
        app, key = self.app, self.app.current_key
        if key is None:
            return
        if jobs.running(app, jobs.METHODS.group):
            self.notify("The methods of a row are being computed; one row at a time.", timeout=3)
            return
        config = app.config if app.config is not None else Config()
        names = tuple(config.methods.names or chosen_method_names())
        app.set_job(f"methods of {key}…")
        self.notify(f"Computing {', '.join(names)} for {key}…", timeout=4)
        jobs.start(app, jobs.METHODS, jobs.methods, key=key, names=names)

    def action_choose(self) -> None:
        grid = self.query_one(TileGrid)
        if grid.selected is None or not grid.tiles:
            return
        self.dismiss(str(grid.tiles[grid.selected].key))

    def action_close(self) -> None:
        self.dismiss(None)
