"""The columns of ``evaluation_results.csv``: what each finished or failed row says, and how it reads back.

The dataset's own columns (``ground_truth`` is the dataset's ``answer``; ``answer`` is the model's
text; ``image_found`` says how the film was found: ``image_path``, ``dicom_id``, ``dicom_id.jpg`` ...),
``key``, ``answer_label``, ``correct``, the map view used, every metric of the analysis core,
the gating count, ``error`` (empty for a finished row). Timings live in ``grids/{key}_meta.json`` and
``run.json``, so two runs over the same data write the same CSV.

Each column is declared once, in ``COLUMN_SPECS`` (name, kind, group, help); the CSV's order, the groups,
``read_rows``'s types and the app's cells (``cell_value``) are read from there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.metrics import BOX_METRIC_NAMES, METRIC_NAMES
from medgemma_tui.engine.record import SHARE_COLUMNS
from medgemma_tui.export.journal import RowJournal, tree_cells

if TYPE_CHECKING:
    import pandas as pd

    from medgemma_tui.analysis.result import SampleResult
    from medgemma_tui.data.schema import Sample

STUDY_SECTIONS = ("robustness", "faithfulness", "one_pixel")  # analysis.extras written to robustness/{key}.json

TEXT, INTEGER, BOOLEAN, NUMBER = "text", "integer", "boolean", "number"  # how a column's cells read back
INPUT, RESULT = "input", "result"  # the dataset's own columns, and what a row's run adds


@dataclass(frozen=True)
class Column:
    """One column of the CSV: its name, how its cells read back (``read_rows``), its group, what it says."""

    name: str
    kind: str
    group: str
    help: str = ""

    @property
    def empty(self) -> Any:
        """What a missing cell reads as: '' for text, None for a flag or a count, NaN for a number."""
        return "" if self.kind == TEXT else math.nan if self.kind == NUMBER else None


def _columns(group: str, kind: str, *specs: tuple[str, str]) -> tuple[Column, ...]:
    return tuple(Column(name, kind, group, help) for name, help in specs)


# every column, in the CSV's order: declared here once; the groups and kinds below are read from it
COLUMN_SPECS: tuple[Column, ...] = (
    *_columns(INPUT, INTEGER, ("row", "the row's line in the dataset")),
    *_columns(INPUT, TEXT, ("key", "the row's name in the tree"), ("study_id", "the dataset's study"),
              ("dicom_id", "the dataset's film id"), ("image_path", "the film's path"),
              ("image_found", "how the film was found (image_path, dicom_id, dicom_id.jpg ...)"),
              ("question", "the question asked"), ("baseline_question", "the question a variant rephrases"),
              ("question_variant", "the variant's wording")),
    *_columns(INPUT, INTEGER, ("variant_index", "which variant of its baseline question (0: the original)")),
    *_columns(INPUT, TEXT, ("strategy", "how the variant was made"), ("strategy_kinds", "its kinds, joined by +"),
              ("finding", "the finding the box marks"), ("bbox", "the boxes, x,y,w,h;..."),
              ("ground_truth", "the dataset's answer")),
    *_columns(RESULT, TEXT, ("answer", "the model's text"), ("answer_label", "yes, no or uncertain (analysis.answers)"),
              ("answer_reason", "the rule or cue that decided the label")),
    *_columns(RESULT, BOOLEAN, ("answer_hedged", "whether a hedge qualified the verdict"),
              ("correct", "the label against the ground truth (empty when the truth is not yes/no)")),
    *_columns(RESULT, INTEGER, ("decision_index", "the answer token the map opens on (analysis.views)")),
    *_columns(RESULT, TEXT, ("decision_token", "that token's text")),
    *_columns(RESULT, INTEGER, ("answer_tokens", "the answer's tokens, less the end tokens")),
    *_columns(RESULT, NUMBER, ("answer_logprob", "the sum of their log-probabilities")),
    *_columns(RESULT, TEXT, ("map_view", "the map's view"), ("map_rows", "the answer rows it averages"),
              ("map_layers", "its layers"), ("map_heads", "its heads")),
    *_columns(RESULT, INTEGER, ("gated_count", "answer tokens gated out of the map")),
    *_columns(RESULT, TEXT, ("gated_terms", "their terms, joined by ;")),
    *_columns(RESULT, INTEGER, ("image_width", "the film's width in pixels"),
              ("image_height", "the film's height in pixels")),
    *_columns(RESULT, TEXT, ("mask_quality", "how the lung masks were found")),
    *_columns(RESULT, NUMBER, ("box_area_fraction", "the boxes' share of the map's cells (analysis.grounding)")),
    *_columns(RESULT, NUMBER, *((name, "a metric of the map (analysis.metrics)") for name in METRIC_NAMES)),
    *_columns(RESULT, NUMBER, *((name, "the row's attention share of a prompt part") for name in SHARE_COLUMNS)),
    *_columns(RESULT, NUMBER, *((name, "a metric of the map against the box") for name in BOX_METRIC_NAMES)),
    *_columns(RESULT, TEXT, ("error", "why the row failed (empty for a finished row)")),
)
COLUMN = {column.name: column for column in COLUMN_SPECS}
INPUT_COLUMNS = tuple(c.name for c in COLUMN_SPECS if c.group == INPUT)
RESULT_COLUMNS = tuple(c.name for c in COLUMN_SPECS if c.group == RESULT)
COLUMNS = INPUT_COLUMNS + RESULT_COLUMNS
TEXT_COLUMNS = frozenset(c.name for c in COLUMN_SPECS if c.kind == TEXT)
INTEGER_COLUMNS = frozenset(c.name for c in COLUMN_SPECS if c.kind == INTEGER)
BOOLEAN_COLUMNS = frozenset(c.name for c in COLUMN_SPECS if c.kind == BOOLEAN)
NUMBER_COLUMNS = frozenset(c.name for c in COLUMN_SPECS if c.kind == NUMBER)


def cell_value(row: Mapping[str, Any], name: str) -> Any:
    """A cell of a row read by ``read_rows`` (a dict of one row), missing or NA read as its column's ``empty``
    (a column the registry does not know reads as text)."""
    import pandas as pd

    column = COLUMN.get(name, Column(name, TEXT, INPUT))
    value = row.get(name)
    if value is None or pd.isna(value):
        return column.empty
    if column.kind == TEXT:
        return str(value)
    if column.kind == INTEGER:
        return int(value)
    if column.kind == BOOLEAN:
        return bool(value)
    return float(value)


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for missing or NaN, repr for floats (exact round trip), True/False for bools."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return "" if not math.isfinite(value) else repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def bbox_text(boxes: Iterable[tuple[float, float, float, float]]) -> str:
    return ";".join(",".join(f"{v:g}" for v in box) for box in boxes)


def sample_columns(sample: Sample) -> dict[str, Any]:
    """The dataset's own columns of a sample (the ground truth as ``ground_truth``)."""
    row = {
        "row": sample.row,
        "key": sample.key,
        "study_id": sample.study_id,
        "dicom_id": sample.dicom_id,
        "image_path": sample.image_path,
        "image_found": sample.image_found,
        "question": sample.question,
        "baseline_question": sample.baseline_question,
        "question_variant": sample.question_variant,
        "variant_index": sample.variant_index,
        "strategy": sample.strategy,
        "strategy_kinds": "+".join(sample.strategy_kinds),
        "finding": sample.finding,
        "bbox": bbox_text(sample.bbox),
        "ground_truth": sample.answer,
    }
    for name, value in sample.extra.items():
        row[name if name not in COLUMNS else f"input_{name}"] = value
    return row


