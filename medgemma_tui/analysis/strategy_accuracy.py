"""Accuracy per paraphrase kind with its 95% Wilson interval: the numbers ``accuracy_by_strategy.png`` draws
and its caption states (from ``by_strategy.csv``, ``analysis.consistency``'s table).

A variant naming several kinds (synonym replacement + clause reordering) counts in each of its kinds'
rows; ``multi_kind_variants`` counts how many do, each once.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np

from medgemma_tui.data.schema import normalise_strategy

if TYPE_CHECKING:
    import pandas as pd


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (Wilson 1927; Brown, Cai and DasGupta 2001, eq. 4)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def multi_kind_variants(table: pd.DataFrame) -> tuple[int, int]:
    """(variant rows naming several kinds, variant rows) behind a by_strategy table.

    Read from ``raw_strategies`` ("text (n) | text (n)"): a text naming several kinds appears, with the
    same count, in each of its kinds' rows, so it is counted once here.
    """
    if "raw_strategies" not in table:
        return (0, int(table.loc[table["strategy"] != "original", "rows"].sum()) if "rows" in table else 0)
    texts: dict[str, int] = {}
    for cell in table.loc[table["strategy"] != "original", "raw_strategies"].fillna("").astype(str):
        for part in cell.split(" | "):
            match = re.fullmatch(r"(.*) \((\d+)\)", part.strip())
            if match:
                texts[match.group(1)] = int(match.group(2))
    several = sum(n for text, n in texts.items() if len(normalise_strategy(text)) > 1)
    if "rows" not in table:
        return (several, sum(texts.values()))
    kind_rows = int(table.loc[table["strategy"] != "original", "rows"].sum())
    overcount = sum(n * (len(normalise_strategy(text)) - 1) for text, n in texts.items())
    return (several, max(kind_rows - overcount, several))


def interval_errors(accuracy: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """[2, n] distances from each accuracy down and up to its 95% Wilson bounds, never negative.

    At 0 or 1 the bound and the point meet, and the floating-point difference can be -1e-17, which
    matplotlib's ``errorbar`` rejects ("'xerr' must not contain negative values").
    """
    successes = np.rint(accuracy * scored).astype(int)
    bounds = np.array([wilson_interval(int(k), int(n)) for k, n in zip(successes, scored, strict=True)]).reshape(-1, 2)
    return np.clip(np.stack([accuracy - bounds[:, 0], bounds[:, 1] - accuracy]), 0.0, None)


def strategy_bars(table: pd.DataFrame | None) -> pd.DataFrame:
    """The bars of the accuracy plot, top to bottom: ``original (baseline)`` first, then the paraphrase
    kinds from the most to the least accurate; only kinds with scored rows. Columns: strategy, label,
    scored, accuracy, low, high (the 95% Wilson bounds, never on the wrong side of the accuracy)."""
    import pandas as pd

    columns = ["strategy", "label", "scored", "accuracy", "low", "high"]
    if table is None or table.empty or not {"strategy", "scored", "accuracy"} <= set(table.columns):
        return pd.DataFrame(columns=columns)
    scored = pd.to_numeric(table["scored"], errors="coerce").fillna(0)
    accuracy = pd.to_numeric(table["accuracy"], errors="coerce")
    keep = (scored > 0) & accuracy.between(0, 1)
    frame = pd.DataFrame({"strategy": table["strategy"].astype(str), "scored": scored.astype(int),
                          "accuracy": accuracy.astype(float)})[keep]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    baseline = frame[frame["strategy"] == "original"]
    kinds = frame[frame["strategy"] != "original"].sort_values(["accuracy", "strategy"], ascending=[False, True])
    bars = pd.concat([baseline, kinds], ignore_index=True)
    bars["label"] = ["original (baseline)" if s == "original" else s.replace("_", " ") for s in bars["strategy"]]
    acc = bars["accuracy"].to_numpy(dtype=float)
    errors = interval_errors(acc, bars["scored"].to_numpy(dtype=int))
    bars["low"], bars["high"] = acc - errors[0], acc + errors[1]
    return bars[columns]
