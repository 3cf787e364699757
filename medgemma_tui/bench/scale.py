"""``medtui bench --scale``: whether a row costs at the end of a long run what it cost at the start.

Three measures, each on this machine (README, "medtui bench --scale"):

- the tree writer alone: ``ResultsTree.put_row`` with rows of every column of ``evaluation_results.csv``
  (a sentence answer, every metric a number), no model; rows per second over the first and the last
  ``window`` rows, and the CSV built from them at the end;
- a long demo eval: the demo CSV's rows repeated under new study ids, figures off, through
  ``run_evaluation``: the wall time between finished rows over the last tenth against rows 5-15%, and the
  resident memory at the end against row 15%;
- the app's run-all against ``eval`` on the same rows, rows per second (the app's run-all is measured by a
  function the caller passes in, so nothing here imports the app).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgemma_tui.config import Config
from medgemma_tui.data.schema import Sample, load_dataset
from medgemma_tui.export.columns import BOOLEAN_COLUMNS, COLUMNS, INTEGER_COLUMNS, TEXT_COLUMNS
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.model.loading import LoadedModel
from medgemma_tui.pipeline.batch import RunProgress
from medgemma_tui.pipeline.evaluation import run_evaluation
from medgemma_tui.resources import demo_dataset_csv, fixtures_dir

# (loaded model, samples, config) -> seconds the app's run-all took over them
RunAllMeasure = Callable[[LoadedModel, Sequence[Sample], Config], float]

FIGURES_OFF = {"visualization.save_overlays": False, "visualization.save_full": False,
               "visualization.save_masks": False, "visualization.save_plots": False}


def resident_mib() -> float | None:
    """This process's resident memory (``VmRSS`` of ``/proc/self/status``; None where there is none)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def synthetic_row(i: int) -> dict[str, Any]:
    """A row with every CSV column, as a finished MedGemma row reads: sentences where text goes."""
    row: dict[str, Any] = {}
    for name in COLUMNS:
        if name in TEXT_COLUMNS:
            row[name] = "Based on the image, there is no clear evidence of a pleural effusion."
        elif name in BOOLEAN_COLUMNS:
            row[name] = False
        else:
            row[name] = 12 + i % 7 if name in INTEGER_COLUMNS else 0.123456789 * (1 + i % 7)
    row.update({"row": i, "key": f"s{i:07d}_d{i:07d}_v0", "study_id": f"s{i:07d}", "dicom_id": f"d{i:07d}",
                "image_path": f"files/p{i % 100:02d}/s{i:07d}.dcm", "ground_truth": "no", "answer_label": "no",
                "correct": True, "variant_index": 0, "error": ""})
    return row


@dataclass
class WriterFigures:
    rows: int
    window: int
    start_rows_per_s: float
    end_rows_per_s: float
    csv_build_s: float
    start_cpu_ms_per_row: float  # this process's CPU time: the writer's own work, without waiting on the disk
    end_cpu_ms_per_row: float

    @property
    def end_over_start(self) -> float:
        return self.end_rows_per_s / self.start_rows_per_s


