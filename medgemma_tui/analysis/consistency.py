"""Hard-positive consistency across a dataset's variants: answers, attention maps, paraphrase strategies.

A hard-positive group is (image_path, baseline_question): its variants ask the same thing in other
words and should get the same answer and, ideally, look at the same place. Everything here is computed
from per-row results (a results tree's CSV rows) and the rows' maps, without the model:

- ``variant_comparisons``: each variant against its group's original (variant_index 0): answer flip,
  Jensen-Shannon divergence (nats), Pearson r and IoU of the top 10% cells of the two maps;
- ``hard_positive_table``: one row per group with at least two finished variants (hard_positives.csv);
- ``by_strategy_table``: one row per strategy kind (by_strategy.csv);
- ``consistency_summary``: the numbers for summary.json;
- ``consistency_tables``: all four at once.

Conventions, fixed here once:

- Rows with a non-empty ``error`` are not finished and take no part. A finished row without a map (not
  in ``grids``) counts for the answers but not for the attention metrics.
- The original of a group is its row with ``variant_index == 0`` (the first by ``row``, then ``key``,
  when there are several); a group without one has no "against the original" numbers (NaN).
- Answer labels are compared as parsed (``yes``/``no``/``uncertain``): an ``uncertain`` against a
  ``yes`` is a flip. ``consistent`` means every variant's label is the same.
- Pairwise numbers average every unordered pair of the group's variants that have maps; a Pearson r
  that is undefined (a constant map) is left out of its mean.
- Strategy kinds come from ``data.schema.normalise_strategy`` (an original row with no strategy text is
  ``original``); a row naming several kinds counts once in each. ``raw_strategies`` keeps the texts
  that were mapped to the kind, each with its row count.
- Missing numbers are NaN in the tables and None in the summary (JSON has no NaN).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medgemma_tui.analysis.metrics import js_divergence, pearson, top_iou
from medgemma_tui.data.schema import STRATEGY_KINDS, normalise_strategy

__all__ = [
    "Grids",
    "Consistency",
    "strategy_kinds",
    "variant_comparisons",
    "hard_positive_table",
    "by_strategy_table",
    "consistency_summary",
    "consistency_tables",
    "COMPARISON_COLUMNS",
    "HARD_POSITIVE_COLUMNS",
    "BY_STRATEGY_COLUMNS",
]

# key -> 16x16 map: a dict, or a loader (a missing map is a KeyError or FileNotFoundError)
Grids = Mapping[str, np.ndarray] | Callable[[str], np.ndarray]

REQUIRED = ("key", "image_path", "baseline_question", "variant_index", "strategy", "answer_label")
TOP_FRACTION = 0.1

COMPARISON_COLUMNS = (
    "key", "original_key", "image_path", "baseline_question", "variant_index", "strategy", "strategy_kinds",
    "answer_label", "original_label", "flip", "correct", "js", "pearson", "top_iou",
)
HARD_POSITIVE_COLUMNS = (
    "image_path", "baseline_question", "variants", "labels", "consistent", "agree_with_original",
    "original_key", "original_label", "mean_js", "mean_pearson", "mean_top_iou",
    "mean_js_vs_original", "mean_pearson_vs_original", "mean_top_iou_vs_original", "keys",
)
BY_STRATEGY_COLUMNS = (
    "strategy", "rows", "scored", "studies", "accuracy", "compared", "flips", "flip_rate",
    "mean_js_vs_original", "mean_pearson_vs_original", "mean_top_iou_vs_original", "raw_strategies",
)


def strategy_kinds(strategy: Any, variant_index: Any = None) -> tuple[str, ...]:
    """Named kinds of a row's free-text strategy; an original row with no text is ("original",)."""
    text = "" if _missing(strategy) else str(strategy)
    if not text.strip() and _index(variant_index) == 0:
        return ("original",)
    return normalise_strategy(text)


# ---- per variant ------------------------------------------------------------------------------------


def variant_comparisons(rows: pd.DataFrame, grids: Grids) -> pd.DataFrame:
    """Each finished non-original variant against its group's original (groups without one are left out)."""
    done = _finished(rows)
    load = _loader(grids)
    out = []
    for (image, baseline), group in _groups(done):
        original = _original(group)
        if original is None:
            continue
        reference = load(original["key"])
        for _, row in group.iterrows():
            if row["key"] == original["key"]:
                continue
            pair = _pair_metrics(reference, load(row["key"]))
            out.append({
                "key": row["key"],
                "original_key": original["key"],
                "image_path": image,
                "baseline_question": baseline,
                "variant_index": _index(row["variant_index"]),
                "strategy": _text(row["strategy"]),
                "strategy_kinds": "+".join(strategy_kinds(row["strategy"], row["variant_index"])),
                "answer_label": _text(row["answer_label"]),
                "original_label": _text(original["answer_label"]),
                "flip": _text(row["answer_label"]) != _text(original["answer_label"]),
                "correct": _bool(row.get("correct")),
                **pair,
            })
    return pd.DataFrame(out, columns=COMPARISON_COLUMNS)


