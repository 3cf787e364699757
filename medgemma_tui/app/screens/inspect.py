"""The inspector: samples, the X-ray with its map, tokens, metrics and charts, and the status line."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Static

from medgemma_tui.app import state as st
from medgemma_tui.app.screens.ask import AskScreen
from medgemma_tui.app.screens.compare import CompareScreen
from medgemma_tui.app.screens.export import ExportScreen
from medgemma_tui.app.screens.gallery import GalleryScreen
from medgemma_tui.app.screens.methods import MethodsScreen
from medgemma_tui.app.screens.robustness import RobustnessScreen
from medgemma_tui.app.screens.variants import VariantsScreen
from medgemma_tui.app.widgets.charts import ChartsPanel
from medgemma_tui.app.widgets.metrics import MetricsPanel
from medgemma_tui.app.widgets.samples import SamplesPanel
from medgemma_tui.app.widgets.tokens import TokenBar
from medgemma_tui.app.widgets.xray import CellInfo, ColorBar, SharpXrayView, XrayView
from medgemma_tui.colormaps import available as available_colormaps
from medgemma_tui.registry import ATTRIBUTION, METHODS

# the attribution methods' labels as the tooltips write them (``registry.METHODS``): "occlusion, RISE, IG"
ATTRIBUTION_LABELS = ", ".join(spec.label for spec in METHODS.values() if spec.kind == ATTRIBUTION)
CHART_DELAY_S = 0.08  # charts follow the picture once the keys pause


WIDE_FOOTER = 140  # columns from which the footer also shows "^p Commands" beside every key


class InspectScreen(Screen):
    BINDINGS = [
        Binding("right_square_bracket", "layer(1)", "Layer+",
                tooltip="Next layer (all -> 0 -> 1 ... -> last -> all)", id="layer_next"),
        Binding("left_square_bracket", "layer(-1)", "Layer-", tooltip="Previous layer", id="layer_prev", show=False),
        Binding("a", "all_layers", "All layers", tooltip="Back to all layers", id="layer_all", show=False),
        Binding("full_stop", "head(1)", "Head+", tooltip="Next head or GQA group (from the mean: head 0)",
                id="head_next"),
        Binding("comma", "head(-1)", "Head-", tooltip="Previous head or group", id="head_prev", show=False),
        Binding("g", "head_mode", "Head mode", tooltip="Cycle head mean / GQA group / single head", id="head_mode",
                show=False),
        Binding("n", "token(1)", "Token+",
                tooltip="Next query token that can see the image (with the question before the image: the answer rows)",
                id="token_next"),
        Binding("p", "token(-1)", "Token-", tooltip="Previous query token", id="token_prev", show=False),
        Binding("v", "view", "View",
                tooltip="Cycle the map view (answer, gated, layer-weighted, rollout; question if its tokens see the "
                        f"image; {ATTRIBUTION_LABELS} and top heads where a run computed them)",
                id="view"),
        Binding("o", "overlay", "Overlay",
                tooltip="Cycle heatmap over the film / heatmap alone / film alone", id="overlay", show=False),
        Binding("z", "scale", "Scale", tooltip="Colours over 0..max or over the map's own min..max", id="scale",
                show=False),
        Binding("m", "masks", "Masks", tooltip="Body and lung outlines, and the ground-truth box", id="masks",
                show=False),
        Binding("c", "colormap", "Colormap", tooltip="Next heatmap colormap", id="colormap", show=False),
        Binding("plus", "alpha(0.1)", "Alpha+", id="alpha_up", show=False),
        Binding("minus", "alpha(-0.1)", "Alpha-", id="alpha_down", show=False),
        Binding("s", "samples", "Samples", tooltip="Show or hide the samples table", id="samples", show=False),
        Binding("slash", "filter", "Filter samples", id="filter", show=False),
        Binding("G", "gallery", "Heads", tooltip="Head gallery: every layer x head", id="gallery"),
        Binding("M", "methods", "Methods",
                tooltip=f"Every map view side by side (attention, gradients, {ATTRIBUTION_LABELS}, top heads) with "
                        "its pointing and lift on this row", id="methods", show=False),
        Binding("V", "variants", "Variants", tooltip="The hard-positive group side by side", id="variants"),
        Binding("R", "robustness", "Robustness",
                tooltip="Perturbed films and their maps against the original (from eval, or run here)", id="robustness",
                show=False),
        Binding("e", "export", "Export",
                tooltip="Export this sample or every finished one to a results tree", id="export", show=False),
        Binding("x", "run_all", "Run all", tooltip="Run every sample that has not run", id="run_all"),
        Binding("C", "compare", "Compare prompts",
                tooltip="This row's prompt and another about the same film: both maps, their difference and JS",
                id="compare", show=False),
        Binding("k", "ask", "Ask",
                tooltip="Ask a question of your own about the film on screen (a new row, live sessions)",
                id="ask", show=False),
        Binding("escape", "cancel", "Cancel job", tooltip="Cancel the running job after the current sample",
                id="cancel"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._chart_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        app = self.app
        with Horizontal(id="body"):
            yield SamplesPanel(app.session, id="samples")
            with Vertical(id="center"):
                yield Static("", id="title")
                yield ColorBar(id="colorbar")
                yield CellInfo(id="cell")
                graphics = app.graphics
                yield SharpXrayView(graphics.renderer, id="xray") if graphics.sharp else XrayView(id="xray")
            with VerticalScroll(id="side"):
                yield TokenBar(id="tokens")
                yield MetricsPanel(id="metrics")
                yield ChartsPanel(id="charts")
        with Horizontal(id="statusbar"):
            yield Static("", id="status")
            yield Static("", id="job")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.redraw()
        self.show_job(self.app.jobs.line())
        self.call_after_refresh(self.focus_start)

    def focus_start(self) -> None:
        """The table where it is shown (arrows browse samples), else the picture (arrows move the cell cursor)."""
        if self.samples_shown():
            self.samples.table.focus()
        else:
            self.query_one(XrayView).focus()

    # ---- drawing ----------------------------------------------------------------------------------
    def redraw(self, charts: bool = True) -> None:
        """Everything that depends on the view state, from the record in memory."""
        app = self.app
        frame = app.current_frame()
        paint = app.paint()
        self.query_one(XrayView).show(frame, paint, app.picture_masks(), app.picture_boxes())
        self.query_one(ColorBar).show(frame, paint)
        self.query_one(CellInfo).show(frame, app.zones(), app.state.cursor)
        item = app.current_item()
        self.query_one(TokenBar).show(frame, item.truth if item else "")
        self.query_one(MetricsPanel).show(frame)
        self.query_one("#status", Static).update(app.status_text(), layout=False)
        self.show_title()
        if charts:
            if self._chart_timer is not None:
                self._chart_timer.stop()
            self._chart_timer = self.set_timer(CHART_DELAY_S, self.redraw_charts)

    def show_title(self) -> None:
        """The key and the question; on a narrow terminal the key alone (the side panel's first line is the
        question, whole), so the line is never cut."""
        item = self.app.current_item()
        title = "" if item is None else item.key if self.has_class("-narrow") else f"{item.key} · {item.question}"
        self.query_one("#title", Static).update(title)

    def redraw_charts(self) -> None:
        self.query_one(ChartsPanel).show(self.app.current_frame(), self.app.dataset_series())

    def show_job(self, text: str) -> None:
        job = self.query_one("#job", Static)
        job.display = bool(text)
        self.set_class(bool(text), "job-shown")  # toasts stand above the job line too
        job.update(text)  # auto width: a layout pass

    def show_status(self) -> None:
        self.query_one("#status", Static).update(self.app.status_text(), layout=False)

    @property
    def samples(self) -> SamplesPanel:
        return self.query_one(SamplesPanel)

    # ---- samples ----------------------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.app.highlight_sample(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.app.select_sample(event.row_key.value)
            if self.has_class("-narrow"):
                self.show_samples(False)  # there the table stands in the picture's place: enter goes back to it

    def on_xray_view_cursor_moved(self, event: XrayView.CursorMoved) -> None:
        self.app.step(lambda s, r: st.move_cursor(s, r, event.drow, event.dcol))

    # ---- keys -------------------------------------------------------------------------------------
    def action_layer(self, step: int) -> None:
        self.app.step(lambda s, r: st.step_layer(s, r, step))

    def action_all_layers(self) -> None:
        self.app.step(lambda s, r: st.all_layers(s))

    def action_head(self, step: int) -> None:
        self.app.step(lambda s, r: st.step_head(s, r, step))

    def action_head_mode(self) -> None:
        self.app.step(st.cycle_head_mode)

    def action_token(self, step: int) -> None:
        self.app.step(lambda s, r: st.step_row(s, r, step))

    def action_choose_row(self, row: int) -> None:
        self.app.step(lambda s, r: st.choose_row(s, r, row))

    def action_view(self) -> None:
        self.app.step(st.cycle_view)

    def action_overlay(self) -> None:
        self.app.set_state(st.cycle_overlay(self.app.state))

    def action_scale(self) -> None:
        self.app.set_state(st.toggle_scale(self.app.state), charts=False)

    def action_masks(self) -> None:
        if not self.app.state.masks and self.app.picture_masks() is None and not self.app.picture_boxes():
            self.notify("No anatomy masks or ground-truth box for this sample.", severity="warning")
            return
        self.app.set_state(st.toggle_masks(self.app.state))

    def action_colormap(self) -> None:
        self.app.set_state(st.cycle_colormap(self.app.state, list(available_colormaps())), charts=False)

    def action_alpha(self, delta: float) -> None:
        self.app.set_state(st.change_alpha(self.app.state, delta))
        self.notify(f"overlay alpha {self.app.state.alpha:.1f}", timeout=1.5)

    def samples_shown(self) -> bool:
        """Whether the samples table is on screen: wide terminals show it until ``s`` hides it, narrow
        ones hide it until ``s`` shows it; a choice made with ``s`` or ``/`` holds across resizes."""
        if self.has_class("samples-shown"):
            return True
        return self.has_class("-wide") and not self.has_class("samples-hidden")

    def on_resize(self, event) -> None:
        # crossing the width breakpoint can hide the table (narrow terminals hide it by default)
        self.call_after_refresh(self.keep_focus_visible)
        self.call_after_refresh(self.show_title)
        # the footer's keys take every column of a narrow terminal: ctrl+p is named in the help there (?)
        self.query_one(Footer).show_command_palette = event.size.width >= WIDE_FOOTER

    def keep_focus_visible(self) -> None:
        if not self.samples_shown() and self.samples.has_focus_within:
            self.query_one(XrayView).focus()

    def show_samples(self, shown: bool) -> None:
        """Show or hide the samples table; focus never stays in a hidden widget (keys would vanish into it)."""
        self.set_class(shown, "samples-shown")
        self.set_class(not shown, "samples-hidden")
        self.keep_focus_visible()

    def action_samples(self) -> None:
        shown = not self.samples_shown()
        self.show_samples(shown)
        if shown:
            self.samples.table.focus()
        else:
            self.query_one(XrayView).focus()

    def action_filter(self) -> None:
        self.show_samples(True)
        self.query_one("#filter").focus()

    def action_gallery(self) -> None:
        GalleryScreen.open(self.app)

    def action_methods(self) -> None:
        MethodsScreen.open(self.app)

    def action_variants(self) -> None:
        VariantsScreen.open(self.app)

    def action_robustness(self) -> None:
        RobustnessScreen.open(self.app)

    def action_export(self) -> None:
        ExportScreen.open(self.app)

    def action_run_all(self) -> None:
        self.app.run_all()

    def action_ask(self) -> None:
        AskScreen.open(self.app)

    def action_compare(self) -> None:
        CompareScreen.open(self.app)

    def action_cancel(self) -> None:
        self.app.cancel_jobs()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "cancel":
            return self.app.job_running()
        return True
