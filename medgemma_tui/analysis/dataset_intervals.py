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

from .intervals import MIN_STUDIES, RESAMPLES, SEED, bootstrap_ci, paired_difference_ci, ratio_ci
from .row_groups import study_of


def _interval(value: tuple[float, float]) -> list[float] | None:
    low, high = value
    return None if math.isnan(low) or math.isnan(high) else [float(low), float(high)]


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(frame[name], errors="coerce").astype(float).to_numpy()


def _studies(groups, usable: np.ndarray) -> int:
    """How many studies hold a usable row: what the bootstrap resamples."""
    return len({str(g) for g, keep in zip(groups, usable, strict=True) if keep})


def dataset_intervals(done: pd.DataFrame, focal: pd.DataFrame | None, groups: pd.DataFrame,
                      faithfulness: pd.DataFrame | None = None, studies: dict[str, int] | None = None
                      ) -> dict[str, list[float] | None]:
    """Intervals keyed like the figures they bound (``accuracy`` -> ``intervals.accuracy``).

    ``studies``, when given, is filled with the number of studies behind each interval; an interval
    over fewer than ``MIN_STUDIES`` studies is null (one study resampled is that study every time).
    """
    out: dict[str, list[float] | None] = {}
    counts = studies if studies is not None else {}

    def put(name: str, interval: tuple[float, float], study: np.ndarray, *columns: np.ndarray) -> None:
        finite = np.logical_and.reduce([np.isfinite(c) for c in columns])
        counts[name] = _studies(study, finite)
        out[name] = _interval(interval)

    if done.empty:
        return out
    study = study_of(done)
    options = {"n": RESAMPLES, "seed": SEED, "min_groups": MIN_STUDIES}
    if "correct" in done:
        scored = done["correct"].notna()
        if scored.any():
            values = done.loc[scored, "correct"].astype(bool).astype(float).to_numpy()
            groups_of = study[scored].to_numpy()
            put("accuracy", bootstrap_ci(values, groups_of, **options), groups_of, values)
    if focal is not None and not focal.empty:
        focal_study = study_of(focal).to_numpy()
        hits = _column(focal, "pointing_hit")
        put("pointing_game", bootstrap_ci(hits, focal_study, **options), focal_study, hits)
        if "pointing_chance" in focal:
            chance = _column(focal, "pointing_chance")
            put("pointing_game_over_chance", ratio_ci(hits, chance, focal_study, **options), focal_study, hits,
                chance)
        if "mass_in_box_lift" in focal:
            lift = _column(focal, "mass_in_box_lift")
            put("mass_in_box_lift", bootstrap_ci(lift, focal_study, **options), focal_study, lift)
    if not groups.empty and "consistent" in groups:
        image_study = dict(zip(done["image_path"].astype(str), study, strict=False)) if "image_path" in done else {}
        group_study = groups["image_path"].astype(str).map(lambda image: image_study.get(image, image)).to_numpy()
        consistent = groups["consistent"].astype(bool).astype(float).to_numpy()
        put("hard_positive_answer_consistency", bootstrap_ci(consistent, group_study, **options), group_study,
            consistent)
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
                put(f"{curve}_gain{kind}", paired_difference_ci(after, before, faith_study, **options), faith_study,
                    ours, rand)
        for score in ("comprehensiveness", "sufficiency"):  # ERASER (DeYoung et al. 2020), on the probabilities
            if f"{score}_aopc" not in faithfulness or f"{score}_aopc_random" not in faithfulness:
                continue
            ours = _column(faithfulness, f"{score}_aopc")
            rand = _column(faithfulness, f"{score}_aopc_random")
            # comprehensiveness: removing the map's tokens should lose more (gain = ours - random); sufficiency:
            # keeping them alone should lose less (gain = random - ours)
            after, before = (ours, rand) if score == "comprehensiveness" else (rand, ours)
            put(f"{score}_gain", paired_difference_ci(after, before, faith_study, **options), faith_study, ours, rand)
    return out
