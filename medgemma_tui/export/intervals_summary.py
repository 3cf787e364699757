"""The bootstrap 95% intervals of every dataset-level figure in ``summary.json``.

Rows of one study (one patient's film and its questions and phrasings) are not independent, so the
intervals resample *studies* with replacement (``analysis.intervals``, seeded): accuracy, hard-positive
consistency, the pointing game, the pointing game over its chance, mass-in-box lift and the
faithfulness gains. Each interval is ``[low, high]``, or null where there are no rows to resample.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from medgemma_tui.analysis.intervals import bootstrap_ci, paired_difference_ci, ratio_ci

SEED = 0
RESAMPLES = 1000


def study_of(rows: pd.DataFrame) -> pd.Series:
    """Each row's study: ``study_id``, else its image (rows without an id group by film)."""
    study = rows["study_id"].astype(str) if "study_id" in rows else pd.Series("", index=rows.index)
    image = rows["image_path"].astype(str) if "image_path" in rows else rows["key"].astype(str)
    return study.where(study.str.strip() != "", image)


def _interval(value: tuple[float, float]) -> list[float] | None:
    low, high = value
    return None if math.isnan(low) or math.isnan(high) else [float(low), float(high)]


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(frame[name], errors="coerce").astype(float).to_numpy()


def dataset_intervals(done: pd.DataFrame, focal: pd.DataFrame | None, groups: pd.DataFrame,
                      faithfulness: pd.DataFrame | None = None) -> dict[str, list[float] | None]:
    """Intervals keyed like the figures they bound (``accuracy`` -> ``intervals.accuracy``)."""
    out: dict[str, list[float] | None] = {}
    if done.empty:
        return out
    study = study_of(done)
    if "correct" in done:
        scored = done["correct"].notna()
        if scored.any():
            values = done.loc[scored, "correct"].astype(bool).astype(float).to_numpy()
            out["accuracy"] = _interval(bootstrap_ci(values, study[scored].to_numpy(), n=RESAMPLES, seed=SEED))
    if focal is not None and not focal.empty:
        focal_study = study_of(focal).to_numpy()
        hits = _column(focal, "pointing_hit")
        out["pointing_game"] = _interval(bootstrap_ci(hits, focal_study, n=RESAMPLES, seed=SEED))
        if "pointing_chance" in focal:
            out["pointing_game_over_chance"] = _interval(
                ratio_ci(hits, _column(focal, "pointing_chance"), focal_study, n=RESAMPLES, seed=SEED))
        if "mass_in_box_lift" in focal:
            out["mass_in_box_lift"] = _interval(
                bootstrap_ci(_column(focal, "mass_in_box_lift"), focal_study, n=RESAMPLES, seed=SEED))
    if not groups.empty and "consistent" in groups:
        image_study = dict(zip(done["image_path"].astype(str), study, strict=False)) if "image_path" in done else {}
        group_study = groups["image_path"].astype(str).map(lambda image: image_study.get(image, image)).to_numpy()
        out["hard_positive_answer_consistency"] = _interval(
            bootstrap_ci(groups["consistent"].astype(bool).astype(float).to_numpy(), group_study, n=RESAMPLES,
                         seed=SEED))
    if faithfulness is not None and not faithfulness.empty:
        key_study = dict(zip(done["key"].astype(str), study, strict=False))
        faith_study = faithfulness["key"].astype(str).map(lambda key: key_study.get(key, key)).to_numpy()
        for curve in ("deletion", "insertion"):
            for kind in ("", "_prob"):  # the log-probability curves and the probability curves
                if f"{curve}_auc{kind}" not in faithfulness or f"{curve}_auc{kind}_random" not in faithfulness:
                    continue
                ours = _column(faithfulness, f"{curve}_auc{kind}")
                rand = _column(faithfulness, f"{curve}_auc{kind}_random")
                # a deletion curve that falls faster than random has the smaller area: gain = random - ours
                after, before = (rand, ours) if curve == "deletion" else (ours, rand)
                out[f"{curve}_gain{kind}"] = _interval(paired_difference_ci(after, before, faith_study,
                                                                            n=RESAMPLES, seed=SEED))
    return out

