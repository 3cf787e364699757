"""A results tree written by the system medtui replaces (UNHSAILLab/lvlm-interpret-medgemma), told apart from
medtui's own, and what to say about it: what it is, and how to rerun its rows with medtui.

Its ``evaluation_results.csv`` has no ``key`` or ``error`` column; it has the model's text in ``answer``,
the label in ``ground_truth``, the 16x16 grid printed into ``attention_grid`` and ``image_span`` (always
``(1, 257)``); its ``grids/{study_id}_grid.npy`` are keyed by study, so a study's variants overwrote each
other. Its grids were read at that fixed span while its prompt put the question first, so they start at
the chat header, not the film (README: "Coming from the original system").
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from medgemma_tui.errors import MedtuiError
from medgemma_tui.export.layout import CSV_NAME

ORIGINAL_COLUMNS = frozenset({"attention_grid", "image_span", "gen_positions", "layers_used", "attention_mode"})


class OriginalTreeError(MedtuiError, ValueError):
    """A tree of the original system given where a medtui tree is expected; the message says how to rerun it."""


def original_tree_summary(root: Path) -> str | None:
    """One line on what the original system's tree at ``root`` holds; None when it is not one."""
    path = root / CSV_NAME
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or ())
            rows = sum(1 for _ in reader) if "key" not in columns else 0
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if "key" in columns or len(columns & ORIGINAL_COLUMNS) < 2:
        return None
    grids = sorted((root / "grids").glob("*_grid.npy")) if (root / "grids").is_dir() else []
    spans = set()
    for meta in sorted((root / "grids").glob("*_meta.json"))[:50] if grids else []:
        try:
            span = json.loads(meta.read_text(encoding="utf-8")).get("image_span")
        except (OSError, ValueError):
            continue
        if isinstance(span, list) and len(span) == 2:
            spans.add(f"{span[0]}..{span[1]}")
    span_text = ", ".join(sorted(spans)) or "1..257"
    return (f"a results tree of the original system (lvlm-interpret-medgemma): {rows} rows, {len(grids)} grids keyed "
            f"by study (a study's variants overwrote each other), read at the fixed token span {span_text}, which "
            "starts at the chat header, not the film")


def rerun_hint(root: Path) -> str:
    """How to run the same rows with medtui: its CSV as input (labels from ``ground_truth``, films by ``dicom_id``)."""
    return (f"rerun it with medtui: medtui eval --data {root / CSV_NAME} --images IMAGE_ROOT --export NEW_TREE "
            "(labels are read from its ground_truth, films found by dicom_id), then medtui open NEW_TREE")


def refuse_original_tree(root: Path) -> None:
    """Raise ``OriginalTreeError`` (one line) when ``root`` is the original system's tree."""
    summary = original_tree_summary(root)
    if summary is not None:
        raise OriginalTreeError(f"{root} is {summary}; {rerun_hint(root)}")
