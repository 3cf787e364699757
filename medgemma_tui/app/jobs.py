"""The app's background work: each kind declared once (``JobKind``), each body run on a worker thread.

A body reads the session and posts one message carrying what it made (``messages.py``); it never
changes the session's state or touches a widget, so the UI thread alone files results (as harlequin's
workers post QueriesExecuted with their results). A body that raises reaches the app's one failure
handler, whose line starts with the kind's ``failed`` text, formatted with the body's arguments.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from textual.worker import Worker, WorkerState, get_current_worker

from medgemma_tui import registry
from medgemma_tui.app import messages
from medgemma_tui.app.session import RowOutcome
from medgemma_tui.errors import MedtuiError, first_line

LIVE = (WorkerState.PENDING, WorkerState.RUNNING)
HANDOVER = 2  # finished records on their way to the UI thread at most: a run-all waits while the UI files them


@dataclass(frozen=True)
class JobKind:
    name: str  # the worker's name
    group: str  # the worker's group: one running job of an exclusive group, cancelled by the group
    failed: str  # how its failure reads, formatted with the body's arguments: "{key} failed"
    exclusive: bool = False


LOAD_MODEL = JobKind("load model", "model", "the model did not load", exclusive=True)
RUN_SAMPLE = JobKind("run sample", "sample", "{key} failed")
RUN_BATCH = JobKind("run", "batch", "{job} failed", exclusive=True)
EXPORT = JobKind("export", "export", "export failed", exclusive=True)
ROBUSTNESS = JobKind("robustness study", registry.ROBUSTNESS, "robustness study failed")
METHODS = JobKind("methods", registry.METHODS_STUDY, "methods of {key} failed")
SUMMARY = JobKind("dataset summary", "summary", "dataset summary failed", exclusive=True)
HEADLINE = JobKind("headline", "headline", "the dataset headline failed", exclusive=True)
TREE_NOTES = JobKind("tree notes", "notes", "the tree's notes failed")
ROW_JOBS = ("batch", "export")  # the groups whose jobs hold rows (esc cancels them)


@dataclass
class Ticket:
    """A batch or export job as the UI thread counts it: running until its body's JobEnded is filed
    (a cancelled Textual worker reports CANCELLED at once, while its thread finishes the current row)."""

    worker: Worker | None = None
    started: bool = False  # its body began (a worker cancelled before that never posts JobEnded)

    def running(self) -> bool:
        return self.started or self.worker is not None and self.worker.state in LIVE


class Handover:
    """Bounds the records in messages not filed yet: a worker takes a slot before it posts a finished row,
    the UI thread gives it back once filed (so the session's ``keep`` drops old records as they come, and a
    UI thread slower than the run holds ``HANDOVER`` records in its queue, not every row's)."""

    def __init__(self, slots: int = HANDOVER) -> None:
        self._slots = threading.Semaphore(slots)

    def take(self, cancelled) -> bool:
        """Wait for a slot; False once ``cancelled()`` (the row is posted without one)."""
        while not self._slots.acquire(timeout=0.1):
            if cancelled():
                return False
        return True

    def give_back(self) -> None:
        self._slots.release()


@dataclass
class Jobs:
    """What the UI thread knows of the running jobs: the job line's text and start, the row jobs' tickets,
    the sample the user is waiting for and the sample whose robustness study runs."""

    text: str = ""
    started: float | None = None
    tickets: list[Ticket] = field(default_factory=list)  # the row jobs not ended (their JobEnded not filed)
    wanted: str | None = None
    robustness: str | None = None
    handover: Handover = field(default_factory=Handover)

    def set(self, text: str) -> None:
        self.text, self.started = text, time.perf_counter() if text else None

    def line(self) -> str:
        """The running job, with its elapsed time while it has no progress of its own."""
        if self.text and self.started is not None and self.text.endswith("…"):
            return f"{self.text} {time.perf_counter() - self.started:.0f}s"
        return self.text

    def rows_running(self) -> bool:
        return any(ticket.running() for ticket in self.tickets)


def failure_text(context: str, error: BaseException | None) -> str:
    """One line for a failed job, keyed by the error's type: a ``MedtuiError`` (the user can fix it) says
    its own line; any other error its first line and its type; never a traceback."""
    if error is None:
        return context
    if isinstance(error, MedtuiError):
        return f"{context}: {first_line(error)}"
    text, kind = first_line(error), type(error).__name__
    return f"{context}: {kind}" if text == kind else f"{context}: {text} ({kind})"


def start(app, kind: JobKind, body: Callable[..., None], **arguments: Any) -> Worker:
    """Run ``body(app, **arguments)`` on a worker thread as a job of ``kind``."""
    return app.run_worker(partial(body, app, **arguments), name=kind.name, group=kind.group,
                          description=kind.failed.format(**arguments), exclusive=kind.exclusive,
                          thread=True, exit_on_error=False)


def running(app, group: str) -> bool:
    return any(w.group == group and w.state in LIVE for w in app.workers)


# ---- bodies (worker threads) ------------------------------------------------------------------------
def load_model(app) -> None:
    loaded, text = app.session.load_model()
    app.post_message(messages.ModelReady(text, loaded))


def run_sample(app, key: str) -> None:
    app.post_message(messages.SampleStarted(key))
    start_s = time.perf_counter()
    try:
        analysis = app.session.analyse(key)
    except Exception as exc:
        app.post_message(messages.SampleFinished(RowOutcome(key, error=first_line(exc))))
        raise
    outcome = RowOutcome(key, analysis, seconds=time.perf_counter() - start_s)
    worker = get_current_worker()
    app.post_message(messages.SampleFinished(outcome, app.jobs.handover.take(lambda: worker.is_cancelled)))


def run_batch(app, keys: list[str], job: str, ticket: Ticket) -> None:
    ticket.started = True
    worker = get_current_worker()
    start_s = time.perf_counter()
    text, severity = "", "information"

    def rate(done: int) -> float | None:
        elapsed = time.perf_counter() - start_s
        return done / elapsed if done and elapsed > 0 else None

    def started(done: int, total: int, key: str) -> None:
        app.post_message(messages.JobProgressed(job, done, total, key, rate(done)))
        app.post_message(messages.SampleStarted(key))

    def finished(done: int, total: int, outcome: RowOutcome) -> None:
        app.post_message(messages.JobProgressed(job, done, total, outcome.key, rate(done)))
        slot = outcome.analysis is not None and app.jobs.handover.take(lambda: worker.is_cancelled)
        app.post_message(messages.SampleFinished(outcome, slot))

    try:
        done, failed = app.session.answer_many(keys, lambda: worker.is_cancelled, started, finished)
        cancelled = worker.is_cancelled
        text = f"{job}: {done} done" + (f", {failed} failed" if failed else "")
        text += f" of {len(keys)}" + (" (cancelled)" if cancelled else "") + f" in {time.perf_counter() - start_s:.1f}s"
        severity = "warning" if failed or cancelled else "information"
    finally:
        app.post_message(messages.JobEnded(job, text, severity, tuple(keys), ticket))


def export(app, keys: list[str], out_dir: str, ticket: Ticket) -> None:
    from medgemma_tui.app.session import export_keys

    ticket.started = True
    worker = get_current_worker()
    text = ""

    def report(done: int, total: int, key: str) -> None:
        app.post_message(messages.JobProgressed("export", done, total, key, None))

    try:
        written = export_keys(app.session, keys, Path(out_dir), lambda: worker.is_cancelled, report, app.config)
        text = f"exported {written} sample(s) to {out_dir}"
    finally:
        app.post_message(messages.JobEnded("export", text, ticket=ticket))


def robustness(app, key: str, config) -> None:
    study, films = app.session.robustness_of(key, config)
    entries = study.get("perturbations") or []
    flips = sum(bool(e.get("flip")) for e in entries)
    seconds = study.get("seconds", 0.0)
    text = f"robustness of {key}: {len(entries)} perturbations, {flips} answer flip(s), {seconds:.1f}s"
    app.post_message(messages.RobustnessStudied(key, study, films, text))


def methods(app, key: str, names: tuple[str, ...]) -> None:
    analysis = app.session.methods_of(key, names)
    seconds = sum(float(analysis.record.timings_s.get(f"map_{n}", 0.0)) for n in names)
    count = len(analysis.extras[registry.METHODS_STUDY].get(registry.PER_METHOD, {}))
    app.post_message(messages.MethodsComputed(key, analysis, f"methods of {key}: {count} maps, {seconds:.1f}s"))


def summary(app, make: Callable[[], Any], source: str) -> None:
    app.post_message(messages.SummaryMade(make(), source))  # the bootstrap is a second or two: off the UI thread


def headline(app, make: Callable[[], Any], text: str, severity: str) -> None:
    """The end of a run-all, with the accuracy and its interval over what has run."""
    try:
        note = accuracy_note(make())
    except Exception:  # noqa: BLE001 - a summary that cannot be made costs only this note
        note = ""
    app.post_message(messages.Notice(text + note, severity))


def tree_notes(app) -> None:
    """What a results tree says on opening: its accuracy, and whether its answers were read again."""
    tree = app.session.tree
    try:
        note = accuracy_note(tree.summary())
    except Exception:  # noqa: BLE001 - a summary that cannot be read costs only this note
        note = ""
    if note:
        app.post_message(messages.Notice(note.lstrip(" ·"), title="dataset", timeout=8))
    relabelled = getattr(tree, "relabelled_note", "")
    if relabelled:  # a tree written by an older reader: its answers read again, labels changed
        app.post_message(messages.Notice(relabelled, "warning", title="answers re-read", timeout=12))


def accuracy_note(summary: dict | None) -> str:
    """`` · accuracy 0.964 [0.916, 1.000] (D: dataset figures)`` (its study-bootstrap interval), when rows
    were scored."""
    from medgemma_tui.export.intervals_summary import headlines

    shown = {h.name: h for h in headlines(summary or {})}
    return f" · {shown['accuracy'].text()} (D: dataset figures)" if "accuracy" in shown else ""
