"""The standard results tree (DESIGN.md): where every file of a run lives, its writer and its reader.

```
OUT/
  evaluation_results.csv          one row per sample, scalar columns only
  run.json                        model id and revision, versions, config, device, timings
  grids/{key}_grid.npy            16x16 float32 map of the configured view, sums to 1
  grids/{key}_meta.json           every scalar of the row plus token lists, gating, image span
  attention/{key}.safetensors     the AttentionRecord (export.record_io)
  masks/{key}_body.png, masks/{key}_lungs.png
  overlays/{key}_overlay.png      heatmap over the X-ray, at the X-ray's own resolution
  visualizations/{key}_full.png   multi-panel figure
  robustness/{key}.json           (issue 6)
  analysis/                       summary.json, hard_positives.csv, by_strategy.csv, plots
```

Never lose work: every file is written to a temporary sibling and renamed onto its name; a sample's
row enters the CSV (itself rewritten through a temporary file) only after all of the sample's files
exist, so a row in the CSV always means a finished sample and a kill at any moment leaves at worst
some files of an unlisted sample, which the next run rewrites. One run writes a tree at a time (an
advisory lock on ``OUT/.medtui.lock``, released by the kernel even on SIGKILL); taking the lock
removes temporary files a killed run left behind.

CSV columns: the dataset's own columns (``ground_truth`` is the dataset's ``answer``; ``answer`` is the
model's text), ``key``, ``answer_label``, ``correct``, the map view used, every metric of the analysis
core, the gating count, ``error`` (empty for a finished row). Timings live in ``grids/{key}_meta.json``
and ``run.json``, so two runs over the same data write the same CSV.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.metrics import BOX_METRIC_NAMES, METRIC_NAMES
from medgemma_tui.export.record_io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from medgemma_tui.config import Config
    from medgemma_tui.data.schema import Sample
    from medgemma_tui.engine.record import AttentionRecord
    from medgemma_tui.runner import SampleResult

CSV_NAME = "evaluation_results.csv"
RUN_NAME = "run.json"
LOCK_NAME = ".medtui.lock"
SUBDIRS = ("grids", "attention", "masks", "overlays", "visualizations", "robustness", "analysis")

SHARE_NAMES = ("bos_share", "image_share", "text_share")
STUDY_SECTIONS = ("robustness", "faithfulness")  # analysis.extras written to robustness/{key}.json
INPUT_COLUMNS = (
    "row",
    "key",
    "study_id",
    "dicom_id",
    "image_path",
    "question",
    "baseline_question",
    "question_variant",
    "variant_index",
    "strategy",
    "strategy_kinds",
    "finding",
    "bbox",
    "ground_truth",
)
RESULT_COLUMNS = (
    "answer",
    "answer_label",
    "correct",
    "answer_tokens",
    "answer_logprob",
    "map_view",
    "map_rows",
    "map_layers",
    "map_heads",
    "gated_count",
    "gated_terms",
    "image_width",
    "image_height",
    "box_area_fraction",
    *METRIC_NAMES,
    *SHARE_NAMES,
    *BOX_METRIC_NAMES,
    "error",
)
COLUMNS = INPUT_COLUMNS + RESULT_COLUMNS
TEXT_COLUMNS = frozenset(
    {"key", "study_id", "dicom_id", "image_path", "question", "baseline_question", "question_variant", "strategy",
     "strategy_kinds", "finding", "bbox", "ground_truth", "answer", "answer_label", "map_view", "map_rows",
     "map_layers", "map_heads", "gated_terms", "error"}
)
_TMP_NAME = re.compile(r"^\..+\.tmp$")


class TreeBusyError(RuntimeError):
    """Another process is writing the same results tree."""


# ---- atomic writes ----------------------------------------------------------------------------------
@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; when the block succeeds it replaces ``path`` in one rename."""
    tmp = atomic_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes, sync: bool = False) -> None:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())


def write_json_atomic(path: Path, payload: Any) -> None:
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False, ensure_ascii=False)
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))


