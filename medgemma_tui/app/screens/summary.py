"""The dataset-level figures with their study-bootstrap intervals: from a tree's ``analysis/summary.json``,
or computed now from the samples a live session has run (the same ``export.summary.summarise`` that
``eval`` writes, so both say the same numbers for the same rows)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from medgemma_tui.app import jobs
from medgemma_tui.app.bindings import CLOSE_BINDINGS
from medgemma_tui.app.session import DONE, FAILED, Session
from medgemma_tui.app.widgets.metrics import DatasetSummaryPanel


def session_rows(session: Session):
    """The finished and failed samples of a live session as rows of ``evaluation_results.csv``."""
    import pandas as pd

    from medgemma_tui.export.columns import sample_columns

    rows = []
    for item in session.items:
        entry = session.entries.get(item.key)
        if entry is None or entry.status not in (DONE, FAILED) or item.sample is None:
            continue
        row = sample_columns(item.sample)
        if entry.status == DONE and entry.summary is not None:
            row.update(entry.summary.metrics)
            row.update(answer_label=entry.summary.answer_label, correct=entry.summary.correct, error="")
        else:
            row.update(answer_label="", correct=None, error=entry.error or "failed")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if "correct" in frame:
        frame["correct"] = frame["correct"].astype("boolean")
    return frame


def summary_maker(session: Session) -> Callable[[], dict[str, Any] | None]:
    """What makes summary.json's numbers for what the session shows, taken now on the thread that owns the
    session (the rows run so far and their grids, or the tree's own file); call it on any thread (the
    bootstrap takes a second or two)."""
    if session.is_tree:
        return session.tree.summary
    rows = session_rows(session)
    if rows.empty:
        return lambda: None
    grids = {key: entry.summary.grid for key, entry in session.entries.items() if entry.summary is not None}

    def make() -> dict[str, Any]:
        from medgemma_tui.export.summary import summarise

        return summarise(rows, lambda key: np.asarray(grids[key]))

    return make


def session_summary(session: Session) -> dict[str, Any] | None:
    """summary.json's numbers for what the session shows: the tree's own file, or the samples run here."""
    return summary_maker(session)()


class SummaryScreen(Screen):
    """``D``: the dataset figures (accuracy, consistency, pointing game and its chance, lift, faithfulness
    gains: deletion, insertion and ERASER's comprehensiveness and sufficiency), each as ``value [low, high]``."""

    BINDINGS = CLOSE_BINDINGS

    def __init__(self, summary: dict[str, Any] | None, source: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.summary, self.source = summary, source

    @classmethod
    def open(cls, app) -> None:
        """``D``: the dataset figures with their intervals (a tree's summary.json, or the samples run here)."""
        if not isinstance(app.screen, cls):
            jobs.start(app, jobs.SUMMARY, jobs.summary, make=summary_maker(app.session), source=app.session.source)

    def compose(self) -> ComposeResult:
        yield DatasetSummaryPanel(id="dataset-summary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DatasetSummaryPanel).show(self.summary, self.source)

    def action_close(self) -> None:
        self.dismiss(None)
