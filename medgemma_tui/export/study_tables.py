"""The studies of a whole tree as tables: one row per sample and perturbation, one per sample's curves.

Read from the contents of a tree's ``robustness/{key}.json`` files; no model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from medgemma_tui.analysis.averages import finite_mean as _mean


@dataclass
class StudyTables:
    robustness: pd.DataFrame  # one row per sample and perturbation
    faithfulness: pd.DataFrame  # one row per sample
    summary: dict[str, Any]  # {"robustness": {...}, "faithfulness": {...}}, the sections that have rows


ROBUSTNESS_COLUMNS = ("key", "perturbation", "strength", "reference_label", "answer_label", "flip", "js",
                      "pearson", "top_iou", "mass_outside_film")
FAITHFULNESS_COLUMNS = ("key", "baseline", "steps", "deletion_auc", "deletion_auc_random", "deletion_gain",
                        "insertion_auc", "insertion_auc_random", "insertion_gain", "full_image_logprob",
                        "neutral_image_logprob")
SUMMARY_DELTAS = ("entropy_norm", "inside_body_ratio", "inside_lungs_ratio", "mass_in_box", "image_share")


def summarise_studies(files: Iterable[Mapping[str, Any]]) -> StudyTables:
    """Tables and summary numbers from the contents of a tree's ``robustness/{key}.json`` files."""
    rob_rows, faith_rows = [], []
    for payload in files:
        rob = payload.get("robustness")
        if rob:
            for entry in rob.get("perturbations", []):
                rob_rows.append({
                    "key": rob.get("key", payload.get("key")),
                    "perturbation": entry["name"],
                    "strength": entry.get("strength"),
                    "reference_label": rob["reference"]["answer_label"],
                    "answer_label": entry["answer_label"],
                    "flip": bool(entry["flip"]),
                    "js": entry.get("js"),
                    "pearson": entry.get("pearson"),
                    "top_iou": entry.get("top_iou"),
                    "mass_outside_film": entry.get("mass_outside_film"),
                    **{f"delta_{k}": v for k, v in entry.get("metric_deltas", {}).items()},
                    **{f"delta_{k}": v for k, v in entry.get("share_deltas", {}).items()},
                })
        faith = payload.get("faithfulness")
        if faith:
            faith_rows.append({"key": payload.get("key"), **{c: faith.get(c) for c in FAITHFULNESS_COLUMNS[1:]}})
    robustness = pd.DataFrame(rob_rows)
    if robustness.empty:
        robustness = pd.DataFrame(columns=ROBUSTNESS_COLUMNS)
    faithfulness = pd.DataFrame(faith_rows, columns=FAITHFULNESS_COLUMNS)
    summary: dict[str, Any] = {}
    if not robustness.empty:
        summary["robustness"] = {
            "samples": int(robustness["key"].nunique()),
            "flip_rate": _mean(robustness["flip"]),
            "mean_js": _mean(robustness["js"]),
            "by_perturbation": {
                str(name): {
                    "n": len(part),
                    "flip_rate": _mean(part["flip"]),
                    "mean_js": _mean(part["js"]),
                    "mean_pearson": _mean(part["pearson"]),
                    "mean_top_iou": _mean(part["top_iou"]),
                    **{f"mean_delta_{k}": _mean(part[f"delta_{k}"]) for k in SUMMARY_DELTAS
                       if f"delta_{k}" in part},
                }
                for name, part in robustness.groupby("perturbation", sort=False)
            },
        }
    if not faithfulness.empty:
        summary["faithfulness"] = {
            "samples": len(faithfulness),
            **{f"mean_{c}": _mean(faithfulness[c]) for c in FAITHFULNESS_COLUMNS[3:]},
            "deletion_beats_random": _mean(faithfulness["deletion_gain"].astype(float) > 0),
            "insertion_beats_random": _mean(faithfulness["insertion_gain"].astype(float) > 0),
        }
    return StudyTables(robustness, faithfulness, summary)
