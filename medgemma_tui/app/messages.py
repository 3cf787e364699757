"""What the workers tell the app. Workers never touch widgets: they post one of these."""

from __future__ import annotations

from textual.message import Message


class ModelReady(Message):
    """The model is loaded; ``text`` says what and how long it took."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class SampleStarted(Message):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class SampleFinished(Message):
    """A sample's run ended: its entry in the session says done or failed."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class JobProgressed(Message):
    """Batch progress: a backlog of these collapses into the latest."""

    def __init__(self, job: str, done: int, total: int, stage: str, rate: float | None) -> None:
        super().__init__()
        self.job, self.done, self.total, self.stage, self.rate = job, done, total, stage, rate

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobProgressed) and message.job == self.job


class JobEnded(Message):
    """A background job finished (or was cancelled); ``text`` is the one line to show."""

    def __init__(self, job: str, text: str, severity: str = "information") -> None:
        super().__init__()
        self.job, self.text, self.severity = job, text, severity
