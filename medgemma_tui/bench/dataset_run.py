"""A small dataset run three ways in one process, on the bench's model: what a whole eval costs per row.

The bench dataset is a few films with several questions each (as a hard-positive set has):

- ``loop``: the floor, a bare loop that answers: per row the processor and a plain fast-path
  ``generate`` on SDPA, nothing captured, nothing written;
- ``old``: the old pipeline's way, per row: an eager ``generate`` with ``output_attentions`` and an
  eager ``output_attentions`` re-run of the sequence (on the first film's rows: it costs the most);
- ``eval``: ``pipeline.evaluation.run_evaluation`` into a temporary results tree with everything
  captured, analysed and written (figures, masks, analysis/), the film's vision pass reused per film,
  ``batch_size`` rows of a film per generate (``[decoding] batch_size``; the loop stays one row at a time).

Every generate makes the same number of tokens (``min_new_tokens`` pinned), so the three do the same
decoding work per row.
"""

from __future__ import annotations

import csv
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgemma_tui.bench.workload import Workload, attention_paths
from medgemma_tui.config import Config
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.engine.extract import batch_size_for, forbidden_tokens, model_inputs
from medgemma_tui.engine.prompt import build_prompt
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.model.loading import LoadedModel
from medgemma_tui.pipeline.batch import RunProgress
from medgemma_tui.pipeline.evaluation import run_evaluation

BENCH_QUESTIONS = (
    "Is there a pleural effusion?",
    "Is there a pneumothorax?",
    "Is the heart enlarged?",
    "Is there a nodule in the right lung?",
    "Is there consolidation in the left lower lobe?",
    "Are the lungs clear?",
)


@dataclass
class DatasetFigures:
    films: int
    rows: int
    loop_s: list[float]  # per row
    old_s: list[float]  # per row, the first film's rows
    eval_wall_s: float
    eval_row_s: list[float]
    vision_passes: int
    gpu_util: float | None
    batch_size: int = 1  # rows of one film per generate in the eval

    def to_json(self) -> dict[str, Any]:
        loop = float(np.mean(self.loop_s))
        per_row = self.eval_wall_s / self.rows
        return {
            "films": self.films,
            "rows": self.rows,
            "batch_size": self.batch_size,
            "loop_s_per_row": loop,
            "old_s_per_row": float(np.mean(self.old_s)) if self.old_s else None,
            "eval_s_per_row": per_row,
            "eval_over_loop": per_row / loop,
            "old_over_eval": float(np.mean(self.old_s)) / per_row if self.old_s else None,
            "vision_reuse_rows_per_film": self.rows / self.vision_passes if self.vision_passes else None,
            "gpu_util": self.gpu_util,
            "eval_row_s": self.eval_row_s,
        }


def bench_films(films: int, side: int = 512) -> list:
    """Deterministic film-like pictures, each a little different (lung size, rib phase, a bright spot)."""
    from PIL import Image

    out = []
    y, x = np.mgrid[0:side, 0:side] / side
    for i in range(films):
        body = ((x - 0.5) / 0.45) ** 2 + ((y - 0.55) / 0.5) ** 2 < 1
        lungs = (((np.abs(x - 0.5) - 0.2) / (0.12 + 0.01 * i)) ** 2 + ((y - 0.5) / 0.3) ** 2) < 1
        spot = ((x - 0.3 - 0.1 * i) ** 2 + (y - 0.4) ** 2) < 0.002
        film = 0.15 + 0.55 * body - 0.35 * lungs + 0.3 * spot + 0.05 * np.sin((40 + 3 * i) * y)
        out.append(Image.fromarray(np.clip(film * 255, 0, 255).astype(np.uint8), mode="L").convert("RGB"))
    return out


def write_bench_dataset(folder: Path, films: list, questions: tuple[str, ...]) -> Path:
    """The films as PNGs and a CSV of every question about each (the dataset schema's columns)."""
    (folder / "films").mkdir(parents=True, exist_ok=True)
    csv_path = folder / "bench.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study_id", "dicom_id", "image_path", "question", "answer"])
        for i, film in enumerate(films):
            film.save(folder / "films" / f"film{i}.png")
            for question in questions:
                writer.writerow([f"bench{i}", f"film{i}", f"films/film{i}.png", question, "no"])
    return csv_path


def gpu_utilisation(device) -> float | None:
    """The GPU's utilisation now, in percent (NVML through torch), where a GPU is used and NVML answers."""
    if not str(device).startswith("cuda"):
        return None
    try:
        return float(torch.cuda.utilization(torch.device(device)))
    except Exception:  # NVML missing or not answering: not measured
        return None


def measure_dataset(loaded: LoadedModel, films: int, questions: tuple[str, ...], new_tokens: int,
                    progress=lambda message: None, batch_size: int | str = 1) -> DatasetFigures:
    """The dataset three ways; ``batch_size`` (a whole number or "auto", as ``[decoding] batch_size``) is
    the eval's rows per generate."""
    model = loaded.model
    rows_per_generate = batch_size_for(batch_size, loaded, new_tokens)
    pictures = bench_films(films)
    suppress = forbidden_tokens(model.config)

    progress(f"dataset: bare loop over {films * len(questions)} rows")
    loop_s = []
    with torch.no_grad(), attention_paths(model, "sdpa", "sdpa"):
        for picture in pictures:
            for question in questions:
                start = time.perf_counter()
                inputs = model_inputs(loaded, build_prompt(loaded.processor, model.config, picture, question))
                model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, suppress_tokens=suppress)
                loop_s.append(time.perf_counter() - start)

    progress(f"dataset: the old way over {len(questions)} rows")
    old_s = []
    with torch.no_grad():
        for question in questions:
            workload = Workload(loaded, pictures[0], question, new_tokens)
            with workload.on_eager():
                start = time.perf_counter()
                workload.old_sample()
                old_s.append(time.perf_counter() - start)

    progress(f"dataset: medtui eval over {films * len(questions)} rows, {rows_per_generate} per generate")
    row_s: list[float] = []
    utilisation: list[float] = []

    def on_progress(event: RunProgress) -> None:
        if event.event == "sample" and event.sample_s is not None:
            row_s.append(event.sample_s)
            util = gpu_utilisation(loaded.device)
            if util is not None:
                utilisation.append(util)

    calls = []
    real = model.get_image_features

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    config = Config().with_overrides({"decoding.max_new_tokens": new_tokens, "decoding.batch_size": rows_per_generate})
    with tempfile.TemporaryDirectory(prefix="medtui-bench-data-") as folder:
        samples = load_dataset(write_bench_dataset(Path(folder), pictures, questions)).samples
        tree = ResultsTree(Path(folder) / "out")
        model.get_image_features = counted
        try:
            with tree.locked():
                start = time.perf_counter()
                counts = run_evaluation(loaded, samples, tree, config, progress=on_progress)
                wall = time.perf_counter() - start
        finally:
            del model.get_image_features  # the instance attribute goes; the class method is back
    if counts.failed:
        raise RuntimeError(f"the bench eval failed {counts.failed} rows: {counts.failures[:1]}")
    return DatasetFigures(films, len(samples), loop_s, old_s, wall, row_s, len(calls),
                          float(np.mean(utilisation)) if utilisation else None, rows_per_generate)
