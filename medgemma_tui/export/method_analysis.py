"""``analysis/methods.csv``, ``heads.csv``, ``sanity.csv``, ``top_heads.json`` and their figures, for a
tree whose rows ran the methods, heads or sanity studies (``export.method_tables``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from medgemma_tui.config.schema import SECTIONS, MethodsConfig
from medgemma_tui.errors import first_line
from medgemma_tui.export.atomic import write_bytes_atomic, write_json_atomic
from medgemma_tui.export.method_tables import method_tables
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.registry import resolve, tabled_studies

if TYPE_CHECKING:
    import pandas as pd


def _write_csv(frame: pd.DataFrame, path) -> None:
    write_bytes_atomic(path, frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))


def has_method_studies(payload: dict[str, Any]) -> bool:
    """Whether a ``robustness/{key}.json`` holds a study with a table of its own (methods, heads, sanity)."""
    return any(payload.get(spec.name) for spec in tabled_studies())


def write_method_analysis(tree: ResultsTree, done: pd.DataFrame, focal_keys: set[str] | None = None,
                          plots: bool = True, formats=None, dpi=None,
                          payloads: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write the tables (and figures) of the studies present; returns summary.json's sections.
    ``payloads``: the rows' study files that hold such studies, where the caller has read them already."""
    from medgemma_tui.export.record_io import load_record

    keys = [str(k) for k in done["key"]] if not done.empty else []
    if payloads is None:
        payloads = []
        for key in keys:
            path = tree.robustness_path(key)
            if path.exists():
                payload = json.loads(path.read_text(encoding="utf-8"))
                if has_method_studies(payload):
                    payloads.append(payload)
    if not payloads:
        return {}
    study_of = dict(zip(keys, done["study_id"].astype(str), strict=True)) if "study_id" in done else {}
    section = next(name for name, cls in SECTIONS.items() if cls is MethodsConfig)  # run.json's [methods]
    k = int(((tree.read_run().get("config") or {}).get(section) or {}).get("top_heads", 4))

    def record_of(key: str):
        path = tree.record_path(key)
        return load_record(path) if path.exists() else None

    tables = method_tables(payloads, study_of, k, record_of, focal_keys)
    folder = tree.analysis_dir
    folder.mkdir(parents=True, exist_ok=True)
    plotted, failed = [], {}
    for spec in tabled_studies():
        name, frame, plot = spec.name, getattr(tables, spec.name, None), resolve(spec.figure)
        if frame is None or frame.empty:
            continue
        _write_csv(frame, folder / f"{name}.csv")
        if plots:
            try:
                path = plot(frame, folder / f"{name}.png", formats, dpi)
            except Exception as exc:  # a failing figure never costs the tables
                failed[f"{name}.png"] = f"{type(exc).__name__}: {first_line(exc)}"
                continue
            if path is not None:
                plotted.append(path.name)
    if tables.top_heads:
        write_json_atomic(folder / "top_heads.json", tables.top_heads)
    out: dict[str, Any] = dict(tables.summary)
    if plotted:
        out["method_plots"] = plotted
    if failed:
        out["method_plot_errors"] = failed
    return out
