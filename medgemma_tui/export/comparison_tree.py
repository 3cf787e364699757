"""The comparison tree that ``medtui compare A B --into C`` writes, and its reading back (``medtui open C``).

```
C/
  comparison.json              the two trees, what differs between their run.json, the dataset figures
                               (paired differences with study-bootstrap intervals), flips, shift summaries
  rows.csv                     one line per row both trees finished, most moved (largest JS) first
  unpaired.csv                 rows finished in one tree only (or failed in both), with the reason
  heads.csv                    per layer x head: localisation in A, in B and the change (both trees --heads)
  grids/{key}_a.npy, _b.npy    each paired row's two maps, so C is read without A and B
  figures/most_moved.png       the difference maps (B - A) of the most moved rows over their films
  figures/shifts.png           the distribution of the per-row shifts
```

Statistics come from ``analysis.comparison``; this module reads the two trees and writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgemma_tui.analysis.comparison import (
    flip_counts,
    head_changes,
    pair_rows,
    paired_differences,
    row_shifts,
    shift_summary,
)
from medgemma_tui.errors import MedtuiError
from medgemma_tui.export.atomic import save_npy_atomic, write_bytes_atomic, write_json_atomic
from medgemma_tui.export.layout import CSV_NAME, RUN_NAME
from medgemma_tui.export.run_json import now
from medgemma_tui.json_values import jsonable

COMPARISON_NAME = "comparison.json"
ROWS_NAME = "rows.csv"
UNPAIRED_NAME = "unpaired.csv"
HEADS_NAME = "heads.csv"
KIND = "medtui comparison"
MOST_MOVED = 6  # rows drawn in figures/most_moved.png
# run.json blocks that say how a tree was made; the rest (timings, counts, argv, status) says how it went
COMPARED_BLOCKS = ("model", "dtype", "device", "config", "versions", "studies", "dataset")
IGNORED_KEYS = ("model.device", "model.commit")


class ComparisonError(MedtuiError, ValueError):
    """Two trees that cannot be compared, or a folder that is not a comparison; one line for the user."""


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def run_differences(run_a: dict[str, Any], run_b: dict[str, Any]) -> dict[str, list[Any]]:
    """What differs between the two trees' ``run.json`` (model, adapter, config, prompt, versions):
    ``{"config.prompt.system": [in A, in B], ...}``, dotted keys, in key order."""
    a = _flatten({k: run_a.get(k) for k in COMPARED_BLOCKS if k in run_a})
    b = _flatten({k: run_b.get(k) for k in COMPARED_BLOCKS if k in run_b})
    keys = sorted(set(a) | set(b))
    return {k: [a.get(k), b.get(k)] for k in keys
            if a.get(k) != b.get(k) and not any(k == i or k.startswith(i + ".") for i in IGNORED_KEYS)}


def _read_tree(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    from medgemma_tui.export.columns import read_rows

    if not path.is_dir():
        raise ComparisonError(f"results tree not found: {path}")
    if not (path / CSV_NAME).exists():
        raise ComparisonError(f"{path} is not a results tree (no {CSV_NAME})")
    rows = read_rows(path / CSV_NAME)
    run_path = path / RUN_NAME
    try:
        run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.exists() else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ComparisonError(f"unreadable {run_path}: {exc}") from None
    return rows, run


def _grid_loader(root: Path):
    def load(key: str) -> np.ndarray:
        return np.load(root / "grids" / f"{key}_grid.npy")

    return load


def _film_root(run: dict[str, Any]) -> Path | None:
    images = (run.get("dataset") or {}).get("images")
    return Path(images) if images else None


def compare_trees(a: str | os.PathLike, b: str | os.PathLike, into: str | os.PathLike, plots: bool = True
                  ) -> dict[str, Any]:
    """Write the comparison of trees ``a`` and ``b`` into ``into``; return ``comparison.json``'s content."""
    root_a, root_b, out = Path(a), Path(b), Path(into)
    if out.resolve() in (root_a.resolve(), root_b.resolve()):
        raise ComparisonError(f"--into {out} is one of the compared trees; give a new folder")
    rows_a, run_a = _read_tree(root_a)
    rows_b, run_b = _read_tree(root_b)
    if (out / CSV_NAME).exists():
        raise ComparisonError(f"--into {out} holds a results tree; give a new folder")
    both, unpaired = pair_rows(rows_a, rows_b)
    missing = [k for k in both["key"] if not (root_a / "grids" / f"{k}_grid.npy").exists()
               or not (root_b / "grids" / f"{k}_grid.npy").exists()]
    if missing:
        unpaired = pd.concat([unpaired, pd.DataFrame({"key": missing, "in": "", "reason": "map missing"})],
                             ignore_index=True)
        both = both[~both["key"].isin(missing)].reset_index(drop=True)
    if both.empty:
        raise ComparisonError(f"{root_a} and {root_b} have no finished row in common (joined on key)")
    try:
        shifts = row_shifts(both, _grid_loader(root_a), _grid_loader(root_b))
    except ValueError as exc:  # maps of different grids (another image geometry): no cell-wise comparison
        raise ComparisonError(f"{root_a} and {root_b}: {exc}") from None
    heads = None
    heads_a, heads_b = root_a / "analysis" / HEADS_NAME, root_b / "analysis" / HEADS_NAME
    if heads_a.exists() and heads_b.exists():
        heads = head_changes(pd.read_csv(heads_a), pd.read_csv(heads_b))
    payload = {
        "kind": KIND,
        "created": now(),
        "a": {"path": str(root_a.resolve()), "model": run_a.get("model"), "rows": int(len(rows_a))},
        "b": {"path": str(root_b.resolve()), "model": run_b.get("model"), "rows": int(len(rows_b))},
        "differences": run_differences(run_a, run_b),
        "paired_rows": int(len(shifts)),
        "unpaired_rows": int(len(unpaired)),
        "dataset": paired_differences(both),
        "flips": flip_counts(shifts),
        "shifts": shift_summary(shifts),
        "heads": heads is not None,
        "films": {"a": str(_film_root(run_a) or ""), "b": str(_film_root(run_b) or "")},
    }
    grids = out / "grids"
    grids.mkdir(parents=True, exist_ok=True)
    for key in shifts["key"]:
        save_npy_atomic(grids / f"{key}_a.npy", _grid_loader(root_a)(key).astype(np.float32))
        save_npy_atomic(grids / f"{key}_b.npy", _grid_loader(root_b)(key).astype(np.float32))
    write_bytes_atomic(out / ROWS_NAME, shifts.to_csv(index=False).encode("utf-8"))
    write_bytes_atomic(out / UNPAIRED_NAME, unpaired.to_csv(index=False).encode("utf-8"))
    if heads is not None:
        write_bytes_atomic(out / HEADS_NAME, heads.to_csv(index=False).encode("utf-8"))
    if plots:
        from medgemma_tui.export.comparison_figures import plot_most_moved, plot_shifts

        errors = {}
        for name, plot in (("most_moved", lambda: plot_most_moved(shifts, out, _film_root(run_a))),
                           ("shifts", lambda: plot_shifts(shifts, out))):
            try:
                plot()
            except Exception as exc:  # a failing plot is named, and costs nothing else
                errors[name] = f"{type(exc).__name__}: {exc}"
        payload["plot_errors"] = errors
    write_json_atomic(out / COMPARISON_NAME, jsonable(payload))
    return payload


def is_comparison(path: str | os.PathLike) -> bool:
    return (Path(path) / COMPARISON_NAME).exists()


class ComparisonReader:
    """A comparison tree read back: its header, its rows (most moved first) and each row's two maps."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        path = self.root / COMPARISON_NAME
        if not path.exists():
            raise ComparisonError(f"{self.root} is not a comparison (no {COMPARISON_NAME})")
        try:
            self.header: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ComparisonError(f"unreadable {path}: {exc}") from None
        self.rows = pd.read_csv(self.root / ROWS_NAME, dtype={"key": str}, keep_default_na=False)
        heads = self.root / HEADS_NAME
        self.heads = pd.read_csv(heads) if heads.exists() else None

    def maps(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        return (np.load(self.root / "grids" / f"{key}_a.npy"), np.load(self.root / "grids" / f"{key}_b.npy"))
