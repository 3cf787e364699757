"""What the workers tell the app. Workers never touch widgets or the session's state: they post one of
these, carrying what they made, and the app files it on the UI thread (as harlequin's QueriesExecuted
carries its query results)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from medgemma_tui.analysis.record_analysis import SampleAnalysis
from medgemma_tui.app.session import RowOutcome


class ModelReady(Message):
    """The model is loaded, for the session to keep; ``text`` says what and how long it took."""

    def __init__(self, text: str, loaded: Any = None) -> None:
        super().__init__()
        self.text, self.loaded = text, loaded


class SampleStarted(Message):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class SampleFinished(Message):
    """A sample's run ended: its analysis, or why it failed, to be filed in the session."""

    def __init__(self, outcome: RowOutcome, slot: bool = False) -> None:
        super().__init__()
        self.outcome = outcome
        self.slot = slot  # it holds a slot of the jobs' Handover, given back once filed

    @property
    def key(self) -> str:
        return self.outcome.key


class JobProgressed(Message):
    """Batch progress: a backlog of these collapses into the latest."""

    def __init__(self, job: str, done: int, total: int, stage: str, rate: float | None) -> None:
        super().__init__()
        self.job, self.done, self.total, self.stage, self.rate = job, done, total, stage, rate

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobProgressed) and message.job == self.job


class JobEnded(Message):
    """A background job finished, was cancelled or failed; ``text`` is the one line to show (none after a
    failure, which the app's failure handler says); ``keys`` are the rows it held, back to "not run" if it
    did not reach them."""

    def __init__(self, job: str, text: str = "", severity: str = "information", keys: tuple[str, ...] = (),
                 ticket: Any = None) -> None:
        super().__init__()
        self.job, self.text, self.severity, self.keys = job, text, severity, keys
        self.ticket = ticket  # jobs.Ticket: the job as the app counts it


class MethodsComputed(Message):
    """The attribution methods of a row: its analysis with their maps, in place of the one shown."""

    def __init__(self, key: str, analysis: SampleAnalysis, text: str) -> None:
        super().__init__()
        self.key, self.analysis, self.text = key, analysis, text


class RobustnessStudied(Message):
    """The robustness study of a live row and the perturbed films as the model saw them."""

    def __init__(self, key: str, study: dict, films: list, text: str) -> None:
        super().__init__()
        self.key, self.study, self.films, self.text = key, study, films, text


class SummaryMade(Message):
    """The dataset figures with their intervals, for the summary screen."""

    def __init__(self, summary: Any, source: str) -> None:
        super().__init__()
        self.summary, self.source = summary, source


class Notice(Message):
    """One line to show, made off the UI thread."""

    def __init__(self, text: str, severity: str = "information", title: str = "", timeout: float = 6) -> None:
        super().__init__()
        self.text, self.severity, self.title, self.timeout = text, severity, title, timeout
