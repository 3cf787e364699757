"""Two runs over the same rows set side by side: what changed between them, row by row and over the dataset.

The runs may differ in anything (the model, a PEFT adapter, the prompt, the config, the code): rows are
joined on ``key``, and a row finished in one run only is listed (``unpaired``), never dropped silently.

Per row (``row_shifts``), run A against run B:

- the answers, their labels and whether the verdict flipped (``flip``, e.g. ``yes->no``);
- ``js``, the Jensen-Shannon divergence of the two maps in nats (0 = the same map, at most ln 2), and
  ``spearman``, the rank correlation of their cells;
- how far the top cell moved (the first largest cell in row-major order, as the pointing game reads it):
  ``top_shift_cells`` in grid cells and ``top_shift_px`` in the film's pixels (cell (i, j) of a W x H film
  centred at ((j + 0.5) W / 16, (i + 0.5) H / 16), as the pointing game maps it);
- the mass moved into the lungs, the cardiomediastinum and the boxes (B - A of ``inside_lungs_ratio``,
  ``inside_mediastinum_ratio`` and ``mass_in_box``; negative = moved out), and the pointing game before
  and after.

Over the dataset (``paired_differences``): B - A of the accuracy, the pointing game, the mass-in-box lift
and the hard-positive answer consistency, each with a paired study-bootstrap 95% interval: the same
studies are drawn for both runs in every replicate (``analysis.intervals.paired_difference_ci``; Davison
and Hinkley 1997, section 3.8), so a difference is bounded by the spread of the *change*, not of either
run. ``flip_counts`` counts the flips by direction and by finding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from medgemma_tui.analysis.grounding import cell_centres
from medgemma_tui.analysis.intervals import MIN_STUDIES, RESAMPLES, SEED, paired_difference_ci
from medgemma_tui.analysis.metrics import js_divergence
from medgemma_tui.analysis.row_groups import finished, is_focal, study_of
from medgemma_tui.analysis.sanity import spearman

MASS_SHIFTS = (("lungs", "inside_lungs_ratio"), ("mediastinum", "inside_mediastinum_ratio"), ("box", "mass_in_box"))
PAIRED_FIGURES = ("accuracy", "pointing_game", "mass_in_box_lift", "hard_positive_answer_consistency")
GridLoader = Callable[[str], np.ndarray]


def pair_rows(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rows finished in both runs, joined on ``key`` with ``_a``/``_b`` suffixes; every other key, one line
    each: ``key``, ``in`` (the run that finished it, or empty), ``reason`` (``failed in b``, ``not in a``,
    ``failed in a, not in b``, ...))."""
    done_a, done_b = finished(a), finished(b)
    both = done_a.merge(done_b, on="key", suffixes=("_a", "_b"), how="inner", sort=False)

    def state(rows: pd.DataFrame, done: pd.DataFrame) -> dict[str, str]:
        out = {str(k): "failed" for k in rows["key"]}
        out.update({str(k): "done" for k in done["key"]})
        return out

    in_a, in_b = state(a, done_a), state(b, done_b)
    unpaired = []
    for key in dict.fromkeys([*in_a, *in_b]):
        states = {"a": in_a.get(key, "not"), "b": in_b.get(key, "not")}
        if states["a"] == states["b"] == "done":
            continue
        finished_in = [run for run, st in states.items() if st == "done"]
        reason = ", ".join(f"{st} in {run}" for run, st in states.items() if st != "done")
        unpaired.append({"key": key, "in": finished_in[0] if finished_in else "", "reason": reason})
    return both.reset_index(drop=True), pd.DataFrame(unpaired, columns=["key", "in", "reason"])


def top_cell(grid: np.ndarray) -> tuple[int, int]:
    """The first largest cell in row-major order (the pointing game's top cell)."""
    g = np.asarray(grid, dtype=np.float64)
    index = int(np.argmax(g))
    return index // g.shape[1], index % g.shape[1]


def top_shift(a: np.ndarray, b: np.ndarray, film_size: tuple[float, float]) -> tuple[float, float]:
    """How far the top cell moved from map ``a`` to map ``b``: (in cells, in the film's pixels)."""
    (ra, ca), (rb, cb) = top_cell(a), top_cell(b)
    xs, ys = cell_centres((float(film_size[0]), float(film_size[1])), np.asarray(a).shape)
    return math.hypot(ra - rb, ca - cb), math.hypot(xs[ca] - xs[cb], ys[ra] - ys[rb])


