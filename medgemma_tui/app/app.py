"""``MedtuiApp``: the session, the view state and the workers, wired to the inspector's widgets.

Blocking work (model loading, extraction, reading records from a tree, export) runs in thread workers
that post messages (``messages.py``); failures reach one handler, ``on_worker_state_changed``, which
shows one clear line and keeps the app up. Navigation keys change ``state`` and redraw from the record
in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from medgemma_tui.analysis.perturbations import from_config
from medgemma_tui.analysis.record_analysis import SampleAnalysis
from medgemma_tui.app import state as st
from medgemma_tui.app.bindings import APP_BINDINGS, binding_ids
from medgemma_tui.app.frame import Frame, FrameMaker
from medgemma_tui.app.graphics import Graphics
from medgemma_tui.app.messages import JobEnded, JobProgressed, ModelReady, SampleFinished, SampleStarted
from medgemma_tui.app.picture import BOX_COLOUR, Paint, box_fractions
from medgemma_tui.app.screens.ask import AskScreen
from medgemma_tui.app.screens.compare import CompareScreen
from medgemma_tui.app.screens.export import ExportScreen
from medgemma_tui.app.screens.gallery import GalleryScreen
from medgemma_tui.app.screens.help import HelpScreen
from medgemma_tui.app.screens.inspect import InspectScreen
from medgemma_tui.app.screens.methods import MethodsScreen
from medgemma_tui.app.screens.robustness import RobustnessScreen
from medgemma_tui.app.screens.variants import VariantsScreen
from medgemma_tui.app.session import DONE, RUNNING, Session
from medgemma_tui.app.themes import DEFAULT_THEME, hex_to_rgb, load_themes
from medgemma_tui.app.widgets.samples import SamplesPanel, matches
from medgemma_tui.colormaps import available as available_colormaps
from medgemma_tui.config import Config
from medgemma_tui.config.schema import METHOD_NAMES

DATASET_METRIC = "inside_lungs_ratio"
CHARTS_EVERY_S = 0.25  # the dataset charts redraw at most this often while rows finish


def sample_boxes(session: Session, key: str) -> list:
    """A sample's ground-truth boxes (x, y, w, h in its film's pixels): the dataset row's ``bbox`` in a
    live session, the meta's ``bbox_boxes`` in a results tree; none when the sample has no box."""
    item = session.item(key)
    if item.sample is not None:
        return [tuple(b) for b in (item.sample.bbox or ())]
    if session.is_tree:
        try:
            meta = session.tree.load_meta(key) or {}
        except (AttributeError, FileNotFoundError, KeyError, ValueError):
            return []
        return [tuple(b) for b in meta.get("bbox_boxes") or []]
    return []


