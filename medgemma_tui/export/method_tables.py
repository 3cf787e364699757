"""Attribution methods, heads and sanity checks of a whole tree as tables, from the ``methods``,
``heads`` and ``sanity`` sections of its ``robustness/{key}.json`` files (and, for the top-heads view,
its saved records); no model.

- ``analysis/methods.csv``: one row per method: the pointing game, mass-in-box lift and AUROC over the
  boxed rows, deletion and insertion gains and ERASER's comprehensiveness and sufficiency gains (DeYoung
  et al. 2020) where the faithfulness study ran, each with a 95% bootstrap
  interval resampled by study (``analysis.intervals``), and the mean seconds per row each cost beyond
  the answer pass. ``top_heads`` is the mean of the k heads that localise best on the *other* studies
  (leave-one-study-out), so it never scores its own rows.
- ``analysis/heads.csv``: one row per layer x head: pointing game and mass-in-box lift with intervals,
  and the rank by pointing (then lift).
- ``analysis/sanity.csv``: one row per method and randomisation step: mean Spearman and SSIM against
  the unrandomised map, with intervals.
- ``analysis/top_heads.json``: the heads chosen on every boxed row (for new rows and the app) and,
  per key, the heads chosen without that key's study.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from medgemma_tui.analysis.heads import leave_one_study_out, rank_heads, top_head_weights, top_heads_map
from medgemma_tui.analysis.intervals import bootstrap_ci, bootstrap_means_ci
from medgemma_tui.analysis.metrics import map_metrics
from medgemma_tui.analysis.views import select_rows
from medgemma_tui.registry import HEADS, METHODS_STUDY, PER_METHOD, SANITY

# the faithfulness study's gains over its random orders, all four on the same orders: deletion and
# insertion on the log-probability AUCs, ERASER's comprehensiveness and sufficiency on the AOPCs
FAITHFULNESS_GAINS = ("deletion_gain", "insertion_gain", "comprehensiveness_gain", "sufficiency_gain")
METHOD_COLUMNS = ("pointing_game", "mass_in_box_lift", "auroc", *FAITHFULNESS_GAINS)
SOURCE = {"pointing_game": "pointing_hit"}  # table column -> per-row field


@dataclass
class MethodTables:
    methods: pd.DataFrame
    heads: pd.DataFrame
    sanity: pd.DataFrame
    top_heads: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def _mean(values: Sequence[float]) -> float:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def _with_interval(row: dict[str, Any], name: str, values, groups, n_boot: int) -> None:
    values = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    row[name] = _mean(values)
    row[f"{name}_low"], row[f"{name}_high"] = bootstrap_ci(values, groups, n=n_boot)


def methods_table(entries: Sequence[tuple[str, str, Mapping[str, Any]]], n_boot: int = 1000) -> pd.DataFrame:
    """``entries`` are (key, study_id, methods section); one row per method, best pointing first."""
    by_method: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for _key, study, section in entries:
        for name, entry in section.get(PER_METHOD, {}).items():
            if "error" not in entry:
                by_method.setdefault(name, []).append((study, entry))
    rows = []
    for name, items in by_method.items():
        boxed = [(s, e) for s, e in items if e.get("pointing_hit") is not None]
        groups = [s for s, _ in boxed]
        row: dict[str, Any] = {"method": name, "rows": len(items), "boxed_rows": len(boxed),
                               "studies": len(set(groups))}
        for column in METHOD_COLUMNS:
            _with_interval(row, column, [e.get(SOURCE.get(column, column)) for _, e in boxed], groups, n_boot)
        row["pointing_chance"] = _mean([e.get("pointing_chance") for _, e in boxed])
        row["seconds_per_row"] = _mean([e.get("seconds") for _, e in items])
        rows.append(row)
    columns = ["method", "rows", "boxed_rows", "studies",
               *[c for name in METHOD_COLUMNS for c in (name, f"{name}_low", f"{name}_high")],
               "pointing_chance", "seconds_per_row"]
    table = pd.DataFrame(rows, columns=columns)
    if not table.empty:
        table = table.sort_values(["pointing_game", "mass_in_box_lift"], ascending=False, kind="stable",
                                  na_position="last").reset_index(drop=True)
        table.insert(1, "rank_pointing", np.arange(1, len(table) + 1))
    return table


def heads_table(studies: Sequence[str], pointing: np.ndarray, lift: np.ndarray, n_boot: int = 1000
                ) -> pd.DataFrame:
    """One row per layer x head (``pointing``, ``lift`` [rows, L, H]), rank 1 the best localiser."""
    _, L, H = pointing.shape
    rank = {tuple(int(v) for v in lh): i + 1 for i, lh in enumerate(rank_heads(pointing, lift))}
    intervals = {name: bootstrap_means_ci(np.asarray(values).reshape(len(values), L * H), studies, n_boot)
                 for name, values in (("pointing_game", pointing), ("mass_in_box_lift", lift))}
    rows = []
    for layer in range(L):
        for head in range(H):
            finite = int(np.isfinite(pointing[:, layer, head]).sum())
            row: dict[str, Any] = {"layer": layer, "head": head, "rows": finite}
            for name, values in (("pointing_game", pointing), ("mass_in_box_lift", lift)):
                row[name] = _mean(values[:, layer, head])
                row[f"{name}_low"], row[f"{name}_high"] = (float(b[layer * H + head]) for b in intervals[name])
            row["rank"] = rank[(layer, head)]
            rows.append(row)
    return pd.DataFrame(rows).sort_values("rank", kind="stable").reset_index(drop=True)


def sanity_table(entries: Sequence[tuple[str, str, Mapping[str, Any]]], n_boot: int = 1000) -> pd.DataFrame:
    """One row per method and step: the mean Spearman and SSIM over rows, with intervals by study."""
    rows = []
    collected: dict[tuple[str, int, str], list[tuple[str, float, float]]] = {}
    for _key, study, section in entries:
        for name, scores in section.get(PER_METHOD, {}).items():
            for step, label in enumerate(section.get("steps", [])):
                collected.setdefault((name, step, label), []).append(
                    (study, scores["spearman"][step], scores["ssim"][step]))
    for (name, step, label), items in collected.items():
        groups = [s for s, _, _ in items]
        row: dict[str, Any] = {"method": name, "step": step, "randomised": label, "rows": len(items)}
        _with_interval(row, "spearman", [r for _, r, _ in items], groups, n_boot)
        _with_interval(row, "ssim", [v for _, _, v in items], groups, n_boot)
        rows.append(row)
    columns = ["method", "step", "randomised", "rows", "spearman", "spearman_low", "spearman_high", "ssim",
               "ssim_low", "ssim_high"]
    return pd.DataFrame(rows, columns=columns)


def top_heads_entries(heads: Sequence[tuple[str, str, Mapping[str, Any]]], k: int,
                      load_head_maps: Callable[[str, Any], np.ndarray | None]) -> tuple[list, dict[str, Any]]:
    """The top-heads view's methods entries per key (leave-one-study-out) and ``top_heads.json``.

    ``load_head_maps(key, rows)`` gives the row's per-head maps [L, H, N] (None when its record is gone).
    """
    if not heads:
        return [], {}
    pointing = np.asarray([h["pointing_hit"] for _, _, h in heads], dtype=np.float64)
    lift = np.asarray([h["mass_in_box_lift"] for _, _, h in heads], dtype=np.float64)
    studies = [s for _, s, _ in heads]
    chosen = leave_one_study_out(studies, pointing, lift, k)
    entries, per_key = [], {}
    for (key, study, h), weights in zip(heads, chosen, strict=True):
        if weights is None:
            continue
        head_maps = load_head_maps(key, h.get("rows"))
        if head_maps is None:
            continue
        shape = np.asarray(h["box_grid"]).shape
        flat = top_heads_map(head_maps, weights)
        pointing_cells = None if h.get("pointing_cells") is None else np.asarray(h["pointing_cells"], dtype=bool)
        metrics = map_metrics(np.clip(flat, 0, None).reshape(shape) + 0.0, box=np.asarray(h["box_grid"]),
                              pointing=pointing_cells)
        entries.append((key, study, {PER_METHOD: {"top_heads": {
            **{m: metrics[m] for m in ("pointing_hit", "pointing_chance", "mass_in_box_lift", "auroc")},
            "seconds": 0.0}}}))
        per_key[key] = np.argwhere(weights > 0).tolist()
    everything = top_head_weights(pointing, lift, k)
    return entries, {"k": k, "all_rows": np.argwhere(everything > 0).tolist(), "leave_one_study_out": per_key}


def method_tables(payloads: Sequence[Mapping[str, Any]], study_of: Mapping[str, str], k: int = 4,
                  load_record: Callable[[str], Any] | None = None, keys: set[str] | None = None,
                  n_boot: int = 1000) -> MethodTables:
    """The three tables from the contents of a tree's ``robustness/{key}.json`` files.

    ``study_of`` maps a key to its study id (the bootstrap's group); ``keys``, when given, limits the
    boxed statistics to those rows (the focal findings); ``load_record(key)`` gives a saved record.
    """
    methods, heads, sanity = [], [], []
    for payload in payloads:
        key = str(payload.get("key"))
        study = str(study_of.get(key, key))
        if payload.get(METHODS_STUDY):
            methods.append((key, study, payload[METHODS_STUDY]))
        if payload.get(HEADS) and (keys is None or key in keys):
            heads.append((key, study, payload[HEADS]))
        if payload.get(SANITY):
            sanity.append((key, study, payload[SANITY]))
    if keys is not None:
        methods = [(k_, s, {PER_METHOD: {n: (e if k_ in keys else {**e, "pointing_hit": None})
                                        for n, e in sec.get(PER_METHOD, {}).items()}}) for k_, s, sec in methods]

    def head_maps(key: str, rows) -> np.ndarray | None:
        if load_record is None:
            return None
        record = load_record(key)
        if record is None:
            return None
        return record.image_attn[select_rows(record, rows)].mean(axis=0)  # [L, H, N]

    top_entries, top_json = top_heads_entries(heads, k, head_maps) if methods or heads else ([], {})
    table = methods_table([*methods, *top_entries], n_boot)
    if heads:
        pointing = np.asarray([h["pointing_hit"] for _, _, h in heads], dtype=np.float64)
        lift = np.asarray([h["mass_in_box_lift"] for _, _, h in heads], dtype=np.float64)
        head_frame = heads_table([s for _, s, _ in heads], pointing, lift, n_boot)
    else:
        head_frame = pd.DataFrame()
    sanity_frame = sanity_table(sanity, n_boot) if sanity else pd.DataFrame()
    summary: dict[str, Any] = {}
    if not table.empty:
        summary[METHODS_STUDY] = {str(r["method"]): {c: r[c] for c in ("rank_pointing", "pointing_game",
                                                                     "mass_in_box_lift", "seconds_per_row")}
                              for _, r in table.iterrows()}
    if not head_frame.empty:
        best = head_frame.iloc[0]
        summary[HEADS] = {"best": {"layer": int(best["layer"]), "head": int(best["head"]),
                                     "pointing_game": float(best["pointing_game"]),
                                     "mass_in_box_lift": float(best["mass_in_box_lift"])},
                            "top_heads": top_json.get("all_rows")}
    if not sanity_frame.empty:
        last = sanity_frame.sort_values("step").groupby("method").tail(1)
        summary[SANITY] = {str(r["method"]): {"randomised": r["randomised"], "spearman": r["spearman"],
                                                "ssim": r["ssim"]} for _, r in last.iterrows()}
    return MethodTables(table, head_frame, sanity_frame, top_json, summary)


def top_head_weights_for(top_heads: Mapping[str, Any], key: str, shape: tuple[int, int]) -> np.ndarray | None:
    """[L, H] weights of ``top_heads.json``'s heads for ``key`` (chosen without its study), else None."""
    heads = (top_heads.get("leave_one_study_out") or {}).get(key)
    if not heads:
        return None
    weights = np.zeros(shape, dtype=np.float32)
    for layer, head in heads:
        if layer < shape[0] and head < shape[1]:
            weights[layer, head] = 1.0
    return weights


HEAD_TABLE_COLUMNS = ("pointing_game", "pointing_game_low", "pointing_game_high", "mass_in_box_lift",
                      "mass_in_box_lift_low", "mass_in_box_lift_high", "rank", "rows")


def head_table_grids(table: pd.DataFrame, shape: tuple[int, int]) -> dict[str, np.ndarray] | None:
    """``heads_table``'s columns (``HEAD_TABLE_COLUMNS``) as [L, H] arrays, or None when the table does not
    have one row for every (layer, head) of ``shape`` (another model's table)."""
    L, H = shape
    if table.empty or any(c not in table for c in ("layer", "head", *HEAD_TABLE_COLUMNS)):
        return None
    layers, heads = table["layer"].astype(int).to_numpy(), table["head"].astype(int).to_numpy()
    if len(table) != L * H or layers.max() >= L or heads.max() >= H or layers.min() < 0 or heads.min() < 0:
        return None
    out = {}
    for column in HEAD_TABLE_COLUMNS:
        grid = np.full(shape, np.nan)
        grid[layers, heads] = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        out[column] = grid
    if np.isnan(out["rank"]).any():
        return None
    return out


def read_head_table(path, shape: tuple[int, int]) -> dict[str, np.ndarray] | None:
    """``analysis/heads.csv`` as ``head_table_grids``; None when the file is missing or is not this model's."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError):
        return None
    return head_table_grids(table, shape)
