"""A results tree read back: rows, records, maps and metadata, without the model."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.answers import HEDGED_DEFAULT
from medgemma_tui.analysis.rereading import relabel_note, reread_answers
from medgemma_tui.analysis.views import DECISION_INDEX
from medgemma_tui.export.columns import NUMBER_COLUMNS, cell_value, read_rows, spec_columns
from medgemma_tui.export.layout import CSV_NAME, JOURNAL_NAME, NotATreeError, TreeLayout
from medgemma_tui.export.original_tree import refuse_original_tree

if TYPE_CHECKING:
    import pandas as pd

    from medgemma_tui.analysis.record_analysis import SampleAnalysis
    from medgemma_tui.config import Config
    from medgemma_tui.engine.record import AttentionRecord


class ResultsReader:
    """A results tree read back: rows, records, maps and metadata, without the model.

    The rows' answers are read again with the current reader (``analysis.rereading``), under
    ``hedged_answers`` (default: the tree's own ``[analysis] hedged_answers``); ``relabelled`` lists the
    rows whose label that changed, ``relabelled_note`` says so in a line."""

    def __init__(self, out_dir: str | os.PathLike[str], hedged_answers: str | None = None):
        self.paths = TreeLayout(out_dir)  # read only: the writer is export.tree.ResultsTree
        self.root = self.paths.root
        if hedged_answers is None:
            config = self.config
            hedged_answers = config.analysis.hedged_answers if config is not None else HEDGED_DEFAULT
        # a running tree's rows too: its CSV and its journal
        self.rows, self.relabelled = reread_answers(read_rows(self.paths.csv_path, self.paths.journal_path),
                                                    hedged_answers)

    @property
    def relabelled_note(self) -> str:
        return relabel_note(self.relabelled, len(self.keys))

    @property
    def keys(self) -> list[str]:
        """Keys of the finished rows (those with a record), in CSV order."""
        if self.rows.empty:
            return []
        done = self.rows[self.rows["error"] == ""]
        return [k for k in done["key"].tolist() if self.paths.record_path(k).exists()]

    @property
    def failed(self) -> pd.DataFrame:
        return self.rows[self.rows["error"] != ""] if not self.rows.empty else self.rows

    @property
    def run(self) -> dict[str, Any]:
        return self.paths.read_run()

    @property
    def config(self) -> Config | None:
        block = self.run.get("config")
        if not block:
            return None
        from medgemma_tui.config import Config

        return Config.from_json(block, label=str(self.paths.run_path))

    def row(self, key: str) -> dict[str, Any]:
        match = self.rows[self.rows["key"] == key]
        if match.empty:
            raise KeyError(key)
        return match.iloc[0].to_dict()

    def _stored_row(self, key: str) -> dict[str, Any] | None:
        try:
            return self.row(key)
        except KeyError:
            return None

    def load_record(self, key: str) -> AttentionRecord:
        from medgemma_tui.export.record_io import load_record

        path = self.paths.record_path(key)
        if not path.exists():
            raise KeyError(f"no record for {key!r} in {self.root}")
        record = load_record(path)
        if DECISION_INDEX not in record.extra:  # a record written before records carried it: its CSV row's
            decision = cell_value(self._stored_row(key) or {}, "decision_index")
            if decision is not None:
                record.extra[DECISION_INDEX] = decision
        top = self.paths.analysis_dir / "top_heads.json"
        if top.exists():  # the heads chosen without this row's study: the record's top-heads view
            from medgemma_tui.export.method_tables import top_head_weights_for

            weights = top_head_weights_for(json.loads(top.read_text(encoding="utf-8")), key,
                                           (record.num_layers, record.num_heads))
            if weights is not None:
                record.maps["top_heads"] = weights
        return record

    def with_stored_values(self, key: str, analysis: SampleAnalysis) -> SampleAnalysis:
        """``analysis`` of this tree's record with the values its CSV row holds, so the app shows what the
        tree says: the answer's reading (``analysis.rereading``, as ``rows`` has it) and, when the row's map
        is the one analysed (the same view, rows, layers and heads), its metrics. A value the row lacks
        (an older tree, a metric added since) stays as analysed now."""
        row = self._stored_row(key)
        if row is None:
            return analysis
        updates: dict[str, Any] = {}
        for name in ("answer_label", "answer_reason", "answer_hedged", "correct"):
            if name in row:
                updates[name] = cell_value(row, name)
        if all(cell_value(row, name) == value for name, value in spec_columns(analysis.view.spec).items()):
            stored = {name: cell_value(row, name) for name in analysis.metrics
                      if name in NUMBER_COLUMNS and name in row}
            updates["metrics"] = {**analysis.metrics,
                                  **{name: value for name, value in stored.items() if math.isfinite(value)}}
        return replace(analysis, **updates)

    def load_meta(self, key: str) -> dict[str, Any]:
        path = self.paths.meta_path(key)
        if not path.exists():
            raise KeyError(f"no metadata for {key!r} in {self.root}")
        return json.loads(path.read_text(encoding="utf-8"))

    def load_grid(self, key: str) -> np.ndarray:
        path = self.paths.grid_path(key)
        if not path.exists():
            raise KeyError(f"no grid for {key!r} in {self.root}")
        return np.load(path)

    def summary(self) -> dict[str, Any]:
        """``analysis/summary.json`` when the run wrote it, else computed from the rows now."""
        path = self.paths.analysis_dir / "summary.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        from medgemma_tui.export.summary import summarise

        return summarise(self.rows, self.load_grid)


def read_results(out_dir: str | os.PathLike[str], hedged_answers: str | None = None) -> ResultsReader:
    """Open a results tree written by ``medtui eval`` or ``medtui check --export``."""
    root = Path(out_dir)
    if not root.is_dir():
        raise NotATreeError(f"results tree not found: {root}")
    if not (root / CSV_NAME).exists() and not (root / JOURNAL_NAME).exists():
        raise NotATreeError(f"{root} is not a results tree (no {CSV_NAME})")
    refuse_original_tree(root)  # the original system's tree: say what it is and how to rerun it
    return ResultsReader(root, hedged_answers)