def _label(value: Any) -> str:
    text = str(value).strip().lower()
    return text if text else "(none)"


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def row_shifts(both: pd.DataFrame, grids_a: GridLoader, grids_b: GridLoader) -> pd.DataFrame:
    """One line per paired row (``pair_rows``), most moved (largest JS) first."""
    lines = []
    for _, row in both.iterrows():
        key = str(row["key"])
        a, b = np.asarray(grids_a(key), np.float64), np.asarray(grids_b(key), np.float64)
        label_a, label_b = _label(row.get("answer_label_a")), _label(row.get("answer_label_b"))
        width, height = _number(row.get("image_width_a")), _number(row.get("image_height_a"))
        cells, px = top_shift(a, b, (width, height)) if math.isfinite(width) and math.isfinite(height) \
            else (top_shift(a, b, (a.shape[1], a.shape[0]))[0], math.nan)
        line: dict[str, Any] = {
            "key": key,
            "study": str(row.get("study_id_a") or "").strip() or str(row.get("image_path_a", "")),
            "image_path": row.get("image_path_a", ""),
            "question": row.get("question_a", ""),
            "finding": row.get("finding_a", ""),
            "bbox": row.get("bbox_a", ""),
            "ground_truth": row.get("ground_truth_a", ""),
            "answer_a": row.get("answer_a", ""),
            "answer_b": row.get("answer_b", ""),
            "label_a": label_a,
            "label_b": label_b,
            "correct_a": row.get("correct_a"),
            "correct_b": row.get("correct_b"),
            "flipped": label_a != label_b,
            "flip": f"{label_a}->{label_b}" if label_a != label_b else "",
            "js": js_divergence(a, b),
            "spearman": spearman(a, b),
            "top_a": "{},{}".format(*top_cell(a)),
            "top_b": "{},{}".format(*top_cell(b)),
            "top_shift_cells": cells,
            "top_shift_px": px,
        }
        for name, column in MASS_SHIFTS:
            before, after = _number(row.get(f"{column}_a")), _number(row.get(f"{column}_b"))
            line[f"{name}_a"], line[f"{name}_b"], line[f"{name}_shift"] = before, after, after - before
        line["pointing_a"] = _number(row.get("pointing_hit_a"))
        line["pointing_b"] = _number(row.get("pointing_hit_b"))
        lines.append(line)
    columns = ["key", "study", "image_path", "question", "finding", "bbox", "ground_truth", "answer_a", "answer_b",
               "label_a", "label_b", "correct_a", "correct_b", "flipped", "flip", "js", "spearman", "top_a", "top_b",
               "top_shift_cells", "top_shift_px", *(f"{n}_{s}" for n, _ in MASS_SHIFTS for s in ("a", "b", "shift")),
               "pointing_a", "pointing_b"]
    table = pd.DataFrame(lines, columns=columns)
    return table.sort_values("js", ascending=False, kind="stable").reset_index(drop=True)


def _correct(value: Any) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return math.nan
    return 1.0 if bool(value) else 0.0


def _consistency_groups(both: pd.DataFrame) -> pd.DataFrame:
    """Hard-positive groups (film, baseline question) with at least two rows paired: whether each run's
    labels all agree, and the group's study."""
    if both.empty:
        return pd.DataFrame(columns=["study", "a", "b"])
    frame = both.assign(_study=study_of(both.rename(columns={"study_id_a": "study_id", "image_path_a": "image_path"})),
                        _question=both["baseline_question_a"].astype(str).where(
                            both["baseline_question_a"].astype(str).str.strip() != "", both["question_a"].astype(str)))
    out = []
    for _, group in frame.groupby(["image_path_a", "_question"], sort=False):
        if len(group) < 2:
            continue
        out.append({"study": group["_study"].iloc[0],
                    "a": float(group["answer_label_a"].astype(str).nunique() == 1),
                    "b": float(group["answer_label_b"].astype(str).nunique() == 1)})
    return pd.DataFrame(out, columns=["study", "a", "b"])


def _paired(name: str, before: np.ndarray, after: np.ndarray, studies: np.ndarray) -> dict[str, Any]:
    keep = np.isfinite(before) & np.isfinite(after)
    before, after, studies = before[keep], after[keep], studies[keep]
    if not keep.any():
        return {"name": name, "a": None, "b": None, "difference": None, "interval": None, "n": 0, "studies": 0}
    low, high = paired_difference_ci(after, before, studies, n=RESAMPLES, seed=SEED, min_groups=MIN_STUDIES)
    interval = None if math.isnan(low) or math.isnan(high) else [float(low), float(high)]
    return {"name": name, "a": float(before.mean()), "b": float(after.mean()),
            "difference": float(after.mean() - before.mean()), "interval": interval, "n": int(keep.sum()),
            "studies": len(set(studies.tolist()))}