def save_png_atomic(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    with atomic_file(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array)


# ---- values ---------------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for missing or NaN, repr for floats (exact round trip), True/False for bools."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return "" if not math.isfinite(value) else repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def bbox_text(boxes: Iterable[tuple[float, float, float, float]]) -> str:
    return ";".join(",".join(f"{v:g}" for v in box) for box in boxes)


# ---- rows -------------------------------------------------------------------------------------------
def sample_columns(sample: Sample) -> dict[str, Any]:
    """The dataset's own columns of a sample (the ground truth as ``ground_truth``)."""
    row = {
        "row": sample.row,
        "key": sample.key,
        "study_id": sample.study_id,
        "dicom_id": sample.dicom_id,
        "image_path": sample.image_path,
        "question": sample.question,
        "baseline_question": sample.baseline_question,
        "question_variant": sample.question_variant,
        "variant_index": sample.variant_index,
        "strategy": sample.strategy,
        "strategy_kinds": "+".join(sample.strategy_kinds),
        "finding": sample.finding,
        "bbox": bbox_text(sample.bbox),
        "ground_truth": sample.answer,
    }
    for name, value in sample.extra.items():
        row[name if name not in COLUMNS else f"input_{name}"] = value
    return row


def spec_columns(spec) -> dict[str, str]:
    """How the map was made, as scalar columns (see analysis.views.MapSpec)."""
    layers = "all" if spec.layers is None else f"{spec.layers[0]}-{spec.layers[1] - 1}"
    heads = "mean" if spec.head_mode == "mean" else f"{spec.head_mode} {spec.head}"
    return {"map_view": spec.view, "map_rows": str(spec.rows), "map_layers": layers, "map_heads": heads}


def result_columns(result: SampleResult) -> dict[str, Any]:
    """Every scalar a finished sample adds to its row."""
    from medgemma_tui.analysis.grounding import box_area_fraction

    analysis = result.analysis
    record = analysis.record
    width, height = result.film.size
    ends = set(record.extra.get("end_token_ids", []))
    content = [i for i, t in enumerate(record.answer_ids) if int(t) not in ends]
    row = {
        "answer": record.answer,
        "answer_label": analysis.answer_label,
        "correct": analysis.correct,
        "answer_tokens": len(content),
        "answer_logprob": float(np.sum(record.answer_logprobs[content])) if content else math.nan,
        **spec_columns(analysis.view.spec),
        "gated_count": len(analysis.gating.tokens),
        "gated_terms": ";".join(analysis.gating.terms),
        "image_width": width,
        "image_height": height,
        "box_area_fraction": (box_area_fraction(list(result.sample.bbox), (width, height), record.grid)
                              if result.sample.bbox else math.nan),
        "error": "",
    }
    for name in (*METRIC_NAMES, *SHARE_NAMES, *BOX_METRIC_NAMES):
        row[name] = float(analysis.metrics.get(name, math.nan))
    return row


# ---- the tree ---------------------------------------------------------------------------------------
class ResultsTree:
    """Paths of a results tree and its writer. Rows are kept in memory and the CSV rewritten atomically."""

    def __init__(self, out_dir: str | os.PathLike[str]):
        self.root = Path(out_dir)
        self._rows: dict[str, dict[str, str]] | None = None
        self._extra_columns: list[str] = []
        self._lock = None

    def __repr__(self) -> str:
        return f"ResultsTree({str(self.root)!r})"

    # -- paths
    @property
    def csv_path(self) -> Path:
        return self.root / CSV_NAME

    @property
    def run_path(self) -> Path:
        return self.root / RUN_NAME

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

    def lungs_mask_path(self, key: str) -> Path:
        return self.root / "masks" / f"{key}_lungs.png"

    def overlay_path(self, key: str) -> Path:
        return self.root / "overlays" / f"{key}_overlay.png"

    def full_path(self, key: str) -> Path:
        return self.root / "visualizations" / f"{key}_full.png"

    def robustness_path(self, key: str) -> Path:
        return self.root / "robustness" / f"{key}.json"

    def required_files(self, key: str) -> tuple[Path, ...]:
        """Files every finished sample has, whatever the visualisation settings."""
        return (self.grid_path(key), self.meta_path(key), self.record_path(key))

    def sample_files(self, key: str, config: Config | None = None) -> dict[str, Path]:
        """Every file a finished sample has under ``config``'s visualisation settings, by name."""
        vis = None if config is None else config.visualization
        files = {"grid": self.grid_path(key), "meta": self.meta_path(key), "attention": self.record_path(key)}
        if vis is None or vis.save_masks:
            files["mask_body"] = self.body_mask_path(key)
            files["mask_lungs"] = self.lungs_mask_path(key)
        if vis is None or vis.save_overlays:
            files["overlay"] = self.overlay_path(key)
        if vis is None or vis.save_full:
            files["full"] = self.full_path(key)
        return files

    # -- locking
    @contextmanager
    def locked(self) -> Iterator[ResultsTree]:
        """Hold the tree's write lock; clears temporary files a killed run left behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.root / LOCK_NAME, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise TreeBusyError(f"another medtui run is writing {self.root}") from None
            raise
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self.remove_stale_temporaries()
            self._lock = handle
            yield self
        finally:
            self._lock = None
            handle.close()

    def remove_stale_temporaries(self) -> list[Path]:
        removed = []
        for folder in (self.root, *(self.root / d for d in SUBDIRS)):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if _TMP_NAME.match(path.name) and path.is_file():
                    path.unlink(missing_ok=True)
                    removed.append(path)
        return removed

    # -- rows
    @property
    def rows(self) -> dict[str, dict[str, str]]:
        """key -> row (CSV text cells), read from the CSV once."""
        if self._rows is None:
            self._rows = {}
            if self.csv_path.exists():
                with open(self.csv_path, newline="", encoding="utf-8") as handle:
                    reader = csv.DictReader(handle)
                    self._extra_columns = [c for c in reader.fieldnames or () if c not in COLUMNS]
                    for row in reader:
                        if row.get("key"):
                            self._rows[row["key"]] = {k: v or "" for k, v in row.items() if k is not None}
        return self._rows

    def finished_keys(self) -> set[str]:
        """Keys whose row has no error and whose record, grid and meta files exist."""
        return {
            key for key, row in self.rows.items()
            if not row.get("error") and all(p.exists() for p in self.required_files(key))
        }

    def failed_keys(self) -> set[str]:
        return {key for key, row in self.rows.items() if row.get("error")}

    def reset(self) -> None:
        """Forget every row (``--no-resume``): the CSV is rewritten empty; files are overwritten as they come."""
        self._rows = {}
        self._extra_columns = []
        self.write_csv()

    def put_row(self, row: dict[str, Any]) -> None:
        """Add or replace the row of ``row["key"]`` and rewrite the CSV atomically (rows in dataset order)."""
        cells = {name: csv_cell(value) for name, value in row.items()}
        for name in cells:
            if name not in COLUMNS and name not in self._extra_columns:
                self._extra_columns.append(name)
        self.rows[cells["key"]] = cells
        self.write_csv()

    def write_csv(self) -> None:
        def order(item: dict[str, str]):
            text = item.get("row", "")
            return (int(text) if text.lstrip("-").isdigit() else math.inf, item.get("key", ""))

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, *self._extra_columns], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for row in sorted(self.rows.values(), key=order):
            writer.writerow(row)
        write_bytes_atomic(self.csv_path, buffer.getvalue().encode("utf-8"), sync=True)

    # -- samples
    def write_failure(self, sample: Sample, error: str) -> dict[str, Any]:
        row = {**sample_columns(sample), "error": error}
        self.put_row(row)
        return row

    def write_sample(self, result: SampleResult, config: Config | None = None) -> dict[str, Any]:
        """Write every file of one finished sample, then its CSV row. Returns the row."""
        from medgemma_tui.analysis.views import layer_summaries
        from medgemma_tui.export.record_io import save_record

        if config is None:
            from medgemma_tui.config import Config

            config = Config()
        key = result.sample.key
        analysis = result.analysis
        record = analysis.record
        vis = config.visualization
        files = self.sample_files(key, config)
        studies = {name: analysis.extras[name] for name in STUDY_SECTIONS if analysis.extras.get(name) is not None}
        if studies:
            files["robustness"] = self.robustness_path(key)

        grid = np.asarray(analysis.grid, dtype=np.float64)
        grid = (grid / grid.sum()).astype(np.float32)
        save_record(record, files["attention"])
        save_npy_atomic(files["grid"], grid)
        if "mask_body" in files and analysis.masks is not None:
            save_png_atomic(files["mask_body"], np.where(analysis.masks.body, 255, 0).astype(np.uint8))
            save_png_atomic(files["mask_lungs"], np.where(analysis.masks.lungs, 255, 0).astype(np.uint8))
        elif "mask_body" in files:
            del files["mask_body"], files["mask_lungs"]
        if "overlay" in files or "full" in files:
            from medgemma_tui.export import figures

            if "overlay" in files:
                figures.save_overlay(files["overlay"], result.film.pixels, grid, vis.colormap, vis.overlay_alpha)
            if "full" in files:
                figures.save_full_figure(files["full"], result, colormap=vis.colormap, alpha=vis.overlay_alpha)

        if studies:
            write_json_atomic(files["robustness"], {"key": key, **studies})

        row = {**sample_columns(result.sample), **result_columns(result)}
        meta = {
            **row,
            "map": {"description": analysis.view.description, "spec": spec_json(analysis.view.spec),
                    "grid_shape": list(grid.shape)},
            "image": str(result.sample.image),
            "image_size": list(result.film.size),
            "bbox_boxes": [list(b) for b in result.sample.bbox],
            "image_token_span": list(record.image_token_span),
            "prompt_length": record.prompt_length,
            "tokens": record.tokens,
            "question_positions": record.question_positions,
            "question_tokens": [record.tokens[int(p)] for p in record.question_positions],
            "answer_token_list": record.answer_tokens,
            "answer_ids": record.answer_ids,
            "answer_logprobs": record.answer_logprobs,
            "gating": {**analysis.gating.to_json(), "columns": analysis.gating.columns},
            "model": record.model.to_json(),
            "layer_summary": layer_summaries(record, analysis.view.spec.rows),
            "masks": mask_areas(analysis.masks),
            "timings_s": record.timings_s,
            "files": {name: str(path.relative_to(self.root)) for name, path in files.items()},
        }
        write_json_atomic(files["meta"], meta)
        missing = [str(p) for p in files.values() if not p.exists()]
        if missing:
            raise OSError(f"files missing after writing {key}: {', '.join(missing)}")
        self.put_row(row)
        return row

    # -- run.json
    def read_run(self) -> dict[str, Any]:
        if not self.run_path.exists():
            return {}
        try:
            return json.loads(self.run_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def write_run(self, payload: dict[str, Any]) -> None:
        write_json_atomic(self.run_path, payload)


def spec_json(spec) -> dict[str, Any]:
    return {"view": spec.view, "rows": spec.rows, "layers": list(spec.layers) if spec.layers else None,
            "head_mode": spec.head_mode, "head": spec.head}


def mask_areas(masks) -> dict[str, float] | None:
    if masks is None:
        return None
    return {name: float(np.mean(getattr(masks, name))) for name in ("body", "lung_right", "lung_left", "lungs")}


# ---- run.json -----------------------------------------------------------------------------------------
def environment() -> dict[str, str | None]:
    """Versions of everything that decides the numbers."""
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name, dist in (("medgemma_tui", "medgemma-tui"), ("torch", "torch"), ("transformers", "transformers"),
                       ("numpy", "numpy"), ("safetensors", "safetensors")):
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def model_json(loaded) -> dict[str, Any]:
    """Model id, requested revision and, for hub models, the commit the weights came from."""
    info = loaded.info.to_json()
    config = getattr(loaded.model, "config", None)
    info["commit"] = getattr(config, "_commit_hash", None)
    info["source"] = loaded.source
    return info


# ---- single-sample trees (``medtui check --export``) ---------------------------------------------------
def single_sample(image: str | os.PathLike[str], question: str, ground_truth: str = "") -> Sample:
    """A Sample for one image and question; its key names the image and a hash of the question."""
    from medgemma_tui.data.schema import Sample

    path = Path(image)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._-")[:48] or "image"
    digest = hashlib.sha1(question.encode("utf-8")).hexdigest()[:8]
    return Sample(
        key=f"{stem}_q{digest}", row=0, study_id="", dicom_id="", image_path=str(path), image=path,
        question=question, answer=ground_truth, baseline_question=question, question_variant="original",
        variant_index=0, strategy="",
    )


def export_check(out_dir, image, question: str, film, analysis, loaded=None, timings: dict | None = None,
                 colormap: str | None = None, config: Config | None = None) -> Path:
    """Write one checked sample as a standard results tree (``medtui check --export DIR``)."""
    from medgemma_tui.config import Config
    from medgemma_tui.export.summary import write_analysis
    from medgemma_tui.runner import SampleResult

    config = config or Config()
    if colormap:
        config = config.with_overrides({"visualization.colormap": colormap})
    if loaded is not None:
        config = config.with_overrides({"model.name_or_path": loaded.source})
    result = SampleResult(sample=single_sample(image, question), film=film, analysis=analysis)
    tree = ResultsTree(out_dir)
    with tree.locked():
        tree.write_sample(result, config)
        run = tree.read_run()
        run.pop("previous_runs", None)
        run.update({
            "command": "medtui check",
            "status": "done",
            "finished": _now(),
            "config": config.to_json(),
            "versions": environment(),
            "timings_s": {k: round(v, 4) for k, v in (timings or {}).items()},
        })
        if loaded is not None:
            run.update({"model": model_json(loaded), "device": str(loaded.device), "dtype": loaded.info.dtype})
        tree.write_run(run)
        write_analysis(tree, plots=False)
    return tree.root


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# ---- reader -------------------------------------------------------------------------------------------
class ResultsReader:
    """A results tree read back: rows, records, maps and metadata, without the model."""

    def __init__(self, out_dir: str | os.PathLike[str]):
        self.tree = ResultsTree(out_dir)
        self.root = self.tree.root
        self.rows = read_rows(self.tree.csv_path)

    @property
    def keys(self) -> list[str]:
        """Keys of the finished rows (those with a record), in CSV order."""
        if self.rows.empty:
            return []
        done = self.rows[self.rows["error"] == ""]
        return [k for k in done["key"].tolist() if self.tree.record_path(k).exists()]

    @property
    def failed(self) -> pd.DataFrame:
        return self.rows[self.rows["error"] != ""] if not self.rows.empty else self.rows

    @property
    def run(self) -> dict[str, Any]:
        return self.tree.read_run()

    @property
    def config(self) -> Config | None:
        block = self.run.get("config")
        if not block:
            return None
        from medgemma_tui.config import Config

        return Config.from_json(block, label=str(self.tree.run_path))

    def row(self, key: str) -> dict[str, Any]:
        match = self.rows[self.rows["key"] == key]
        if match.empty:
            raise KeyError(key)
        return match.iloc[0].to_dict()

    def load_record(self, key: str) -> AttentionRecord:
        from medgemma_tui.export.record_io import load_record

        path = self.tree.record_path(key)
        if not path.exists():
            raise KeyError(f"no record for {key!r} in {self.root}")
        return load_record(path)

    def load_meta(self, key: str) -> dict[str, Any]:
        path = self.tree.meta_path(key)
        if not path.exists():
            raise KeyError(f"no metadata for {key!r} in {self.root}")
        return json.loads(path.read_text(encoding="utf-8"))

    def load_grid(self, key: str) -> np.ndarray:
        path = self.tree.grid_path(key)
        if not path.exists():
            raise KeyError(f"no grid for {key!r} in {self.root}")
        return np.load(path)

    def summary(self) -> dict[str, Any]:
        """``analysis/summary.json`` when the run wrote it, else computed from the rows now."""
        path = self.tree.analysis_dir / "summary.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        from medgemma_tui.export.summary import summarise

        return summarise(self.rows, self.load_grid)


def read_rows(csv_path: Path) -> pd.DataFrame:
    """The CSV as a DataFrame: text columns as str ('' when empty), numbers as float, ``correct`` as boolean."""
    import pandas as pd

    if not csv_path.exists():
        return pd.DataFrame({name: pd.Series(dtype=object if name in TEXT_COLUMNS else float) for name in COLUMNS})
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_filter=False)
    for name in frame.columns:
        if name == "correct":
            frame[name] = frame[name].map({"True": True, "False": False}).astype("boolean")
        elif name in ("row", "variant_index", "answer_tokens", "gated_count", "image_width", "image_height"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
        elif name in RESULT_COLUMNS and name not in TEXT_COLUMNS:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return frame


def read_results(out_dir: str | os.PathLike[str]) -> ResultsReader:
    """Open a results tree written by ``medtui eval`` or ``medtui check --export``."""
    root = Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results tree not found: {root}")
    if not (root / CSV_NAME).exists():
        raise FileNotFoundError(f"{root} is not a results tree (no {CSV_NAME})")
    return ResultsReader(root)