def spec_columns(spec) -> dict[str, str]:
    """How the map was made, as scalar columns (see analysis.views.MapSpec)."""
    layers = "all" if spec.layers is None else f"{spec.layers[0]}-{spec.layers[1] - 1}"
    heads = "mean" if spec.head_mode == "mean" else f"{spec.head_mode} {spec.head}"
    return {"map_view": spec.view, "map_rows": str(spec.rows), "map_layers": layers, "map_heads": heads}


def result_columns(result: SampleResult) -> dict[str, Any]:
    """Every scalar a finished sample adds to its row."""
    analysis = result.analysis
    record = analysis.record
    width, height = result.film.size
    row = {
        "answer": record.answer,
        "answer_label": analysis.answer_label,
        "answer_reason": analysis.answer_reason,
        "answer_hedged": analysis.answer_hedged,
        "correct": analysis.correct,
        "decision_index": analysis.decision_index,
        "decision_token": analysis.decision_token,
        "answer_tokens": analysis.answer_tokens,
        "answer_logprob": analysis.answer_logprob,
        **spec_columns(analysis.view.spec),
        "gated_count": len(analysis.gating.tokens),
        "gated_terms": ";".join(analysis.gating.terms),
        "image_width": width,
        "image_height": height,
        "mask_quality": analysis.masks.quality if analysis.masks is not None else "",
        "box_area_fraction": analysis.box_area_fraction,
        "error": "",
    }
    for name in (*METRIC_NAMES, *SHARE_COLUMNS, *BOX_METRIC_NAMES):
        row[name] = float(analysis.metrics.get(name, math.nan))
    return row


def read_rows(csv_path: Path, journal_path: Path | None = None) -> pd.DataFrame:
    """The CSV as a DataFrame: text columns as str ('' when empty), numbers as float, ``correct`` and
    ``answer_hedged`` as boolean (a tree written before ``answer_hedged`` existed has no such column).
    With ``journal_path``, the rows of a running tree's journal (``export.journal``) join the CSV's."""
    import pandas as pd

    if journal_path is not None and RowJournal(journal_path).exists():
        cells, names = tree_cells(csv_path, journal_path)
        frame = pd.DataFrame(list(cells.values()), columns=names, dtype=str).fillna("")
    elif not csv_path.exists():
        return pd.DataFrame({name: pd.Series(dtype=object if name in TEXT_COLUMNS else float) for name in COLUMNS})
    else:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_filter=False)
    for name in frame.columns:
        kind = COLUMN[name].kind if name in COLUMN else TEXT  # a dataset's own extra column stays text
        if kind == BOOLEAN:
            frame[name] = frame[name].map({"True": True, "False": False}).astype("boolean")
        elif kind == INTEGER:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
        elif kind == NUMBER:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return frame
