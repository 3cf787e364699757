"""The pointing game over a tree's rows (Zhang et al., "Top-down Neural Attention by Excitation
Backprop", ECCV 2016): the share of boxed rows whose map's top cell is a hit (``analysis.grounding``),
over focal findings (``row_groups.is_focal``) and over every boxed row, beside its chance by the same
hit rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .averages import finite_mean
from .row_groups import is_focal

if TYPE_CHECKING:
    import pandas as pd


def boxed_rows(done: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every finished row with a box and a pointing result, the focal ones among them)."""
    if "pointing_hit" not in done or done.empty:
        return done.iloc[0:0], done.iloc[0:0]
    boxed = done[done["bbox"].astype(str).str.strip() != ""]
    boxed = boxed[np.isfinite(boxed["pointing_hit"].astype(float))]
    focal = boxed[boxed["finding"].astype(str).map(is_focal)] if "finding" in boxed else boxed
    return boxed, focal


def chance_column(rows: pd.DataFrame) -> str:
    """The pointing game's chance by the same hit rule (``pointing_chance``); trees written before it
    have only the box's area fraction."""
    return "pointing_chance" if "pointing_chance" in rows else "box_area_fraction"


def pointing_game(done: pd.DataFrame) -> dict[str, Any]:
    boxed, focal = boxed_rows(done)
    if boxed.empty:
        return {}
    chance = chance_column(boxed)
    out = {
        "pointing_game": finite_mean(focal["pointing_hit"]),
        "pointing_game_chance": finite_mean(focal[chance]),
        "pointing_game_n": len(focal),
        "pointing_game_mass_in_box_lift": finite_mean(focal["mass_in_box_lift"]) if "mass_in_box_lift" in focal
        else None,
        "pointing_game_overall": finite_mean(boxed["pointing_hit"]),
        "pointing_game_overall_chance": finite_mean(boxed[chance]),
        "pointing_game_overall_n": len(boxed),
    }
    if "finding" in boxed:
        out["pointing_game_by_finding"] = {
            str(finding or "(none)"): {"hit_rate": finite_mean(part["pointing_hit"]),
                                       "chance": finite_mean(part[chance]), "n": len(part)}
            for finding, part in boxed.groupby("finding", sort=True)
        }
    return out