def measure_writer(rows: int = 100_000, window: int = 1000, folder: str | os.PathLike[str] | None = None
                   ) -> WriterFigures:
    """``rows`` synthetic rows through ``ResultsTree.put_row`` (each appended and synced), into ``folder``
    (a temporary folder by default: put it on the disk a real run would write)."""
    window = max(1, min(window, rows // 2))
    with tempfile.TemporaryDirectory(prefix="medtui-scale-", dir=folder) as out:
        tree = ResultsTree(out)
        with tree.locked():
            tree.reset()
            first_from, first_cpu = time.perf_counter(), time.process_time()
            for i in range(1, rows + 1):
                if i == rows - window + 1:
                    last_from, last_cpu = time.perf_counter(), time.process_time()
                tree.put_row(synthetic_row(i))
                if i == window:
                    first_to, first_cpu = time.perf_counter(), time.process_time() - first_cpu
            last_to, last_cpu = time.perf_counter(), time.process_time() - last_cpu
            tree.write_csv()
            build = time.perf_counter() - last_to
    start = window / (first_to - first_from)
    end = window / (last_to - last_from)
    return WriterFigures(rows, window, start, end, build, first_cpu * 1000 / window, last_cpu * 1000 / window)


def repeated_demo_csv(folder: Path, rows: int) -> Path:
    """The demo CSV's rows repeated under new study ids (so new keys) up to ``rows``; images as the demo's."""
    import pandas as pd

    demo = pd.read_csv(demo_dataset_csv(), dtype=str, keep_default_na=False)
    parts, k = [], 0
    while sum(len(p) for p in parts) < rows:
        part = demo.copy()
        part["study_id"] = [f"{k}{s}" for s in part["study_id"]]
        parts.append(part)
        k += 1
    path = folder / "repeated.csv"
    pd.concat(parts).head(rows).to_csv(path, index=False)
    return path


@dataclass
class LongEvalFigures:
    rows: int
    failed: int
    wall_s: float
    early_s_per_row: float  # rows 5-15%
    late_s_per_row: float  # the last tenth
    early_rss_mib: float | None  # at row 15%
    late_rss_mib: float | None  # at the end
    early_cpu_s_per_row: float = math.nan  # this process's CPU time, the same windows: what other load
    late_cpu_s_per_row: float = math.nan  # on the machine does not move
    stamps: list[float] = field(default_factory=list, repr=False)

    @property
    def cost_end_over_start(self) -> float:
        return self.late_s_per_row / self.early_s_per_row

    @property
    def memory_end_over_start(self) -> float | None:
        if not self.early_rss_mib or not self.late_rss_mib:
            return None
        return self.late_rss_mib / self.early_rss_mib


def demo_config(batch_size: int | str = 1) -> Config:
    return Config().with_overrides({**FIGURES_OFF, "decoding.batch_size": batch_size})


def measure_long_eval(loaded: LoadedModel, rows: int = 2000, batch_size: int | str = 1,
                      progress: Callable[[str], None] | None = None) -> LongEvalFigures:
    """``rows`` repeated demo rows through ``run_evaluation`` into a temporary tree, figures off."""
    if rows < 3:
        raise ValueError(f"the long eval needs at least 3 rows to compare its start and its end, got {rows}")
    early_a = max(1, rows // 20)
    early_b = max(early_a + 1, rows * 3 // 20)
    late_a = min(rows - 1, max(early_b, rows - rows // 10))
    stamps: list[float] = []
    cpu: list[float] = []
    memory: dict[str, float | None] = {}

    def seen(event: RunProgress) -> None:
        if event.event != "sample":
            return
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
        if event.index == early_b:
            memory["early"] = resident_mib()
        if event.index == rows - 1:
            memory["late"] = resident_mib()
        if progress is not None and event.index % max(1, rows // 10) == 0:
            progress(f"long eval: {event.index}/{rows} rows")

    with tempfile.TemporaryDirectory(prefix="medtui-scale-") as folder:
        samples = list(load_dataset(repeated_demo_csv(Path(folder), rows), fixtures_dir()).samples)
        tree = ResultsTree(Path(folder) / "out")
        with tree.locked():
            start = time.perf_counter()
            counts = run_evaluation(loaded, samples, tree, demo_config(batch_size), resume=False, progress=seen,
                                    analysis_plots=False)
            wall = time.perf_counter() - start
    if len(stamps) < rows:
        raise RuntimeError(f"the long eval stopped after {len(stamps)} of {rows} rows")

    def cost(a: int, b: int, clock: list[float]) -> float:  # seconds per row between finished rows a and b
        return (clock[b - 1] - clock[a - 1]) / (b - a)

    return LongEvalFigures(rows, counts.failed, wall, cost(early_a, early_b, stamps), cost(late_a, rows, stamps),
                           memory.get("early"), memory.get("late"), cost(early_a, early_b, cpu),
                           cost(late_a, rows, cpu), stamps)


@dataclass
class RunAllFigures:
    rows: int
    eval_rows_per_s: float
    app_rows_per_s: float | None
    method: str

    @property
    def app_over_eval(self) -> float | None:
        return None if self.app_rows_per_s is None else self.app_rows_per_s / self.eval_rows_per_s


def measure_run_all(loaded: LoadedModel, rows: int, measure: RunAllMeasure | None, batch_size: int | str = 1
                    ) -> RunAllFigures:
    """The same ``rows`` repeated demo rows through ``eval`` (its tree, figures off, no analysis plots) and
    through the app's run-all (``measure``); rows per second of each, after one warm-up row each."""
    config = demo_config(batch_size)
    with tempfile.TemporaryDirectory(prefix="medtui-scale-") as folder:
        samples = list(load_dataset(repeated_demo_csv(Path(folder), rows + 1), fixtures_dir()).samples)
        warm, samples = samples[-1:], samples[:-1]
        tree = ResultsTree(Path(folder) / "warm")
        with tree.locked():
            run_evaluation(loaded, warm, tree, config, analysis_plots=False)
        tree = ResultsTree(Path(folder) / "out")
        with tree.locked():
            start = time.perf_counter()
            counts = run_evaluation(loaded, samples, tree, config, resume=False, analysis_plots=False)
            eval_rate = counts.done / (time.perf_counter() - start)
        app_rate = None
        if measure is not None:
            measure(loaded, warm, config)
            app_rate = len(samples) / measure(loaded, samples, config)
    method = f"{measure.__module__}.{measure.__name__}" if measure is not None else "app not measured"
    return RunAllFigures(len(samples), eval_rate, app_rate, method)


def run_scale_bench(device: str = "auto", dtype: str = "auto", writer_rows: int = 100_000, eval_rows: int = 2000,
                    app_rows: int = 60, batch_size: int | str = 1, run_all: RunAllMeasure | None = None,
                    progress: Callable[[str], None] | None = None, shape: str = "demo") -> dict[str, Any]:
    """Every measure of the module docstring; one JSON-ready dict (``medtui bench --scale --json``).
    ``shape``: the model that answers the demo rows, the demo bundle or a random-weight shape
    (``model.shapes``: ``medgemma-4b`` is MedGemma-4b's config, its 896 px processor included)."""
    from medgemma_tui.engine.loading import load_for_capture, prepare_for_capture
    from medgemma_tui.model.shapes import load_shape

    say = progress or (lambda message: None)
    started = time.perf_counter()
    out: dict[str, Any] = {"device": None, "dtype": None, "shape": shape,
                           "batch_size": batch_size}
    if writer_rows:
        say(f"tree writer: {writer_rows} rows")
        writer = measure_writer(writer_rows)
        out["writer"] = {"rows": writer.rows, "window": writer.window,
                         "start_rows_per_s": writer.start_rows_per_s, "end_rows_per_s": writer.end_rows_per_s,
                         "end_over_start": writer.end_over_start, "csv_build_s": writer.csv_build_s,
                         "start_cpu_ms_per_row": writer.start_cpu_ms_per_row,
                         "end_cpu_ms_per_row": writer.end_cpu_ms_per_row,
                         "columns": len(COLUMNS)}
    if eval_rows or app_rows:
        loaded = load_for_capture("demo", device=device, dtype=dtype) if shape == "demo" \
            else prepare_for_capture(load_shape(shape, device=device, dtype=dtype))
        out["device"], out["dtype"] = str(loaded.device), loaded.info.dtype
        if str(loaded.device).startswith("cuda"):
            import torch

            out["gpu"] = torch.cuda.get_device_name(loaded.device)
        if eval_rows:
            say(f"long eval: {eval_rows} demo rows, figures off")
            long = measure_long_eval(loaded, eval_rows, batch_size, progress)
            out["long_eval"] = {"rows": long.rows, "rows_per_s": long.rows / long.wall_s, "failed": long.failed,
                                "wall_s": long.wall_s,
                                "early_s_per_row": long.early_s_per_row, "late_s_per_row": long.late_s_per_row,
                                "cost_end_over_start": long.cost_end_over_start,
                                "early_rss_mib": long.early_rss_mib, "late_rss_mib": long.late_rss_mib,
                                "memory_end_over_start": long.memory_end_over_start,
                                "early_cpu_s_per_row": long.early_cpu_s_per_row,
                                "late_cpu_s_per_row": long.late_cpu_s_per_row}
        if app_rows:
            say(f"run-all against eval: {app_rows} demo rows")
            both = measure_run_all(loaded, app_rows, run_all, batch_size)
            out["run_all"] = {"rows": both.rows, "eval_rows_per_s": both.eval_rows_per_s,
                              "app_rows_per_s": both.app_rows_per_s, "app_over_eval": both.app_over_eval,
                              "method": both.method}
    out["targets"] = scale_verdicts(out)
    out["wall_s"] = time.perf_counter() - started
    return out


# where the figures must be (README, "medtui bench --scale")
SCALE_TARGETS = {
    ("writer", "end_over_start"): (">=", 0.9),
    ("long_eval", "cost_end_over_start"): ("<=", 1.15),
    ("long_eval", "memory_end_over_start"): ("<=", 1.25),
    ("run_all", "app_over_eval"): (">=", 0.9),
}


def scale_verdicts(figures: dict[str, Any]) -> dict[str, str]:
    out = {}
    for (part, name), (op, limit) in SCALE_TARGETS.items():
        value = (figures.get(part) or {}).get(name)
        if value is None:
            continue
        met = value >= limit if op == ">=" else value <= limit
        out[f"{part}.{name}"] = f"{value:.3f}: target {op} {limit}: {'met' if met else 'MISSED'}"
    return out
