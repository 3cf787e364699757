"""The studies of a whole tree as tables: one row per sample and perturbation, one per sample's curves.

Read from the contents of a tree's ``robustness/{key}.json`` files; no model. The faithfulness table
has each sample's AUCs (log-probability and probability curves) and ERASER's comprehensiveness and
sufficiency (AOPC over its bins), the random orders' mean and SD, the gains and the ``beats_random``
flags; its summary gives their means, the share of samples that beat random, and the same split by
answer label (a "no" answer's deletion curve follows the probability of "no", which removing a finding's
evidence need not lower) and by finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from medgemma_tui.analysis.averages import finite_mean as _mean
from medgemma_tui.analysis.intervals import bootstrap_ci
from medgemma_tui.registry import FAITHFULNESS, ONE_PIXEL, ROBUSTNESS


@dataclass
class StudyTables:
    robustness: pd.DataFrame  # one row per sample and perturbation
    faithfulness: pd.DataFrame  # one row per sample
    summary: dict[str, Any]  # by study name, the robustness, faithfulness and one-pixel summaries with rows
    one_pixel: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per sample attacked


ONE_PIXEL_COLUMNS = ("key", "study", "finding", "reference_label", "answer_label", "flip", "verdict_displaced",
                     "logprob_drop", "queries", "generations", "pixels", "region", "js", "pearson", "top_iou",
                     "seconds")


ROBUSTNESS_COLUMNS = ("key", "perturbation", "strength", "reference_label", "answer_label", "flip", "js",
                      "pearson", "top_iou", "mass_outside_film")
# the study's names: deletion_auc, deletion_auc_random, ..., and for the probability curves deletion_auc_prob,
# deletion_auc_prob_random, deletion_auc_prob_random_sd, deletion_gain_prob, ...
CURVE_COLUMNS = tuple(f"{curve}_{column}" for curve in ("deletion", "insertion") for kind in ("", "_prob")
                      for column in (f"auc{kind}", f"auc{kind}_random", f"auc{kind}_random_sd", f"gain{kind}",
                                     f"z{kind}", f"orders_beaten{kind}"))
# ERASER (DeYoung et al. 2020) on the same orders: comprehensiveness_aopc, _aopc_random, _aopc_random_sd, _gain, ...
ERASER_SCORES = ("comprehensiveness", "sufficiency")
ERASER_COLUMNS = tuple(f"{score}_{column}" for score in ERASER_SCORES
                       for column in ("aopc", "aopc_random", "aopc_random_sd", "gain", "z", "orders_beaten"))
FLAG_COLUMNS = (*(f"{curve}_beats_random{kind}" for curve in ("deletion", "insertion") for kind in ("", "_prob")),
                *(f"{score}_beats_random" for score in ERASER_SCORES))
FAITHFULNESS_COLUMNS = ("key", "answer_label", "finding", "target_token", "baseline", "steps", "random_orders",
                        *CURVE_COLUMNS, *ERASER_COLUMNS, *FLAG_COLUMNS, "full_image_logprob", "neutral_image_logprob",
                        "full_image_prob", "neutral_image_prob")
SUMMARY_COLUMNS = (*CURVE_COLUMNS, *ERASER_COLUMNS, "full_image_prob", "neutral_image_prob")  # averaged
GAIN_COLUMNS = (*(f"{curve}_gain{kind}" for curve in ("deletion", "insertion") for kind in ("", "_prob")),
                *(f"{score}_gain" for score in ERASER_SCORES))  # > 0: the map beats the random orders' mean
SUMMARY_DELTAS = ("entropy_norm", "inside_body_ratio", "inside_lungs_ratio", "mass_in_box", "image_share")


def faithfulness_row(key: Any, faith: Mapping[str, Any], labels: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One sample's faithfulness numbers; the answer label and finding from ``labels`` (the CSV) when there."""
    row = {c: faith.get(c) for c in FAITHFULNESS_COLUMNS}
    row.update(key=key, target_token=(faith.get("target") or {}).get("text"),
               random_orders=faith.get("random_order_count", len(faith.get("random_orders", []))))
    row.update({k: v for k, v in labels.get(str(key), {}).items() if k in ("answer_label", "finding")})
    row["answer_label"] = str(row["answer_label"] or "")
    row["finding"] = str(row["finding"] or "")
    return row


