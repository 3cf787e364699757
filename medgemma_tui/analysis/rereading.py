"""Stored answers read again with the current reader, and which labels that changed.

A results tree keeps each answer's text beside the label the reader of its day gave it. Reading a tree
(``medtui open``, the analysis that ``medtui merge`` writes) reads every answer again with today's reader
and ``[analysis] hedged_answers``, so accuracy, hard-positive consistency and every figure split by answer
rest on one reading, and says which rows now read differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from medgemma_tui.analysis.answers import HEDGED_DEFAULT, is_correct, read_answer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Relabel", "reread_answers", "relabel_note"]


@dataclass(frozen=True)
class Relabel:
    """A row whose answer reads differently now."""

    key: str
    was: str  # the stored label ("" when the tree predates the reader's labels)
    now: str
    reason: str  # the current reading's reason

    def __str__(self) -> str:
        return f"{self.key}: {self.was or '(none)'} -> {self.now} ({self.reason})"


def reread_answers(rows: pd.DataFrame, hedged: str = HEDGED_DEFAULT) -> tuple[pd.DataFrame, list[Relabel]]:
    """``rows`` (a tree's CSV, ``export.columns.read_rows``) with ``answer_label``, ``answer_reason``,
    ``answer_hedged`` and ``correct`` read again from each finished row's ``answer`` and ``question``, and
    the rows whose label changed. Failed rows (an ``error``) and rows without an answer column are kept as
    they are."""
    if rows.empty or "answer" not in rows or "question" not in rows:
        return rows, []
    out = rows.copy()
    for name, default in (("answer_label", ""), ("answer_reason", ""), ("answer_hedged", False)):
        if name not in out:
            out[name] = default
    out["answer_hedged"] = out["answer_hedged"].astype("boolean")
    changes: list[Relabel] = []
    labels, reasons, hedges, correct = [], [], [], []
    has_truth = "ground_truth" in out
    for row in out.itertuples(index=False):
        failed = bool(getattr(row, "error", "") or "")
        if failed:
            labels.append(row.answer_label)
            reasons.append(row.answer_reason)
            hedges.append(row.answer_hedged)
            correct.append(getattr(row, "correct", None))
            continue
        reading = read_answer(str(row.answer), str(row.question), hedged)
        labels.append(reading.label)
        reasons.append(reading.reason)
        hedges.append(reading.hedged)
        truth = str(row.ground_truth) if has_truth else ""
        correct.append(is_correct(reading.label, truth) if truth.strip() else None)
        if reading.label != (row.answer_label or ""):
            changes.append(Relabel(str(row.key), str(row.answer_label or ""), reading.label, reading.reason))
    out["answer_label"] = labels
    out["answer_reason"] = reasons
    out["answer_hedged"] = _boolean(hedges)
    out["correct"] = _boolean(correct)
    return out, changes


def _boolean(values: list):
    import pandas as pd

    return pd.array([None if v is None or v is pd.NA or v != v else bool(v) for v in values], dtype="boolean")


def relabel_note(changes: list[Relabel], total: int, shown: int = 3) -> str:
    """One line for a person: how many stored answers read differently now, and the first few."""
    if not changes:
        return ""
    listed = "; ".join(str(c) for c in changes[:shown])
    more = f"; {len(changes) - shown} more" if len(changes) > shown else ""
    return (f"{len(changes)} of {total} stored answers read differently with the current reader, "
            f"relabelled: {listed}{more}")