# ---- per group --------------------------------------------------------------------------------------


def hard_positive_table(rows: pd.DataFrame, grids: Grids) -> pd.DataFrame:
    """One row per (image_path, baseline_question) with at least two finished variants (hard_positives.csv)."""
    done = _finished(rows)
    load = _loader(grids)
    out = []
    for (image, baseline), group in _groups(done):
        if len(group) < 2:
            continue
        keys = group["key"].tolist()
        labels = [_text(v) for v in group["answer_label"]]
        maps = {k: load(k) for k in keys}
        pairs = [_pair_metrics(maps[a], maps[b]) for a, b in itertools.combinations(keys, 2)]
        original = _original(group)
        agree = math.nan
        vs_original: list[dict[str, float]] = []
        if original is not None:
            others = [(k, label) for k, label in zip(keys, labels, strict=True) if k != original["key"]]
            agree = float(np.mean([label == _text(original["answer_label"]) for _, label in others]))
            vs_original = [_pair_metrics(maps[original["key"]], maps[k]) for k, _ in others]
        out.append({
            "image_path": image,
            "baseline_question": baseline,
            "variants": len(group),
            "labels": ";".join(labels),
            "consistent": len(set(labels)) == 1,
            "agree_with_original": agree,
            "original_key": original["key"] if original is not None else "",
            "original_label": _text(original["answer_label"]) if original is not None else "",
            "mean_js": _mean(p["js"] for p in pairs),
            "mean_pearson": _mean(p["pearson"] for p in pairs),
            "mean_top_iou": _mean(p["top_iou"] for p in pairs),
            "mean_js_vs_original": _mean(p["js"] for p in vs_original),
            "mean_pearson_vs_original": _mean(p["pearson"] for p in vs_original),
            "mean_top_iou_vs_original": _mean(p["top_iou"] for p in vs_original),
            "keys": ";".join(keys),
        })
    return pd.DataFrame(out, columns=HARD_POSITIVE_COLUMNS)


# ---- per strategy kind ------------------------------------------------------------------------------