def faithfulness_summary(part: pd.DataFrame) -> dict[str, Any]:
    """Means of the numbers, the share of samples that beat random (by the flag and by a positive gain)."""
    out: dict[str, Any] = {"samples": len(part), "random_orders": _mean(part["random_orders"])}
    out.update({f"mean_{c}": _mean(part[c]) for c in SUMMARY_COLUMNS})
    out.update({flag: _mean(part[flag].astype(float)) for flag in FLAG_COLUMNS})
    out.update({f"{gain}_positive": _positive_share(part[gain]) for gain in GAIN_COLUMNS})
    return out


def _positive_share(values: pd.Series) -> float | None:
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return _mean((numbers > 0).astype(float).where(numbers.notna()))


def summarise_studies(files: Iterable[Mapping[str, Any]], labels: Mapping[str, Mapping[str, Any]] | None = None
                      ) -> StudyTables:
    """Tables and summary numbers from the contents of a tree's ``robustness/{key}.json`` files.

    ``labels``: by key, a row's ``answer_label`` and ``finding`` (from the tree's CSV), which win over
    the ones the study kept."""
    labels = labels or {}
    rob_rows, faith_rows, pixel_rows = [], [], []
    payloads = list(files)
    for payload in payloads:
        rob = payload.get(ROBUSTNESS)
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
        faith = payload.get(FAITHFULNESS)
        if faith:
            faith_rows.append(faithfulness_row(payload.get("key"), faith, labels))
        attack = payload.get(ONE_PIXEL)
        if attack:
            pixel_rows.append(one_pixel_row(payload.get("key"), attack, labels))
    robustness = pd.DataFrame(rob_rows)
    if robustness.empty:
        robustness = pd.DataFrame(columns=ROBUSTNESS_COLUMNS)
    faithfulness = pd.DataFrame(faith_rows, columns=FAITHFULNESS_COLUMNS)
    summary: dict[str, Any] = {}
    if not robustness.empty:
        summary[ROBUSTNESS] = {
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
        summary[FAITHFULNESS] = {
            **faithfulness_summary(faithfulness),
            "beats_random_rule": next((f["beats_random_rule"] for f in (p.get(FAITHFULNESS) for p in payloads)
                                       if f and f.get("beats_random_rule")), None),
            "by_answer_label": {str(label or "(none)"): faithfulness_summary(part)
                                for label, part in faithfulness.groupby("answer_label", sort=True)},
            "by_finding": {str(finding or "(none)"): faithfulness_summary(part)
                           for finding, part in faithfulness.groupby("finding", sort=True)},
        }
    one_pixel = pd.DataFrame(pixel_rows, columns=ONE_PIXEL_COLUMNS)
    if not one_pixel.empty:
        summary[ONE_PIXEL] = {**one_pixel_summary(one_pixel),
                                "by_finding": {str(finding or "(none)"): one_pixel_summary(part)
                                               for finding, part in one_pixel.groupby("finding", sort=True)}}
    return StudyTables(robustness, faithfulness, summary, one_pixel)


def one_pixel_row(key: Any, attack: Mapping[str, Any], labels: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One attacked sample: flipped or not, how far the verdict's log-probability fell, what it cost."""
    known = labels.get(str(key), {})
    return {
        "key": key,
        "study": str(known.get("study") or key),
        "finding": str(known.get("finding") or attack.get("finding") or ""),
        "reference_label": (attack.get("reference") or {}).get("answer_label"),
        "answer_label": attack.get("answer_label"),
        "flip": bool(attack.get("flip")),
        "verdict_displaced": bool(attack.get("verdict_displaced")),
        "logprob_drop": attack.get("logprob_drop"),
        "queries": attack.get("queries"),
        "generations": attack.get("generations"),
        "pixels": len(attack.get("pixels") or ()),
        "region": attack.get("region"),
        **{name: attack.get(name) for name in ("js", "pearson", "top_iou", "seconds")},
    }


def one_pixel_summary(part: pd.DataFrame) -> dict[str, Any]:
    """The flip rate with its 95% bootstrap interval resampled by study (null under two studies), and means."""
    flips = part["flip"].astype(float).to_numpy()
    studies = part["study"].astype(str).to_numpy()
    interval = None
    if len(set(studies)) >= 2:
        low, high = bootstrap_ci(flips, studies)
        interval = [float(low), float(high)]
    return {"samples": len(part), "studies": len(set(studies)), "flip_rate": _mean(part["flip"].astype(float)),
            "flip_rate_interval": interval, "verdict_displaced_rate": _mean(part["verdict_displaced"].astype(float)),
            "mean_logprob_drop": _mean(part["logprob_drop"]), "mean_queries": _mean(part["queries"]),
            "mean_js": _mean(part["js"]), "mean_seconds": _mean(part["seconds"])}
