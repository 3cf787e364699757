"""``analysis/`` of a results tree: summary.json, hard_positives.csv, by_strategy.csv and the dataset plots.

Everything here is computed from the CSV rows and the saved grids, so a tree can be re-summarised
without the model (``ResultsReader.summary()``, ``write_analysis``).

- ``accuracy``: share of the finished rows with a yes/no ground truth whose parsed answer matches it
  (``uncertain`` counts as wrong).
- ``pointing_game``: share of boxed rows whose map's top cell is a hit (``analysis.grounding``), over *focal* findings
  (every boxed row except diffuse findings such as cardiomegaly, where a box is the whole heart and
  pointing says little); ``pointing_game_chance`` is the mean ``pointing_chance`` of the same rows (the
  hit rate of a top cell drawn uniformly at random, by the same rule), and
  ``pointing_game_mass_in_box_lift`` their mean mass-in-box lift. ``pointing_game_overall`` counts every
  boxed row.
- ``intervals``: the study-bootstrap 95% interval of each of these figures (``intervals_summary``),
  null with fewer than two studies; ``interval_studies`` how many studies each resampled;
  ``intervals_summary.headlines`` pairs each with its value, as the figures and the app show them.
- Hard-positive groups are the rows sharing (image_path, baseline_question) with at least two finished
  variants. ``hard_positive_answer_consistency``: share of those groups whose parsed labels all agree;
  ``mean_js_variants``: mean over groups of the mean pairwise Jensen-Shannon divergence (nats) of their
  grids; the rest (Pearson, top-10% IoU, against the original, per strategy) comes from
  ``analysis.consistency``. ``analysis/variants.csv`` has one row per variant against its original.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.answers import HEDGED_DEFAULT
from medgemma_tui.analysis.averages import finite_mean, robust_summary, scored_accuracy
from medgemma_tui.analysis.consistency import Consistency, consistency_tables
from medgemma_tui.analysis.dataset_intervals import dataset_intervals
from medgemma_tui.analysis.metrics import BOX_METRIC_NAMES, METRIC_NAMES
from medgemma_tui.analysis.pointing_game import boxed_rows, pointing_game
from medgemma_tui.analysis.rereading import reread_answers
from medgemma_tui.analysis.row_groups import finished, study_of
from medgemma_tui.engine.record import SHARE_COLUMNS
from medgemma_tui.errors import first_line
from medgemma_tui.export import dataset_figures
from medgemma_tui.export.atomic import write_bytes_atomic
from medgemma_tui.export.captions import CaptionInputs, write_captions
from medgemma_tui.export.columns import read_rows
from medgemma_tui.export.faithfulness_figure import plot_faithfulness
from medgemma_tui.export.study_tables import summarise_studies
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.json_values import jsonable
from medgemma_tui.registry import FAITHFULNESS

if TYPE_CHECKING:
    import pandas as pd

GridLoader = Callable[[str], np.ndarray]


def tree_accuracy(tree: ResultsTree) -> tuple[float | None, int]:
    """``scored_accuracy`` of a tree's CSV alone: what a run can still say when ``analysis/`` was not written."""
    return scored_accuracy(finished(read_rows(tree.csv_path)))


def summarise(rows: pd.DataFrame, load_grid: GridLoader, counts: dict[str, Any] | None = None,
              consistency: Consistency | None = None) -> dict[str, Any]:
    """The numbers of ``analysis/summary.json``; hard-positive consistency from ``analysis.consistency``."""
    done = finished(rows)
    accuracy, scored = scored_accuracy(done)
    summary: dict[str, Any] = {
        "rows": len(rows),
        "done": len(done),
        "failed": len(rows) - len(done),
        "skipped": int((counts or {}).get("skipped", 0)),
        "accuracy": accuracy,
        "scored": scored,
        "answer_labels": {str(k): int(v) for k, v in done["answer_label"].value_counts().items()}
        if "answer_label" in done else {},
        "metrics": {name: finite_mean(done[name]) for name in (*METRIC_NAMES, *SHARE_COLUMNS, *BOX_METRIC_NAMES)
                    if name in done},
        # a few extreme rows can own a mean (cnr runs into the thousands where the outside is flat)
        "metrics_robust": {name: robust_summary(done[name]) for name in (*METRIC_NAMES, *SHARE_COLUMNS,
                                                                         *BOX_METRIC_NAMES) if name in done},
    }
    summary.update(pointing_game(done))
    if consistency is None:
        consistency = consistency_tables(rows, load_grid)
    summary.update(consistency.summary)
    studies: dict[str, int] = {}
    summary["intervals"] = dataset_intervals(done, boxed_rows(done)[1], consistency.groups, studies=studies)
    summary["interval_studies"] = studies
    if counts:
        summary["run"] = {k: v for k, v in counts.items() if k != "skipped"}
    return summary