def by_strategy_table(rows: pd.DataFrame, grids: Grids, comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per strategy kind: accuracy over its rows, answer flips and map agreement against the original.

    ``accuracy`` counts every finished row of the kind with a yes/no ground truth (``scored``);
    ``flip_rate`` and the map means count its variants that have an original in their group
    (``compared``; the ``original`` kind has none). Kinds follow ``STRATEGY_KINDS`` order, then any
    other name; only kinds with rows appear.
    """
    done = _finished(rows)
    if comparisons is None:
        comparisons = variant_comparisons(rows, grids)
    members: dict[str, list[int]] = {}
    raw: dict[str, dict[str, int]] = {}
    for idx, row in done.iterrows():
        text = _text(row["strategy"])
        for kind in strategy_kinds(row["strategy"], row["variant_index"]):
            members.setdefault(kind, []).append(idx)
            if text.strip():
                raw.setdefault(kind, {}).setdefault(text, 0)
                raw[kind][text] += 1
    compared: dict[str, list[int]] = {}
    for idx, kinds in comparisons["strategy_kinds"].items():
        for kind in str(kinds).split("+"):
            compared.setdefault(kind, []).append(idx)
    order = [k for k in STRATEGY_KINDS if k in members] + sorted(k for k in members if k not in STRATEGY_KINDS)
    out = []
    for kind in order:
        part = done.loc[members[kind]]
        verdicts = [_bool(v) for v in part["correct"]] if "correct" in part else [None] * len(part)
        scored = [c for c in verdicts if c is not None]
        cmp = comparisons.loc[compared.get(kind, [])]
        flips = int(cmp["flip"].astype(bool).sum())
        out.append({
            "strategy": kind,
            "rows": len(part),
            "scored": len(scored),
            "studies": _studies(part[[c is not None for c in verdicts]]),  # behind the accuracy, as n is
            "accuracy": float(np.mean(scored)) if scored else math.nan,
            "compared": len(cmp),
            "flips": flips,
            "flip_rate": flips / len(cmp) if len(cmp) else math.nan,
            "mean_js_vs_original": _mean(cmp["js"]),
            "mean_pearson_vs_original": _mean(cmp["pearson"]),
            "mean_top_iou_vs_original": _mean(cmp["top_iou"]),
            "raw_strategies": " | ".join(f"{t} ({n})" for t, n in sorted(raw.get(kind, {}).items())),
        })
    return pd.DataFrame(out, columns=BY_STRATEGY_COLUMNS)


def _studies(rows: pd.DataFrame) -> int:
    """Distinct studies among ``rows``: ``study_id``, else the film (as the study bootstrap groups rows)."""
    study = rows["study_id"].astype(str) if "study_id" in rows else pd.Series("", index=rows.index, dtype=str)
    film = rows["image_path"].astype(str) if "image_path" in rows else rows["key"].astype(str)
    return int(study.where(study.str.strip() != "", film).nunique())


# ---- the summary ------------------------------------------------------------------------------------


def consistency_summary(groups: pd.DataFrame, strategies: pd.DataFrame, comparisons: pd.DataFrame) -> dict[str, Any]:
    """The hard-positive numbers of summary.json (None where there is nothing to average)."""
    if groups.empty and comparisons.empty:
        return {"hard_positive_groups": 0}
    flips = comparisons["flip"].astype(bool) if not comparisons.empty else pd.Series(dtype=bool)
    summary: dict[str, Any] = {
        "hard_positive_groups": len(groups),
        "hard_positive_answer_consistency": _none(groups["consistent"].astype(bool).mean()) if len(groups) else None,
        "hard_positive_agree_with_original": _none(_mean(groups["agree_with_original"])),
        "hard_positive_variants_compared": len(comparisons),
        "hard_positive_flip_rate": _none(flips.mean()) if len(flips) else None,
        "mean_js_variants": _none(_mean(groups["mean_js"])),
        "mean_pearson_variants": _none(_mean(groups["mean_pearson"])),
        "mean_top_iou_variants": _none(_mean(groups["mean_top_iou"])),
        "mean_js_vs_original": _none(_mean(comparisons["js"])),
        "mean_pearson_vs_original": _none(_mean(comparisons["pearson"])),
        "mean_top_iou_vs_original": _none(_mean(comparisons["top_iou"])),
        "by_strategy": {
            row["strategy"]: {
                "rows": int(row["rows"]),
                "accuracy": _none(row["accuracy"]),
                "flip_rate": _none(row["flip_rate"]),
                "mean_js_vs_original": _none(row["mean_js_vs_original"]),
            }
            for _, row in strategies.iterrows()
        },
    }
    return summary


@dataclass
class Consistency:
    comparisons: pd.DataFrame  # one row per variant against its original (COMPARISON_COLUMNS)
    groups: pd.DataFrame  # analysis/hard_positives.csv (HARD_POSITIVE_COLUMNS)
    strategies: pd.DataFrame  # analysis/by_strategy.csv (BY_STRATEGY_COLUMNS)
    summary: dict[str, Any]  # merged into analysis/summary.json


def consistency_tables(rows: pd.DataFrame, grids: Grids) -> Consistency:
    """Everything at once; each map is loaded once whatever ``grids`` is."""
    load = _loader(grids)
    cache: dict[str, np.ndarray | None] = {}

    def cached(key: str) -> np.ndarray:
        if key not in cache:
            cache[key] = load(key)
        return cache[key]

    comparisons = variant_comparisons(rows, cached)
    groups = hard_positive_table(rows, cached)
    strategies = by_strategy_table(rows, cached, comparisons)
    return Consistency(comparisons, groups, strategies, consistency_summary(groups, strategies, comparisons))


# ---- helpers ----------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _index(value: Any) -> int:
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return 0
    return int(float(value))


def _bool(value: Any) -> bool | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        return True if text == "true" else False if text == "false" else None
    return bool(value)


def _none(value: Any) -> float | None:
    return None if _missing(value) else float(value)


def _mean(values) -> float:
    vals = [float(v) for v in values if not _missing(v)]
    return float(np.mean(vals)) if vals else math.nan


def _finished(rows: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise ValueError(f"per-row results lack the column(s) {', '.join(missing)}")
    if "error" in rows.columns and not rows.empty:
        rows = rows[rows["error"].map(_text).str.strip() == ""]
    return rows.reset_index(drop=True)


def _groups(done: pd.DataFrame):
    """(image_path, baseline_question) groups in first-appearance order, variants sorted by index."""
    if done.empty:
        return
    done = done.assign(_vi=done["variant_index"].map(_index))
    sort = ["_vi", "row", "key"] if "row" in done.columns else ["_vi", "key"]
    for name, group in done.groupby(["image_path", "baseline_question"], sort=False):
        yield name, group.sort_values(sort, kind="stable").drop(columns="_vi")


def _original(group: pd.DataFrame) -> pd.Series | None:
    originals = group[group["variant_index"].map(_index) == 0]
    return None if originals.empty else originals.iloc[0]


def _loader(grids: Grids) -> Callable[[str], np.ndarray | None]:
    def load(key: str) -> np.ndarray | None:
        try:
            return grids(key) if callable(grids) else grids[key]
        except (KeyError, FileNotFoundError):
            return None

    return load


def _pair_metrics(a: np.ndarray | None, b: np.ndarray | None) -> dict[str, float]:
    if a is None or b is None:
        return {"js": math.nan, "pearson": math.nan, "top_iou": math.nan}
    return {"js": js_divergence(a, b), "pearson": pearson(a, b), "top_iou": top_iou(a, b, TOP_FRACTION)}
