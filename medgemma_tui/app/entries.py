"""What a session holds of each row: its table entry (``Item``), what a finished row keeps (``Summary``),
its state (``Entry``), and a worker's outcome of running it (``RowOutcome``). No textual here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medgemma_tui.analysis.heads import row_head_scores
from medgemma_tui.analysis.record_analysis import SampleAnalysis
from medgemma_tui.engine.record import AttentionRecord

NOT_RUN, QUEUED, RUNNING, DONE, FAILED = "not run", "queued", "running", "done", "failed"
IN_TREE = "in tree"  # how a tree's row not yet read is said: finished there, its record read when shown
THUMBNAIL_SIDE = 128  # px: a summary's film, for the tiles of the variants and robustness screens


def film_thumbnail(xray: np.ndarray | None, side: int = THUMBNAIL_SIDE) -> np.ndarray | None:
    """The film as the model saw it, shrunk to at most ``side`` px a side: what a tile of a few dozen
    terminal cells can show, at 1/49 of MedGemma's 896 px film's memory."""
    if xray is None or max(xray.shape[:2]) <= side:
        return xray
    from PIL import Image

    height, width = xray.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(xray).resize(size, Image.Resampling.BOX))


@dataclass(frozen=True)
class Item:
    """One row of the samples table, whatever the source."""

    key: str
    study: str
    variant: int
    strategy: str
    question: str
    truth: str  # ground truth as written ("" when unknown)
    group: tuple[str, str]  # (image, baseline question): the hard-positive group
    sample: Any = None  # data.schema.Sample in a live session
    answer_label: str = ""  # known before the record is read (a tree's CSV row)
    correct: bool | None = None


@dataclass(frozen=True)
class Summary:
    """What the table, the variants screen and the dataset charts need of a finished sample (a few KB)."""

    answer_label: str
    correct: bool | None
    metrics: dict[str, float]
    grid: np.ndarray  # the default map
    xray: np.ndarray | None  # the film as the model saw it, as a thumbnail (film_thumbnail)
    heads: dict[str, np.ndarray] | None = None  # per layer x head pointing and lift on the box (boxed rows)

    @classmethod
    def of(cls, analysis: SampleAnalysis) -> Summary:
        heads = row_head_scores(analysis.record, analysis.view.spec.rows, analysis.box_grid, analysis.pointing_cells)
        return cls(analysis.answer_label, analysis.correct, dict(analysis.metrics), analysis.grid,
                   film_thumbnail(analysis.record.xray), heads)


@dataclass(frozen=True)
class RowOutcome:
    """One row's run as a worker hands it over: its analysis, or the line saying why it failed."""

    key: str
    analysis: SampleAnalysis | None = None
    error: str | None = None
    seconds: float | None = None


@dataclass
class Entry:
    status: str = NOT_RUN
    analysis: SampleAnalysis | None = None  # dropped for all but the most recent samples (memory)
    summary: Summary | None = None  # kept for every finished sample
    error: str | None = None
    seconds: float | None = None

    @property
    def record(self) -> AttentionRecord | None:
        return None if self.analysis is None else self.analysis.record

    def finish(self, analysis: SampleAnalysis) -> None:
        self.analysis, self.summary, self.status, self.error = analysis, Summary.of(analysis), DONE, None


