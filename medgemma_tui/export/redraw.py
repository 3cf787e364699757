"""Every figure of a results tree drawn again from its files, in the current style, a chosen format and dpi:
the dataset figures of ``analysis/`` with their captions, the methods', heads' and sanity figures where
those tables exist, and each finished row's ``visualizations/{key}_full``. No model is loaded and no
number is recomputed: a style change needs no rerun (``medtui figures``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medgemma_tui.errors import MedtuiError, first_line
from medgemma_tui.export import figures
from medgemma_tui.export.layout import NotATreeError
from medgemma_tui.registry import FAITHFULNESS


@dataclass
class Redrawn:
    """What ``redraw_tree`` wrote, and what it could not draw (name -> one-line reason)."""

    root: Path
    dataset: list[str] = field(default_factory=list)  # analysis/ figures, by file name
    rows: int = 0  # per-row figures
    captions: bool = False
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def redraw_tree(root: str | Path, formats: Sequence[str] | str | None = None, dpi: float | None = None,
                rows: bool = True, dataset: bool = True,
                progress: Callable[[int, int, str], None] | None = None) -> Redrawn:
    """Draw every figure of the tree at ``root`` again (see the module's docstring). ``formats`` and ``dpi``
    are checked before anything is drawn; a figure that fails is named in ``failed`` and the rest go on."""
    from medgemma_tui.export.reader import ResultsReader
    from medgemma_tui.export.tree import ResultsTree

    formats = figures.check_formats(formats)
    dpi = figures.check_dpi(dpi)
    root = Path(root)
    tree = ResultsTree(root)
    if not root.is_dir() or not tree.csv_path.exists():
        raise NotATreeError(f"{root} is not a results tree (no {tree.csv_path.name})")
    reader = ResultsReader(root)
    out = Redrawn(root)
    if dataset:
        _dataset_figures(reader, formats, dpi, out)
    if rows:
        _row_figures(reader, formats, dpi, out, progress)
    return out


def _dataset_figures(reader, formats, dpi, out: Redrawn) -> None:
    import pandas as pd

    from medgemma_tui.export.captions import CAPTIONS_NAME
    from medgemma_tui.export.summary import write_plots
    from medgemma_tui.registry import resolve, tabled_studies

    tree = reader.paths  # the tree's paths (export.layout.TreeLayout)
    summary = reader.summary()
    path = tree.analysis_dir / "by_strategy.csv"
    if path.exists():
        strategies = pd.read_csv(path, keep_default_na=False)
    else:
        from medgemma_tui.analysis.consistency import consistency_tables

        strategies = consistency_tables(reader.rows, reader.load_grid).strategies
    tree.analysis_dir.mkdir(parents=True, exist_ok=True)
    written, failed = write_plots(tree, reader.rows, strategies, formats, dpi, summary=summary,
                                  faithfulness=_faithfulness_payloads(reader))
    out.dataset.extend(written)
    out.failed.update(failed)
    out.captions = (tree.analysis_dir / CAPTIONS_NAME).exists() and bool(written)
    for spec in tabled_studies():
        name, plot = spec.name, resolve(spec.figure)
        table = tree.analysis_dir / f"{name}.csv"
        if not table.exists():
            continue
        try:
            path = plot(pd.read_csv(table), tree.analysis_dir / f"{name}.png", formats, dpi)
        except Exception as exc:  # one figure's failure never costs the others
            out.failed[f"{name}.png"] = f"{type(exc).__name__}: {first_line(exc)}"
            continue
        if path is not None:
            out.dataset.append(path.name)


def _faithfulness_payloads(reader) -> list[dict]:
    """The finished rows' ``faithfulness`` sections of ``robustness/{key}.json``, each with the row's answer
    label from the CSV (as ``export.summary.study_summary`` gives them to the faithfulness figure)."""
    out = []
    for key in reader.keys:
        path = reader.paths.robustness_path(key)
        if not path.exists():
            continue
        faith = json.loads(path.read_text(encoding="utf-8")).get(FAITHFULNESS)
        if faith:
            label = reader.row(key).get("answer_label") or faith.get("answer_label")
            out.append({**faith, "answer_label": str(label or "")})
    return out


def _row_figures(reader, formats, dpi, out: Redrawn, progress) -> None:
    from medgemma_tui.export.sample_sheet import from_tree, save_row_figure

    tree = reader.paths  # the tree's paths (export.layout.TreeLayout)
    config = reader.config
    colormap = config.visualization.colormap if config is not None else "magma"
    alpha = config.visualization.overlay_alpha if config is not None else 0.45
    keys = [k for k in reader.keys if tree.meta_path(k).exists() and tree.grid_path(k).exists()]
    tree.full_path("x").parent.mkdir(parents=True, exist_ok=True)
    for i, key in enumerate(keys, 1):
        try:
            content = from_tree(tree, key, reader.row(key), colormap, alpha)
            save_row_figure(tree.full_path(key), content, formats, dpi)
            out.rows += 1
        except (OSError, ValueError, KeyError, MedtuiError, json.JSONDecodeError) as exc:  # a missing film
            out.failed[key] = f"{type(exc).__name__}: {first_line(exc)}"
        if progress is not None:
            progress(i, len(keys), key)
