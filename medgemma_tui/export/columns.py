"""The columns of ``evaluation_results.csv``: what each finished or failed row says, and how it reads back.

The dataset's own columns (``ground_truth`` is the dataset's ``answer``; ``answer`` is the model's
text; ``image_found`` says how the film was found: ``image_path``, ``dicom_id``, ``dicom_id.jpg`` ...),
``key``, ``answer_label``, ``correct``, the map view used, every metric of the analysis core,
the gating count, ``error`` (empty for a finished row). Timings live in ``grids/{key}_meta.json`` and
``run.json``, so two runs over the same data write the same CSV.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.grounding import box_area_fraction
from medgemma_tui.analysis.metrics import BOX_METRIC_NAMES, METRIC_NAMES
from medgemma_tui.engine.record import SHARE_COLUMNS
from medgemma_tui.export.journal import RowJournal, tree_cells

if TYPE_CHECKING:
    import pandas as pd

    from medgemma_tui.analysis.result import SampleResult
    from medgemma_tui.data.schema import Sample

STUDY_SECTIONS = ("robustness", "faithfulness", "one_pixel")  # analysis.extras written to robustness/{key}.json
INPUT_COLUMNS = (
    "row",
    "key",
    "study_id",
    "dicom_id",
    "image_path",
    "image_found",
    "question",
    "baseline_question",
    "question_variant",
    "variant_index",
    "strategy",
    "strategy_kinds",
    "finding",
    "bbox",
    "ground_truth",
)
RESULT_COLUMNS = (
    "answer",
    "answer_label",
    "answer_reason",
    "answer_hedged",
    "correct",
    "decision_index",
    "decision_token",
    "answer_tokens",
    "answer_logprob",
    "map_view",
    "map_rows",
    "map_layers",
    "map_heads",
    "gated_count",
    "gated_terms",
    "image_width",
    "image_height",
    "mask_quality",
    "box_area_fraction",
    *METRIC_NAMES,
    *SHARE_COLUMNS,
    *BOX_METRIC_NAMES,
    "error",
)
COLUMNS = INPUT_COLUMNS + RESULT_COLUMNS
INTEGER_COLUMNS = frozenset({"row", "variant_index", "answer_tokens", "decision_index", "gated_count", "image_width",
                             "image_height"})
BOOLEAN_COLUMNS = frozenset({"correct", "answer_hedged"})
TEXT_COLUMNS = frozenset(
    {"key", "study_id", "dicom_id", "image_path", "image_found", "question", "baseline_question", "question_variant",
     "strategy", "strategy_kinds", "finding", "bbox", "ground_truth", "answer", "answer_label", "answer_reason",
     "decision_token", "map_view", "map_rows", "mask_quality",
     "map_layers", "map_heads", "gated_terms", "error"}
)


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
    ends = set(record.extra.get("end_token_ids", []))
    content = [i for i, t in enumerate(record.answer_ids) if int(t) not in ends]
    row = {
        "answer": record.answer,
        "answer_label": analysis.answer_label,
        "answer_reason": analysis.answer_reason,
        "answer_hedged": analysis.answer_hedged,
        "correct": analysis.correct,
        "decision_index": analysis.decision_index,
        "decision_token": analysis.decision_token,
        "answer_tokens": len(content),
        "answer_logprob": float(np.sum(record.answer_logprobs[content])) if content else math.nan,
        **spec_columns(analysis.view.spec),
        "gated_count": len(analysis.gating.tokens),
        "gated_terms": ";".join(analysis.gating.terms),
        "image_width": width,
        "image_height": height,
        "mask_quality": analysis.masks.quality if analysis.masks is not None else "",
        "box_area_fraction": (box_area_fraction(list(result.sample.bbox), (width, height), record.grid)
                              if result.sample.bbox else math.nan),
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
        if name in BOOLEAN_COLUMNS:
            frame[name] = frame[name].map({"True": True, "False": False}).astype("boolean")
        elif name in INTEGER_COLUMNS:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
        elif name in RESULT_COLUMNS and name not in TEXT_COLUMNS:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return frame
