"""The bootstrap 95% intervals of every dataset-level figure in ``summary.json``.

Rows of one study (one patient's film and its questions and phrasings) are not independent, so the
intervals resample *studies* with replacement (``analysis.intervals``, seeded): accuracy, hard-positive
consistency, the pointing game, the pointing game over its chance, mass-in-box lift and the
faithfulness gains. Each interval is ``[low, high]``, or null where there are no rows to resample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medgemma_tui.analysis.intervals import MIN_STUDIES, RESAMPLES, SEED, bootstrap_ci, paired_difference_ci, ratio_ci
from medgemma_tui.analysis.row_groups import study_of


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
    return out


@dataclass(frozen=True)
class Headline:
    """One dataset-level figure of ``summary.json`` with its study-bootstrap interval, as drawn and shown."""

    name: str  # the key in ``summary.json``'s ``intervals``
    label: str  # what it is, in words
    value: float | None  # the point estimate, from the same rows as the interval
    low: float | None
    high: float | None
    n: int | None  # rows (or groups, or samples) behind it
    reference: float | None = None  # what it means by chance or "no better than random" (a line in the figure)
    reference_label: str = ""
    kind: str = "share"  # share (0..1), ratio (1 = chance) or gain (0 = random)
    studies: int | None = None  # studies the interval resampled

    def text(self, digits: int = 3) -> str:
        """``accuracy 0.964 [0.916, 1.000]``: the value and its interval; ``(no interval: 1 study)`` where
        too few studies gave none."""
        if self.value is None:
            return f"{self.label} n/a"
        if self.low is None or self.high is None:
            why = f": {self.studies} stud{'y' if self.studies == 1 else 'ies'}" if self.studies is not None else ""
            return f"{self.label} {self.value:.{digits}f} (no interval{why})"
        return f"{self.label} {self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


INTERVAL_NOTE = "95% CI, study bootstrap"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def headlines(summary: Mapping[str, Any]) -> list[Headline]:
    """The dataset-level figures of a ``summary.json`` (as written by ``export.summary``) that have a value,
    each with its interval from ``summary["intervals"]``; the order of the figures and the app."""
    intervals = summary.get("intervals") or {}
    faith = summary.get("faithfulness") or {}

    def bounds(name: str) -> tuple[float | None, float | None]:
        pair = intervals.get(name)
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            return None, None
        return _number(pair[0]), _number(pair[1])

    studies = summary.get("interval_studies") or {}

    def make(name: str, label: str, value: Any, n: Any, **extra) -> Headline:
        number, count = _number(n), _number(studies.get(name))
        return Headline(name, label, _number(value), *bounds(name), None if number is None else int(number),
                        studies=None if count is None else int(count), **extra)

    hit, chance = _number(summary.get("pointing_game")), _number(summary.get("pointing_game_chance"))
    out = [
        make("accuracy", "accuracy", summary.get("accuracy"), summary.get("scored"), reference=0.5,
             reference_label="0.5"),
        make("hard_positive_answer_consistency", "hard-positive consistency",
             summary.get("hard_positive_answer_consistency"), summary.get("hard_positive_groups")),
        make("pointing_game", "pointing game", hit, summary.get("pointing_game_n"), reference=chance,
             reference_label="chance by the same rule"),
        make("pointing_game_over_chance", "pointing game / chance",
             hit / chance if hit is not None and chance else None, summary.get("pointing_game_n"), reference=1.0,
             reference_label="1 = chance", kind="ratio"),
        make("mass_in_box_lift", "mass-in-box lift", summary.get("pointing_game_mass_in_box_lift"),
             summary.get("pointing_game_n"), reference=1.0, reference_label="1 = chance", kind="ratio"),
    ]
    for curve in ("deletion", "insertion"):
        for kind, words in (("", "log-prob"), ("_prob", "prob")):
            out.append(make(f"{curve}_gain{kind}", f"{curve} gain ({words})", faith.get(f"mean_{curve}_gain{kind}"),
                            faith.get("samples"), reference=0.0, reference_label="0 = random order", kind="gain"))
    return [h for h in out if h.value is not None]