def paired_differences(both: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """B - A of each dataset figure over the rows both runs finished, with its paired study-bootstrap interval.

    ``accuracy`` over the rows with a yes/no ground truth; ``pointing_game`` and ``mass_in_box_lift`` over
    the boxed rows of focal findings; ``hard_positive_answer_consistency`` over the hard-positive groups.
    Each entry: ``a``, ``b``, ``difference``, ``interval`` ([low, high] or None), ``n``, ``studies``.
    """
    out: dict[str, dict[str, Any]] = {}
    if both.empty:
        return {name: _paired(name, np.zeros(0), np.zeros(0), np.zeros(0, object)) for name in PAIRED_FIGURES}
    studies = study_of(both.rename(columns={"study_id_a": "study_id", "image_path_a": "image_path"})).to_numpy()
    correct_a = np.array([_correct(v) for v in both.get("correct_a", pd.Series(math.nan, index=both.index))])
    correct_b = np.array([_correct(v) for v in both.get("correct_b", pd.Series(math.nan, index=both.index))])
    out["accuracy"] = _paired("accuracy", correct_a, correct_b, studies)
    boxed = both["bbox_a"].astype(str).str.strip() != "" if "bbox_a" in both else pd.Series(False, index=both.index)
    focal = boxed & both.get("finding_a", pd.Series("", index=both.index)).astype(str).map(is_focal)
    focal = focal.to_numpy()
    for name, column in (("pointing_game", "pointing_hit"), ("mass_in_box_lift", "mass_in_box_lift")):
        if f"{column}_a" in both and f"{column}_b" in both:
            before = pd.to_numeric(both[f"{column}_a"], errors="coerce").to_numpy(float)[focal]
            after = pd.to_numeric(both[f"{column}_b"], errors="coerce").to_numpy(float)[focal]
            out[name] = _paired(name, before, after, studies[focal])
        else:
            out[name] = _paired(name, np.zeros(0), np.zeros(0), np.zeros(0, object))
    groups = _consistency_groups(both)
    out["hard_positive_answer_consistency"] = _paired(
        "hard_positive_answer_consistency", groups["a"].to_numpy(float), groups["b"].to_numpy(float),
        groups["study"].to_numpy(object))
    return out


def flip_counts(shifts: pd.DataFrame) -> dict[str, Any]:
    """How many verdicts flipped, by direction (``yes->no``) and by finding (then direction)."""
    flipped = shifts[shifts["flipped"].astype(bool)] if not shifts.empty else shifts
    by_direction = {str(k): int(v) for k, v in flipped["flip"].value_counts().sort_index().items()}
    by_finding: dict[str, dict[str, int]] = {}
    for _, row in flipped.iterrows():
        finding = str(row["finding"]).strip() or "(none)"
        by_finding.setdefault(finding, {})
        by_finding[finding][row["flip"]] = by_finding[finding].get(row["flip"], 0) + 1
    return {"rows": int(len(shifts)), "flipped": int(len(flipped)), "by_direction": by_direction,
            "by_finding": dict(sorted(by_finding.items()))}


def shift_summary(shifts: pd.DataFrame) -> dict[str, Any]:
    """Median, quartiles and mean of each per-row shift (JS, rank correlation, top-cell and mass moves)."""
    out: dict[str, Any] = {}
    for name in ("js", "spearman", "top_shift_cells", "top_shift_px", "lungs_shift", "mediastinum_shift",
                 "box_shift"):
        values = pd.to_numeric(shifts[name], errors="coerce").to_numpy(float) if name in shifts else np.zeros(0)
        values = values[np.isfinite(values)]
        if values.size == 0:
            out[name] = {"mean": None, "median": None, "q1": None, "q3": None, "n": 0}
            continue
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        out[name] = {"mean": float(values.mean()), "median": float(median), "q1": float(q1), "q3": float(q3),
                     "n": int(values.size)}
    moved = pd.to_numeric(shifts.get("top_shift_cells", pd.Series(dtype=float)), errors="coerce")
    out["top_cell_moved"] = int((moved > 0).sum())
    return out


def head_changes(heads_a: pd.DataFrame, heads_b: pd.DataFrame) -> pd.DataFrame:
    """Per layer x head (``analysis/heads.csv`` of both runs): the localisation before, after and B - A,
    most changed pointing game first."""
    cols = ["layer", "head", "pointing_game", "mass_in_box_lift", "rank"]
    a = heads_a[[c for c in cols if c in heads_a]]
    b = heads_b[[c for c in cols if c in heads_b]]
    table = a.merge(b, on=["layer", "head"], suffixes=("_a", "_b"), how="inner")
    for name in ("pointing_game", "mass_in_box_lift", "rank"):
        if f"{name}_a" in table and f"{name}_b" in table:
            table[f"{name}_change"] = table[f"{name}_b"].astype(float) - table[f"{name}_a"].astype(float)
    order = table["pointing_game_change"].abs() if "pointing_game_change" in table else table["layer"]
    return table.assign(_order=order).sort_values(["_order", "layer", "head"], ascending=[False, True, True],
                                                   kind="stable").drop(columns="_order").reset_index(drop=True)
