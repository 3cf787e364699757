"""The mean curves of the faithfulness study over samples, per answer reading: what ``faithfulness.png`` draws.

Each sample's ``faithfulness`` section (``robustness/{key}.json``, written by the faithfulness study)
holds, per curve, the map order's values at each step or bin (``map``), the random orders' mean
(``random``) and their SD at each step (``random_sd``), with ``_prob`` twins on the probability scale for
deletion and insertion. ERASER's comprehensiveness and sufficiency (DeYoung et al. 2020) hold the
probability lost at each of their bins (``bins``: the rationale's share of the image tokens).

Per answer reading, a ``MeanCurve`` is the mean over its samples of the map's curve and of the random
mean, and the mean over samples of the random SD at each point (the spread of one random order).
Samples whose curve has another length than the shortest are cut to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

READINGS = ("yes", "no", "uncertain")  # the answer's readings, in the order they are drawn


@dataclass(frozen=True)
class MeanCurve:
    reading: str  # the answer's reading: yes, no, uncertain
    n: int  # samples behind the means
    x: np.ndarray  # [points]: fractions of the image tokens (curves) or the rationale's share (ERASER's bins)
    map: np.ndarray  # [points] mean of the map order's values
    random: np.ndarray | None  # [points] mean of the random orders' means
    random_sd: np.ndarray | None  # [points] mean of the random orders' SD


def reading_of(payload: dict[str, Any]) -> str:
    return str(payload.get("answer_label") or "uncertain")


def readings(payloads: Sequence[dict[str, Any]]) -> list[str]:
    """The readings present, in ``READINGS`` order, then any other alphabetically."""
    present = {reading_of(p) for p in payloads}
    return sorted(present, key=lambda r: (READINGS.index(r) if r in READINGS else len(READINGS), r))


def stacked(parts: Sequence[dict[str, Any]], field: str) -> np.ndarray:
    """[samples, points] of one field over the sections that have it, cut to the shortest."""
    rows = [np.asarray(p[field], dtype=float) for p in parts if p.get(field) is not None]
    if not rows:
        return np.zeros((0, 0))
    length = min(len(r) for r in rows)
    return np.stack([r[:length] for r in rows])


def mean_curves(payloads: Sequence[dict[str, Any]], curve: str, scale: str = "") -> list[MeanCurve]:
    """One ``MeanCurve`` per reading of the samples that have ``curve`` (deletion, insertion,
    comprehensiveness, sufficiency); ``scale`` ``"_prob"`` reads the probability twins of deletion and
    insertion."""
    out = []
    for reading in readings(payloads):
        sections = [p[curve] for p in payloads if reading_of(p) == reading and isinstance(p.get(curve), dict)
                    and p[curve].get(f"map{scale}") is not None]
        mapped = stacked(sections, f"map{scale}")
        if mapped.size == 0:
            continue
        points = mapped.shape[1]
        if "bins" in sections[0]:
            x = np.asarray(sections[0]["bins"], dtype=float)[:points]
        else:
            owner = next(p for p in payloads if p.get(curve) is sections[0])
            x = np.asarray(owner.get("fractions") or np.linspace(0, 1, points), dtype=float)[:points]
        randoms, spread = stacked(sections, f"random{scale}"), stacked(sections, f"random{scale}_sd")
        out.append(MeanCurve(reading, len(sections), x, mapped.mean(axis=0)[: len(x)],
                             randoms.mean(axis=0)[: len(x)] if randoms.size else None,
                             spread.mean(axis=0)[: len(x)] if spread.size else None))
    return out
