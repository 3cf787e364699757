"""The dataset-level figures of ``summary.json`` with their study-bootstrap 95% intervals, as the figures,
the captions and the app show them (``headlines``); the intervals are ``analysis.dataset_intervals``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgemma_tui.registry import FAITHFULNESS


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
            shown = digits if abs(self.value) < 10 else 1  # a lift of 64 is not known to a thousandth
            return f"{self.label} {self.value:.{shown}f} (no interval{why})"
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
    faith = summary.get(FAITHFULNESS) or {}

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
    for score in ("comprehensiveness", "sufficiency"):
        out.append(make(f"{score}_gain", f"{score} gain (ERASER)", faith.get(f"mean_{score}_gain"),
                        faith.get("samples"), reference=0.0, reference_label="0 = random order", kind="gain"))
    return [h for h in out if h.value is not None]