def write_csv_atomic(frame: pd.DataFrame, path) -> None:
    write_bytes_atomic(path, frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))


def write_analysis(tree: ResultsTree, counts: dict[str, Any] | None = None, plots: bool = True,
                   formats=None, dpi=None, hedged_answers: str = HEDGED_DEFAULT) -> dict[str, Any]:
    """Write summary.json, hard_positives.csv, by_strategy.csv (and the plots, in ``formats`` at ``dpi``)
    under ``tree/analysis``. The answers are read again with the current reader under ``hedged_answers``
    (``analysis.rereading``); rows whose label that changed are listed as ``answers_reread``."""
    rows, relabelled = reread_answers(read_rows(tree.csv_path, tree.journal_path), hedged_answers)
    grids: dict[str, np.ndarray] = {}

    def load_grid(key: str) -> np.ndarray:
        if key not in grids:
            grids[key] = np.load(tree.grid_path(key))
        return grids[key]

    consistency = consistency_tables(rows, load_grid)
    summary = summarise(rows, load_grid, counts, consistency)
    if relabelled:
        summary["answers_reread"] = {"changed": len(relabelled), "hedged_answers": hedged_answers,
                                     "rows": [vars(r) for r in relabelled]}
    strategies = consistency.strategies
    folder = tree.analysis_dir
    folder.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(consistency.groups, folder / "hard_positives.csv")
    write_csv_atomic(strategies, folder / "by_strategy.csv")
    write_csv_atomic(consistency.comparisons, folder / "variants.csv")
    method_payloads: list[dict[str, Any]] = []
    studies, faithfulness, faith_payloads = study_summary(tree, rows, method_payloads)
    summary.update(studies)
    if not faithfulness.empty:
        studies = {}
        gains = dataset_intervals(finished(rows), None, consistency.groups.iloc[0:0], faithfulness, studies=studies)
        summary.setdefault("intervals", {}).update(gains)
        summary.setdefault("interval_studies", {}).update(studies)
    from medgemma_tui.export.method_analysis import write_method_analysis

    focal_rows = boxed_rows(finished(rows))[1] if not rows.empty else None
    focal = set(focal_rows["key"].astype(str)) if focal_rows is not None and "key" in focal_rows else set()
    summary.update(write_method_analysis(tree, finished(rows), focal, plots, formats, dpi, payloads=method_payloads))
    if plots:
        summary["plots"], failed = write_plots(tree, rows, strategies, formats, dpi, summary=summary,
                                               faithfulness=faith_payloads)
        if failed:
            summary["plot_errors"] = failed
    text = json.dumps(jsonable(summary), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    write_bytes_atomic(folder / "summary.json", text.encode("utf-8"))
    return summary


def study_summary(tree: ResultsTree, rows: pd.DataFrame, methods: list[dict[str, Any]] | None = None
                  ) -> tuple[dict[str, Any], pd.DataFrame, list[dict[str, Any]]]:
    """Robustness and faithfulness from the finished rows' ``robustness/{key}.json``, when present, each
    file read once (those that hold a methods, heads or sanity study are added to ``methods``, for
    ``write_method_analysis``).

    Writes ``analysis/robustness.csv`` and ``analysis/faithfulness.csv``; returns the summary sections,
    the faithfulness table (one row per sample; empty without the study) and the rows' ``faithfulness``
    sections, each with the row's answer label from the CSV (which wins over the one the study kept).
    """
    import pandas as pd

    from medgemma_tui.export.method_analysis import has_method_studies

    done = finished(rows)
    if done.empty:
        return {}, pd.DataFrame(), []
    studies = study_of(done)
    labels = {str(row["key"]): {**{name: row[name] for name in ("answer_label", "finding") if name in done},
                                "study": studies[index]}
              for index, row in done.iterrows()}
    faithfulness: list[dict[str, Any]] = []
    found = 0

    def payloads():
        nonlocal found
        for key in done["key"]:
            path = tree.robustness_path(key)
            if not path.exists():
                continue
            found += 1
            payload = json.loads(path.read_text(encoding="utf-8"))
            if methods is not None and has_method_studies(payload):
                methods.append(payload)
            faith = payload.get(FAITHFULNESS)
            if faith:
                label = labels.get(str(key), {}).get("answer_label", faith.get("answer_label"))
                faithfulness.append({**faith, "answer_label": str(label or "")})
            yield payload

    tables = summarise_studies(payloads(), labels)
    if not found:
        return {}, pd.DataFrame(), []
    if not tables.robustness.empty:
        write_csv_atomic(tables.robustness, tree.analysis_dir / "robustness.csv")
    if not tables.faithfulness.empty:
        write_csv_atomic(tables.faithfulness, tree.analysis_dir / "faithfulness.csv")
    if not tables.one_pixel.empty:
        write_csv_atomic(tables.one_pixel, tree.analysis_dir / "one_pixel.csv")
    return dict(tables.summary), tables.faithfulness, faithfulness


def write_plots(tree: ResultsTree, rows: pd.DataFrame, strategies: pd.DataFrame, formats=None, dpi=None,
                summary: dict[str, Any] | None = None, faithfulness: list[dict[str, Any]] | None = None,
                ) -> tuple[list[str], dict[str, str]]:
    """The dataset plots; returns the names written and, by name, the one-line error of each plot that
    failed (a failing plot never costs the rest of the analysis). With ``summary`` (summary.json's
    numbers), the figures draw its study-bootstrap intervals: ``dataset_intervals.png`` every
    dataset-level figure and ``faithfulness.png`` the gains' intervals in its titles, from ``faithfulness``
    (``study_summary``'s sections; read none when not given). ``captions.md`` gets a caption for each
    figure written (``export.captions``)."""
    folder = tree.analysis_dir
    faith = faithfulness or []
    summaries, layer_types, cells = [], None, None
    for key in finished(rows)["key"] if not rows.empty else []:
        path = tree.meta_path(key)
        if not path.exists():
            continue
        meta = json.loads(path.read_text(encoding="utf-8"))
        summaries.append(meta.get("layer_summary"))
        layer_types = layer_types or meta.get("model", {}).get("layer_types")
        shape = meta.get("map", {}).get("grid_shape")
        cells = cells or (int(np.prod(shape)) if shape else None)
    plots = {
        "metric_distributions.png": lambda path: dataset_figures.plot_metric_distributions(rows, path, formats, dpi),
        "accuracy_by_strategy.png": lambda path: dataset_figures.plot_accuracy_by_strategy(strategies, path, formats,
                                                                                           dpi),
        "dataset_intervals.png": lambda path: dataset_figures.plot_dataset_intervals(summary or {}, path, formats, dpi),
        "faithfulness.png": lambda path: plot_faithfulness(faith, summary, path, formats, dpi),
        "layer_profile.png": lambda path: dataset_figures.plot_layer_profile(summaries, path, layer_types, cells,
                                                                             formats, dpi),
    }
    written, failed = [], {}
    for name, plot in plots.items():
        try:
            path = plot(folder / name)
        except Exception as exc:  # one plot's failure is reported in summary.json; the others still come
            failed[name] = f"{type(exc).__name__}: {first_line(exc)}"
            continue
        if path is not None:
            written.append(path.name)
    write_captions(folder, written, CaptionInputs(summary or {}, strategies))
    return written, failed