def headline_note(session: Session) -> str:
    """`` · accuracy 0.964 [0.916, 1.000]`` (the study-bootstrap interval) after a run, when rows were scored."""
    from medgemma_tui.app.screens.summary import session_summary
    from medgemma_tui.export.intervals_summary import headlines

    try:
        shown = {h.name: h for h in headlines(session_summary(session) or {})}
    except Exception:  # noqa: BLE001 - a summary that cannot be made costs only this note
        return ""
    return f" · {shown['accuracy'].text()} (D: dataset figures)" if "accuracy" in shown else ""


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
        self.frames = FrameMaker()
        self.autorun = autorun
        self.export_dir = export_dir
        self.key_overrides = dict(keys or {})
        self.failure: str | None = None  # the last failure, shown on the status line until the next success
        self._job_text = ""
        self._job_started: float | None = None
        self._wanted_theme = theme
        self._masks_cache: dict[int, tuple[SampleAnalysis, dict | None]] = {}
        self._boxes_cache: dict[str, tuple] = {}
        self._wanted_key: str | None = None  # the sample the user asked for, shown when it finishes
        self._jobs_alive = 0  # batch / export threads whose body has not returned (cancelled ones too)
        self._jobs_lock = threading.Lock()
        self._robustness_key: str | None = None  # the sample whose robustness study runs (live)

    # ---- start ------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        for theme in load_themes().values():
            self.register_theme(theme)
        try:
            self.theme = self._wanted_theme
        except Exception:  # an unknown theme name: say so, keep the default
            self.theme = DEFAULT_THEME
            self.notify(f"unknown theme {self._wanted_theme!r}; using {DEFAULT_THEME}", severity="warning")
        unknown = sorted(set(self.key_overrides) - binding_ids())
        if unknown:
            self.notify(f"[app.keys]: unknown binding ids {', '.join(unknown)} (see ? for the ids)",
                        severity="warning")
        self.set_keymap({k: v for k, v in self.key_overrides.items() if k not in unknown})
        if self.graphics.note:
            self.notify(self.graphics.note, severity="warning")
        self.push_screen(InspectScreen())
        self.set_interval(0.5, self._tick)
        if self.session.needs_model:
            self.set_job(f"loading model {self.session.model_source}…")
            self.load_model()
        elif self.autorun and self.session.items:
            self.start_first()
        if self.session.is_tree:
            note = headline_note(self.session)
            if note:
                self.notify(note.lstrip(" ·"), title="dataset", timeout=8)
            relabelled = getattr(self.session.tree, "relabelled_note", "")
            if relabelled:  # a tree written by an older reader: its answers read again, labels changed
                self.notify(relabelled, title="answers re-read", severity="warning", timeout=12)

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

    def current_frame(self) -> Frame | None:
        analysis = self.current_analysis()
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
        hit = self._masks_cache.get(id(analysis))
        if hit is None or hit[0] is not analysis:
            hit = (analysis, {"body": analysis.masks.body, "lung_right": analysis.masks.lung_right,
                              "lung_left": analysis.masks.lung_left, "mediastinum": analysis.masks.mediastinum})
            self._masks_cache[id(analysis)] = hit
        return hit[1]

    def picture_boxes(self) -> tuple:
        """The shown sample's ground-truth boxes as fractions of its film (``picture.box_fractions``)."""
        analysis = self.current_analysis()
        if analysis is None:
            return ()
        hit = self._boxes_cache.get(self.current_key)
        if hit is None:
            boxes = sample_boxes(self.session, self.current_key)
            hit = self._boxes_cache[self.current_key] = box_fractions(boxes, analysis.record.image_size)
        return hit

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

    def cycle_colormap(self) -> None:
        self.set_state(st.cycle_colormap(self.state, list(available_colormaps())), charts=False)

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
            self._wanted_key = key
            self.run_one(key)

    # ---- workers ----------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="model", exit_on_error=False, name="load model")
    def load_model(self) -> None:
        text = self.session.load_model()
        self.post_message(ModelReady(text))

    @work(thread=True, group="sample", exit_on_error=False, name="run sample")
    def run_one(self, key: str) -> None:
        self.post_message(SampleStarted(key))
        try:
            self.session.run(key)
        finally:
            self.post_message(SampleFinished(key))

    @contextmanager
    def _job_thread(self):
        """Counts a batch or export thread as running until its body returns: a cancelled Textual worker
        reports CANCELLED at once, while its thread finishes the current sample and tidies up."""
        with self._jobs_lock:
            self._jobs_alive += 1
        try:
            yield
        finally:
            with self._jobs_lock:
                self._jobs_alive -= 1

    @work(thread=True, exclusive=True, group="batch", exit_on_error=False, name="run")
    def run_batch(self, keys: list[str], job: str) -> None:
        with self._job_thread():
            self._run_batch(keys, job)

    def _run_batch(self, keys: list[str], job: str) -> None:
        worker = get_current_worker()
        start = time.perf_counter()

        def report(done: int, total: int, key: str, entry) -> None:
            elapsed = time.perf_counter() - start
            rate = done / elapsed if done and elapsed > 0 else None
            self.post_message(JobProgressed(job, done, total, key, rate))
            self.post_message(SampleStarted(key) if entry is None else SampleFinished(key))

        finished, failed = self.session.run_many(keys, lambda: worker.is_cancelled, report)
        cancelled = worker.is_cancelled
        text = f"{job}: {finished} done" + (f", {failed} failed" if failed else "")
        text += f" of {len(keys)}" + (" (cancelled)" if cancelled else "") + f" in {time.perf_counter() - start:.1f}s"
        text += headline_note(self.session)
        self.post_message(JobEnded(job, text, "warning" if failed or cancelled else "information"))

    @work(thread=True, exclusive=True, group="export", exit_on_error=False, name="export")
    def export_worker(self, keys: list[str], out_dir: str) -> None:
        from medgemma_tui.app.session import export_keys

        worker = get_current_worker()

        def report(done: int, total: int, key: str) -> None:
            self.post_message(JobProgressed("export", done, total, key, None))

        with self._job_thread():
            written = export_keys(self.session, keys, Path(out_dir), lambda: worker.is_cancelled, report,
                                  self.config)
        self.post_message(JobEnded("export", f"exported {written} sample(s) to {out_dir}"))

    @work(thread=True, group="robustness", exit_on_error=False, name="robustness study")
    def robustness_worker(self, key: str, config: Config) -> None:
        study = self.session.run_robustness(key, config)
        entries = study.get("perturbations") or []
        flips = sum(bool(e.get("flip")) for e in entries)
        self.post_message(JobEnded("robustness", f"robustness of {key}: {len(entries)} perturbations, "
                                   f"{flips} answer flip(s), {study.get('seconds', 0.0):.1f}s"))

    def run_keys(self, keys: list[str], job: str = "run all") -> None:
        if not keys:
            self.notify("Nothing to run: every sample has run.")
            return
        self.set_job(f"{job}: 0/{len(keys)}")
        self.run_batch(keys, job)

    def run_all(self) -> None:
        """Run every sample not run yet that the samples filter shows (all of them with no filter)."""
        screen = self.inspector()
        panels = list(screen.query(SamplesPanel)) if screen is not None and screen.is_mounted else []
        query = panels[0].query_text.strip() if panels else ""
        keys = [key for key in self.session.pending() if matches(self.session, key, query)]
        if query and not keys:
            self.notify(f"Nothing to run: every sample the filter {query!r} shows has run.")
            return
        self.run_keys(keys, f"run all ({query!r})" if query else "run all")

    def job_running(self) -> bool:
        if self._jobs_alive:
            return True
        return any(w.group in ("batch", "export") and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   for w in self.workers)

    def cancel_jobs(self) -> None:
        cancelled = self.workers.cancel_group(self, "batch") + self.workers.cancel_group(self, "export")
        if cancelled:
            self.set_job("cancelling after the current sample…")
        else:
            self.notify("No job is running.", timeout=2)

    # ---- messages from workers --------------------------------------------------------------------
    def on_model_ready(self, message: ModelReady) -> None:
        self.set_job("")
        self.notify(message.text, title="model ready", timeout=4)
        self.sub_title = self.session.loaded.info.name_or_path if self.session.loaded else ""
        if self.autorun and self.current_key is None and self._wanted_key is None:
            self.start_first()

    def on_sample_started(self, message: SampleStarted) -> None:
        self._update_row(message.key)
        if message.key == self._wanted_key:
            where = "reading" if self.session.is_tree else "running"
            self.set_job(f"{where} {message.key}…")

    def on_sample_finished(self, message: SampleFinished) -> None:
        self._update_row(message.key)
        entry = self.session.entries[message.key]
        if message.key == self._wanted_key:
            if not self.job_running():
                self.set_job("")
            if entry.status == DONE:
                self._wanted_key = None
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
        self.set_job("")
        self.notify(message.text, severity=message.severity, timeout=6)
        self.show_robustness()
        if message.job == "methods":
            self.show_methods()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place where a failure becomes a message: one line, the app stays up."""
        worker = event.worker
        if event.state == WorkerState.ERROR:
            self.report_failure(worker.name, worker.error)
        elif event.state == WorkerState.CANCELLED and worker.group in ("batch", "export"):
            self.set_job("")

    def report_failure(self, job: str, error: BaseException | None) -> None:
        text = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else type(error).__name__
        if job == "load model":
            message = f"the model did not load: {text}"
        elif job == "run sample":
            key = self._wanted_key or "the sample"
            message = f"{key} failed: {text}"
            self._wanted_key = None
        else:
            message = f"{job} failed: {text}"
        self.failure = message
        self.set_job("")
        self.notify(message, title="error", severity="error", timeout=10)
        self.show_robustness()
        screen = self.inspector()
        if screen is not None and screen.is_mounted:
            screen.show_status()
            for panel in screen.query(SamplesPanel):
                panel.rebuild()

    def _update_row(self, key: str) -> None:
        screen = self.inspector()
        if screen is not None and screen.is_mounted:
            for panel in screen.query(SamplesPanel):  # none while the app is closing
                panel.update_row(key)

    # ---- job line ---------------------------------------------------------------------------------
    def set_job(self, text: str) -> None:
        self._job_text = text
        self._job_started = time.perf_counter() if text else None
        self._show_job()

    def job_line(self) -> str:
        """The running job, with its elapsed time while it has no progress of its own."""
        text = self._job_text
        if text and self._job_started is not None and text.endswith("…"):
            text = f"{text} {time.perf_counter() - self._job_started:.0f}s"
        return text

    def _show_job(self) -> None:
        screen = self.inspector()
        if screen is not None and screen.is_mounted:
            screen.show_job(self.job_line())

    def _tick(self) -> None:
        if self._job_text:
            self._show_job()

    # ---- screens ----------------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_summary(self) -> None:
        self.open_summary()

    def open_summary(self) -> None:
        """The dataset figures with their intervals (a tree's summary.json, or the samples run here)."""
        from medgemma_tui.app.screens.summary import SummaryScreen

        if isinstance(self.screen, SummaryScreen):
            return
        self.summary_worker()

    @work(thread=True, exclusive=True, group="summary", exit_on_error=False, name="dataset summary")
    def summary_worker(self) -> None:
        from medgemma_tui.app.screens.summary import SummaryScreen, session_summary

        summary = session_summary(self.session)  # the bootstrap is a second or two: off the UI thread
        self.call_from_thread(self.push_screen, SummaryScreen(summary, self.session.source))

    def open_gallery(self) -> None:
        frame = self.current_frame()
        if frame is None:
            self.notify("No sample is shown yet.", timeout=2)
            return

        def chosen(result: tuple[int, int] | None) -> None:
            if result is not None:
                layer, head = result
                self.set_state(self.state.with_(layer=layer, head_mode="head", head=head))

        self.push_screen(GalleryScreen(frame), chosen)

    def open_methods(self) -> None:
        frame = self.current_frame()
        if frame is None:
            self.notify("No sample is shown yet.", timeout=2)
            return

        def chosen(view: str | None) -> None:
            if view is not None:
                self.set_state(self.state.with_(view=view))

        live = self.session.needs_model and not self.session.is_tree
        self.push_screen(MethodsScreen(frame, can_run=live), chosen)

    def run_methods(self) -> None:
        """Compute the attribution methods of the row shown, in a worker (they hold the model)."""
        key = self.current_key
        if key is None:
            return
        if any(w.group == "methods" and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers):
            self.notify("The methods of a row are being computed; one row at a time.", timeout=3)
            return
        config = self.config if self.config is not None else Config()
        names = config.methods.names or METHOD_NAMES
        self.set_job(f"methods of {key}…")
        self.notify(f"Computing {', '.join(names)} for {key}…", timeout=4)
        self.methods_worker(key, tuple(names))

    @work(thread=True, group="methods", exit_on_error=False, name="methods")
    def methods_worker(self, key: str, names: tuple[str, ...]) -> None:
        study = self.session.run_methods(key, names)
        seconds = sum(float(self.session.entries[key].analysis.record.timings_s.get(f"map_{n}", 0.0)) for n in names)
        self.post_message(JobEnded("methods", f"methods of {key}: {len(study.get('methods', {}))} maps, "
                                   f"{seconds:.1f}s"))

    def show_methods(self) -> None:
        """A methods screen on top shows the row's maps again (the methods have joined its record)."""
        if isinstance(self.screen, MethodsScreen) and self.screen.is_mounted:
            frame = self.current_frame()
            if frame is not None:
                self.screen.show(frame)

    def open_variants(self) -> None:
        if self.current_key is None:
            self.notify("No sample is shown yet.", timeout=2)
            return
        self.push_screen(VariantsScreen(self.current_key))

    def open_robustness(self) -> None:
        session, key = self.session, self.current_key
        root = Path(session.source) if session.is_tree else None
        summary = session.entries[key].summary if key is not None else None
        analysis = self.current_analysis()
        # the perturbations re-applied to the film as the model saw it (a blur's radius is in its pixels), not
        # to the summary's thumbnail, where the record is at hand
        film = analysis.record.xray if analysis is not None else None if summary is None else summary.xray
        live = session.needs_model and not session.is_tree
        self.push_screen(RobustnessScreen(key, root, film=film,
                                          kept=session.robustness, films=session.robustness_films, can_run=live))

    def run_robustness(self, key: str) -> None:
        """Run the robustness study of a live sample in a worker (one at a time: each holds the model)."""
        running = self.robustness_job()
        if running is not None:
            self.notify(f"The robustness study of {running} is running; one at a time.", timeout=3)
            return
        config = self.config if self.config is not None else Config()
        count = len(from_config(config.robustness))
        self._robustness_key = key
        self.set_job(f"robustness study of {key}…")
        self.notify(f"Running the robustness study of {key}: {count} perturbed films, each answered again…",
                    timeout=4)
        self.robustness_worker(key, config)

    def robustness_job(self) -> str | None:
        """The sample whose robustness study is running, if one is."""
        running = any(w.group == "robustness" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                      for w in self.workers)
        return self._robustness_key if running else None

    def show_robustness(self) -> None:
        """A robustness screen on top shows what there is now (a study finished or failed)."""
        if isinstance(self.screen, RobustnessScreen) and self.screen.is_mounted:
            self.screen.show()

    def open_compare(self) -> None:
        if self.current_key is None or self.session.entries[self.current_key].summary is None:
            self.notify("No finished sample is shown yet.", timeout=2)
            return
        self.push_screen(CompareScreen(self.current_key))

    def open_ask(self) -> None:
        """A question of the user's own about the film on screen: a new row, answered in a worker, then shown."""
        item = self.current_item()
        if item is None or item.sample is None:
            self.notify("asking needs a live session (medtui tui) and a film on screen", timeout=4)
            return

        def chosen(question: str | None) -> None:
            if not question:
                return
            new_key = self.session.ask(item.key, question)
            screen = self.inspector()
            if screen is not None and screen.is_mounted:
                for panel in screen.query(SamplesPanel):
                    panel.rebuild()
                    panel.select(new_key)
            self._wanted_key = new_key
            self.run_one(new_key)

        self.push_screen(AskScreen(item.sample.image.name), chosen)

    def open_export(self) -> None:
        if self.session.is_tree:
            self.notify(f"These samples already live in the results tree {self.session.source}.", timeout=4)
            return
        finished = len(self.session.done())
        screen = ExportScreen(self.export_dir, finished, self.current_analysis() is not None)

        def chosen(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            scope, out_dir = result
            self.export_dir = out_dir
            keys = [self.current_key] if scope == "current" and self.current_key else self.session.done()
            self.set_job(f"export 0/{len(keys)}")
            self.export_worker(keys, out_dir)

        self.push_screen(screen, chosen)

    # ---- command palette --------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name, cmap in available_colormaps().items():
            yield SystemCommand(f"Colormap: {name}", f"{cmap.kind} heatmap colours. {cmap.note}",
                                lambda name=name: self.set_state(self.state.with_(colormap=name), charts=False))
        analysis = self.current_analysis()
        if analysis is not None:
            for view in st.available_views(analysis.record):
                yield SystemCommand(f"View: {view}", "Show this map view", lambda v=view: self.set_state(
                    self.state.with_(view=v)))
        for mode in st.HEAD_MODES:
            yield SystemCommand(f"Heads: {mode}", "Head mean, one GQA group, or one head",
                                lambda m=mode: self.step(lambda s, r: s.with_(head_mode=m, head=0)))
        yield SystemCommand("Run all samples", "Run every sample that has not run (x)", self.run_all)
        yield SystemCommand("Cancel the running job", "Stops after the current sample (esc)", self.cancel_jobs)
        yield SystemCommand("Export", "Write the standard results tree (e)", self.open_export)
        yield SystemCommand("Compare prompts", "This row's prompt and another about the same film (C)",
                            self.open_compare)
        yield SystemCommand("Ask about this film", "A question of your own, answered as a new row (k)", self.open_ask)
        yield SystemCommand("Dataset figures", "Accuracy, consistency, pointing, lift, faithfulness with their "
                            "95% study-bootstrap intervals (D)", self.open_summary)
        yield SystemCommand("Head gallery", "Every layer x head as a small map (G)", self.open_gallery)
        yield SystemCommand("Methods side by side", "Every map view of this row with its pointing and lift (M)",
                            self.open_methods)
        yield SystemCommand("Variants", "The hard-positive group side by side (V)", self.open_variants)
        yield SystemCommand("Robustness", "Perturbed films against the original (R)", self.open_robustness)
        yield SystemCommand("Toggle masks", "Body, lung and mediastinum outlines and the ground-truth box (m)",
                            lambda: self.set_state(st.toggle_masks(self.state)))

