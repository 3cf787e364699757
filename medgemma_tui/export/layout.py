"""Where every file of a results tree lives: one copy of the layout, for the writer, the reader and the app.

```
OUT/
  evaluation_results.csv          one row per sample, scalar columns only
  evaluation_rows.jsonl           rows finished since the CSV was last built (export.journal); empty between runs
  run.json                        model id and revision, versions, config, device, timings
  grids/{key}_grid.npy            16x16 float32 map of the configured view, sums to 1
  grids/{key}_meta.json           every scalar of the row plus token lists, gating, image span
  attention/{key}.safetensors     the AttentionRecord (export.record_io)
  masks/{key}_{body,lungs,lung_right,lung_left,mediastinum}.png   0/255, the film's size
  overlays/{key}_overlay.png      heatmap over the X-ray, at the X-ray's own resolution
  visualizations/{key}_full.png   multi-panel figure
  robustness/{key}.json           the robustness and faithfulness studies of the row
  analysis/                       summary.json, hard_positives.csv, by_strategy.csv, plots
```
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medgemma_tui.errors import MedtuiError

if TYPE_CHECKING:
    from medgemma_tui.config import Config

CSV_NAME = "evaluation_results.csv"
JOURNAL_NAME = "evaluation_rows.jsonl"


class NotATreeError(MedtuiError, FileNotFoundError):
    """The folder given (to open, merge, redraw or compare) is missing or is not a results tree."""
RUN_NAME = "run.json"
LOCK_NAME = ".medtui.lock"
MASK_PARTS = ("body", "lungs", "lung_right", "lung_left", "mediastinum")  # masks/{key}_{part}.png
STUDIES_DIR = "robustness"  # the folder of each row's studies, robustness/{key}.json (meta.json's files key too)
SUBDIRS = ("grids", "attention", "masks", "overlays", "visualizations", STUDIES_DIR, "analysis")


class TreeLayout:
    """The paths of a results tree rooted at ``root``."""

    def __init__(self, out_dir: str | os.PathLike[str]):
        self.root = Path(out_dir)

    @property
    def csv_path(self) -> Path:
        return self.root / CSV_NAME

    @property
    def journal_path(self) -> Path:
        return self.root / JOURNAL_NAME

    @property
    def run_path(self) -> Path:
        return self.root / RUN_NAME

    def read_run(self) -> dict[str, Any]:
        """``run.json`` as a dict; ``{}`` where it is missing or unreadable (a run killed while writing it)."""
        if not self.run_path.exists():
            return {}
        try:
            return json.loads(self.run_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    @property
    def analysis_dir(self) -> Path:
        return self.root / "analysis"

    def grid_path(self, key: str) -> Path:
        return self.root / "grids" / f"{key}_grid.npy"

    def meta_path(self, key: str) -> Path:
        return self.root / "grids" / f"{key}_meta.json"

    def record_path(self, key: str) -> Path:
        return self.root / "attention" / f"{key}.safetensors"

    def body_mask_path(self, key: str) -> Path:
        return self.root / "masks" / f"{key}_body.png"

    def mask_path(self, key: str, part: str) -> Path:
        """``masks/{key}_{part}.png``: part is body, lungs, lung_right, lung_left or mediastinum."""
        return self.root / "masks" / f"{key}_{part}.png"

    def lungs_mask_path(self, key: str) -> Path:
        return self.root / "masks" / f"{key}_lungs.png"

    def overlay_path(self, key: str) -> Path:
        return self.root / "overlays" / f"{key}_overlay.png"

    def full_path(self, key: str) -> Path:
        return self.root / "visualizations" / f"{key}_full.png"

    def robustness_path(self, key: str) -> Path:
        return self.root / STUDIES_DIR / f"{key}.json"

    def required_files(self, key: str) -> tuple[Path, ...]:
        """Files every finished sample has, whatever the visualisation settings."""
        return (self.grid_path(key), self.meta_path(key), self.record_path(key))

    def sample_files(self, key: str, config: Config | None = None) -> dict[str, Path]:
        """Every file a finished sample has under ``config``'s visualisation settings, by name."""
        vis = None if config is None else config.visualization
        files = {"grid": self.grid_path(key), "meta": self.meta_path(key), "attention": self.record_path(key)}
        if vis is None or vis.save_masks:
            for part in MASK_PARTS:
                files[f"mask_{part}"] = self.mask_path(key, part)
        if vis is None or vis.save_overlays:
            files["overlay"] = self.overlay_path(key)
        if vis is None or vis.save_full:
            files["full"] = self.full_path(key)
        return files
