"""``MedtuiApp``: the session, the view state and the jobs, wired to the inspector's widgets.

Blocking work (model loading, extraction, reading records from a tree, export, studies) runs in thread
workers (``jobs.py``) that post messages carrying what they made (``messages.py``); the handlers here file
it in the session, on the UI thread only. A worker's failure reaches one handler,
``on_worker_state_changed``, which shows one line keyed by the error's type and keeps the app up. The
screens open themselves and own their keys' actions; navigation keys change ``state`` and redraw from the
record in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from medgemma_tui.analysis.record_analysis import SampleAnalysis
from medgemma_tui.app import jobs
from medgemma_tui.app import state as st
from medgemma_tui.app.bindings import APP_BINDINGS
from medgemma_tui.app.caches import HeldCache
from medgemma_tui.app.frame import Frame, FrameMaker
from medgemma_tui.app.graphics import Graphics
from medgemma_tui.app.keymap import checked_keymap
from medgemma_tui.app.messages import (
    JobEnded,
    JobProgressed,
    MethodsComputed,
    ModelReady,
    Notice,
    RobustnessStudied,
    SampleFinished,
    SampleStarted,
    SummaryMade,
)
from medgemma_tui.app.palette import commands
from medgemma_tui.app.picture import BOX_COLOUR, Paint, box_fractions
from medgemma_tui.app.screens.help import HelpScreen
from medgemma_tui.app.screens.inspect import InspectScreen
from medgemma_tui.app.screens.methods import MethodsScreen
from medgemma_tui.app.screens.robustness import RobustnessScreen
from medgemma_tui.app.screens.summary import SummaryScreen, summary_maker
from medgemma_tui.app.screens.variants import VariantsScreen
from medgemma_tui.app.session import DONE, RUNNING, Session
from medgemma_tui.app.themes import DEFAULT_THEME, hex_to_rgb, use_themes
from medgemma_tui.app.widgets.samples import SamplesPanel, matches

DATASET_METRIC = "inside_lungs_ratio"
CHARTS_EVERY_S = 0.25  # the dataset charts redraw at most this often while rows finish


class MedtuiApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "medtui"
    BINDINGS = APP_BINDINGS
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]

    def __init__(
        self,
        session: Session,
        theme: str = DEFAULT_THEME,
        colormap: str = "magma",
        alpha: float = 0.45,
        view: str = "answer",
        keys: dict[str, str] | None = None,
        autorun: bool = True,
        export_dir: str = "medtui-results",
        config=None,
        graphics: Graphics | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self._charts_due = False  # a redraw of the dataset charts is waiting (redraw_charts_later)
        self.graphics = graphics or Graphics()  # how the X-ray is drawn (app.graphics.prepare, before the app starts)
        self.config = config  # medgemma_tui.config.Config: figures and colours of exports, as for eval
        opening = config.analysis.default_row if config is not None else "decision"
        self.state = st.ViewState(colormap=colormap, alpha=alpha, view=view, opening=opening)
        self.current_key: str | None = None
        # the caches hold what they key and let it go when the session does (Session.keep)
        self.frames = FrameMaker()
        self.boxes: HeldCache[tuple] = HeldCache(max(1, session.keep))  # a row's boxes, by its item
        session.on_drop.append(self.frames.forget)
        self.autorun = autorun
        self.export_dir = export_dir
        self.key_overrides = dict(keys or {})
        self.failure: str | None = None  # the last failure, shown on the status line until the next success
        self.jobs = jobs.Jobs()
        self._wanted_theme = theme

    # ---- start ------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        keymap, unknown_keys = checked_keymap(self.key_overrides)
        self.set_keymap(keymap)
        for warning in (use_themes(self, self._wanted_theme), unknown_keys, self.graphics.note):
            if warning:
                self.notify(warning, severity="warning")
        self.push_screen(InspectScreen())
        self.set_interval(0.5, self._tick)
        if self.session.needs_model:
            self.set_job(f"loading model {self.session.model_source}…")
            jobs.start(self, jobs.LOAD_MODEL, jobs.load_model)
        elif self.autorun and self.session.items:
            self.start_first()
        if self.session.is_tree:
            jobs.start(self, jobs.TREE_NOTES, jobs.tree_notes)

    def start_first(self) -> None:
        done = self.session.done()
        if done:
            self.show_sample(done[0])
        elif self.session.items:
            self.select_sample(self.session.items[0].key)

    # ---- what is shown ----------------------------------------------------------------------------
    def current_analysis(self) -> SampleAnalysis | None:
        if self.current_key is None:
            return None
        return self.session.entries[self.current_key].analysis

    def current_item(self):
        return None if self.current_key is None else self.session.item(self.current_key)

    def current_frame(self, say: bool = False) -> Frame | None:
        """The frame on screen; with ``say``, none is said in one line (a key that needs a sample)."""
        analysis = self.current_analysis()
        if analysis is None and say:
            self.notify("No sample is shown yet.", timeout=2)
        return None if analysis is None else self.frames.frame(analysis, self.state)

    def color_mode(self) -> str:
        return "truecolor" if self.console.color_system == "truecolor" else "256"

    def paint(self) -> Paint:
        theme = self.current_theme
        background = hex_to_rgb(theme.background if theme else None)
        box = hex_to_rgb(theme.error if theme else None, BOX_COLOUR)
        s = self.state
        return Paint(colormap=s.colormap, alpha=s.alpha, overlay=s.overlay, masks=s.masks, cursor=s.cursor,
                     colors=self.color_mode(), background=background, scale=s.scale, box_colour=box)

    def tile_paint(self, blend: bool = False) -> Paint:
        return Paint(colormap=self.state.colormap, alpha=self.state.alpha, overlay="blend" if blend else "map",
                     colors=self.color_mode(), background=self.paint().background, scale="max" if blend else "range")

    def picture_masks(self) -> dict | None:
        analysis = self.current_analysis()
        if analysis is None or analysis.masks is None:
            return None
        masks = analysis.masks
        return {"body": masks.body, "lung_right": masks.lung_right, "lung_left": masks.lung_left,
                "mediastinum": masks.mediastinum}

    def picture_boxes(self) -> tuple:
        """The shown sample's ground-truth boxes as fractions of its film (``picture.box_fractions``)."""
        analysis, key = self.current_analysis(), self.current_key
        if analysis is None:
            return ()
        return self.boxes.get(self.session.item(key), "boxes", lambda: box_fractions(
            self.session.boxes(key), analysis.record.image_size))

    def zones(self):
        analysis = self.current_analysis()
        return None if analysis is None else self.frames.mask_grids(analysis)["zone_names"]

    def status_text(self) -> str:
        analysis = self.current_analysis()
        line = st.status_line(self.state, None if analysis is None else analysis.record)
        if self.failure:
            line = f"{line}  ✗ {self.failure}"
        return line

    def dataset_series(self) -> tuple[str, np.ndarray] | None:
        values = self.session.dataset_values(DATASET_METRIC)
        return (DATASET_METRIC, values) if len(values) > 1 else None

    def inspector(self) -> InspectScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, InspectScreen):
                return screen
        return None

    def samples_panels(self) -> list[SamplesPanel]:
        screen = self.inspector()
        return list(screen.query(SamplesPanel)) if screen is not None and screen.is_mounted else []

    def redraw(self, charts: bool = True) -> None:
        screen = self.inspector()
        if screen is not None and screen.is_mounted:
            screen.redraw(charts)

    # ---- state changes ----------------------------------------------------------------------------
    def set_state(self, state: st.ViewState, charts: bool = True) -> None:
        """Show ``state``; a state the record cannot show is refused with one line, the old one kept."""
        analysis = self.current_analysis()
        if analysis is not None:
            try:
                self.frames.frame(analysis, state)
            except ValueError as exc:
                self.notify(str(exc), severity="warning", timeout=4)
                return
        self.state = state
        self.redraw(charts)

    def step(self, change: Callable[[st.ViewState, object], st.ViewState]) -> None:
        """Apply a navigation step that needs the record (a key with no sample shown says so)."""
        analysis = self.current_analysis()
        if analysis is None:
            self.notify("No sample is shown yet: choose one in the samples table (s).", timeout=2)
            return
        try:
            state = change(self.state, analysis.record)
        except ValueError as exc:  # a step this record cannot take (e.g. a question token that cannot see the image)
            self.notify(str(exc), severity="warning", timeout=4)
            return
        self.set_state(state)

    def show_sample(self, key: str) -> None:
        analysis = self.session.entries[key].analysis
        if analysis is None:
            return
        self.current_key = key
        self.session.pinned = key
        self.session.touch(key)
        wanted = self.state.view
        self.state = st.show_record(self.state.with_(cursor=None), analysis.record)
        if wanted == "question" and self.state.view != wanted:
            self.notify(f"question view: {st.BLIND_ROW}; showing the answer view", severity="warning", timeout=6)
        self.redraw()

    # ---- samples ----------------------------------------------------------------------------------
    def highlight_sample(self, key: str) -> None:
        """Moving through the table shows finished samples at once (those whose record is in memory)."""
        entry = self.session.entries[key]
        if key != self.current_key and entry.status == DONE and entry.analysis is not None:
            self.show_sample(key)

    def select_sample(self, key: str) -> None:
        """Enter on a sample: show it, or run it first."""
        entry = self.session.entries[key]
        if entry.status == DONE and entry.analysis is not None:
            self.show_sample(key)
        elif entry.status == RUNNING:
            self.notify(f"{key} is running…", timeout=2)
        else:
            self.jobs.wanted = key
            self.session.start(key)
            jobs.start(self, jobs.RUN_SAMPLE, jobs.run_sample, key=key)

    def run_new_row(self, key: str) -> None:
        """A row just added to the session (``Session.ask``): into the table, then run and shown."""
        for panel in self.samples_panels():
            panel.rebuild()
            panel.select(key)
        self.select_sample(key)

    # ---- jobs -------------------------------------------------------------------------------------
    def start_row_job(self, kind: jobs.JobKind, body, line: str, **arguments) -> None:
        """A batch or export job: counted as running until its body's JobEnded is filed (``Ticket``)."""
        ticket = jobs.Ticket()
        self.jobs.tickets.append(ticket)
        self.set_job(line)
        ticket.worker = jobs.start(self, kind, body, ticket=ticket, **arguments)

    def run_keys(self, keys: list[str], job: str = "run all") -> None:
        if not keys:
            self.notify("Nothing to run: every sample has run.")
            return
        self.session.queue(keys)
        self.start_row_job(jobs.RUN_BATCH, jobs.run_batch, f"{job}: 0/{len(keys)}", keys=keys, job=job)

    def run_all(self) -> None:
        """Run every sample not run yet that the samples filter shows (all of them with no filter)."""
        panels = self.samples_panels()
        query = panels[0].query_text.strip() if panels else ""
        keys = [key for key in self.session.pending() if matches(self.session, key, query)]
        if query and not keys:
            self.notify(f"Nothing to run: every sample the filter {query!r} shows has run.")
            return
        self.run_keys(keys, f"run all ({query!r})" if query else "run all")

    def job_running(self) -> bool:
        return self.jobs.rows_running()

    def robustness_job(self) -> str | None:
        """The sample whose robustness study is running, if one is."""
        return self.jobs.robustness if jobs.running(self, jobs.ROBUSTNESS.group) else None

    def cancel_jobs(self) -> None:
        cancelled = [w for group in jobs.ROW_JOBS for w in self.workers.cancel_group(self, group)]
        if cancelled:
            self.set_job("cancelling after the current sample…")
        else:
            self.notify("No job is running.", timeout=2)

    def set_job(self, text: str) -> None:
        self.jobs.set(text)
        self._show_job()

    def _show_job(self) -> None:
        screen = self.inspector()
        if screen is not None and screen.is_mounted:
            screen.show_job(self.jobs.line())

    def _tick(self) -> None:
        if self.jobs.text:
            self._show_job()

    # ---- messages from workers: the one place their results join the session -------------------------
    def on_model_ready(self, message: ModelReady) -> None:
        self.session.adopt(message.loaded)
        self.set_job("")
        self.notify(message.text, title="model ready", timeout=4)
        self.sub_title = self.session.loaded.info.name_or_path if self.session.loaded else ""
        if self.autorun and self.current_key is None and self.jobs.wanted is None:
            self.start_first()

    def on_sample_started(self, message: SampleStarted) -> None:
        if self.session.entries[message.key].status != DONE:
            self.session.start(message.key)
        self._update_row(message.key)
        if message.key == self.jobs.wanted:
            where = "reading" if self.session.is_tree else "running"
            self.set_job(f"{where} {message.key}…")

    def on_sample_finished(self, message: SampleFinished) -> None:
        entry = self.session.apply(message.outcome)
        if message.slot:
            self.jobs.handover.give_back()
        self._update_row(message.key)
        if message.key == self.jobs.wanted:
            if not self.job_running():
                self.set_job("")
            self.jobs.wanted = None
            if entry.status == DONE:
                self.failure = None
                self.show_sample(message.key)
        screen = self.screen
        if isinstance(screen, VariantsScreen):
            screen.refresh_group()
        if entry.status == DONE and self.current_key is not None:
            self.redraw_charts_later()

    def redraw_charts_later(self) -> None:
        """The dataset charts again, at most every ``CHARTS_EVERY_S``: a run-all finishing many rows a second
        redraws them (over every finished row) a few times a second, not once per row."""
        if self._charts_due:
            return
        self._charts_due = True

        def redraw() -> None:
            self._charts_due = False
            screen = self.inspector()
            if screen is not None and screen.is_mounted:
                screen.redraw(charts=True)

        self.set_timer(CHARTS_EVERY_S, redraw)

    def on_job_progressed(self, message: JobProgressed) -> None:
        rate = f" · {message.rate:.2f} samples/s" if message.rate else ""
        self.set_job(f"{message.job} {message.done}/{message.total}{rate} · {message.stage} · esc cancels")

    def on_job_ended(self, message: JobEnded) -> None:
        self.session.unqueue(list(message.keys))
        if message.ticket in self.jobs.tickets:
            self.jobs.tickets.remove(message.ticket)
        for key in message.keys:
            self._update_row(key)
        self.set_job("")
        if message.text and message.keys:  # a run of rows: its line, with the accuracy over what has run
            jobs.start(self, jobs.HEADLINE, jobs.headline, make=summary_maker(self.session), text=message.text,
                       severity=message.severity)
        elif message.text:
            self.notify(message.text, severity=message.severity, timeout=6)
        self.show_robustness()

    def on_notice(self, message: Notice) -> None:
        self.notify(message.text, title=message.title, severity=message.severity, timeout=message.timeout)

    def on_methods_computed(self, message: MethodsComputed) -> None:
        self.session.add_methods(message.key, message.analysis)
        self.set_job("")
        self.notify(message.text, timeout=6)
        if isinstance(self.screen, MethodsScreen) and self.screen.is_mounted:  # its tiles again, with the maps
            frame = self.current_frame()
            if frame is not None:
                self.screen.show(frame)
        self.redraw()

    def on_robustness_studied(self, message: RobustnessStudied) -> None:
        self.session.keep_robustness(message.key, message.study, message.films)
        self.set_job("")
        self.notify(message.text, timeout=6)
        self.show_robustness()

    def on_summary_made(self, message: SummaryMade) -> None:
        if not isinstance(self.screen, SummaryScreen):
            self.push_screen(SummaryScreen(message.summary, message.source))

    def show_robustness(self) -> None:
        """A robustness screen on top shows what there is now (a study finished or failed)."""
        if isinstance(self.screen, RobustnessScreen) and self.screen.is_mounted:
            self.screen.show()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place where a failure becomes a message: one line, the app stays up."""
        worker = event.worker
        if event.state == WorkerState.ERROR:
            self.report_failure(jobs.failure_text(worker.description, worker.error))
        elif event.state == WorkerState.CANCELLED and worker.group in jobs.ROW_JOBS:
            self.set_job("")

    def report_failure(self, message: str) -> None:
        self.failure = message
        self.set_job("")
        self.notify(message, title="error", severity="error", timeout=10)
        self.show_robustness()
        screen = self.inspector()
        if screen is not None and screen.is_mounted:
            screen.show_status()
            for panel in self.samples_panels():
                panel.rebuild()

    def _update_row(self, key: str) -> None:
        for panel in self.samples_panels():  # none while the app is closing
            panel.update_row(key)

    # ---- keys and the command palette -------------------------------------------------------------
    def action_help(self) -> None:
        HelpScreen.open(self)

    def action_summary(self) -> None:
        SummaryScreen.open(self)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from commands(self)
