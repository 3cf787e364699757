"""The demo eval as the bench measures it: the first rows of the demo CSV through ``run_evaluation``."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

from medgemma_tui.config import load_config
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.engine.loading import load_for_capture
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.pipeline.batch import RunProgress
from medgemma_tui.pipeline.evaluation import run_evaluation
from medgemma_tui.resources import demo_dataset_csv


@dataclass
class EvalFigures:
    samples: int
    failed: int
    wall_s: float
    sample_s: list[float]
    method: str

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.wall_s if self.wall_s > 0 else float("nan")


def measure_demo_eval(device: str, dtype: str, limit: int, adapter=None) -> EvalFigures:
    """The demo eval (demo bundle, the first ``limit`` rows of the demo CSV, ``adapter`` merged) into a
    temporary tree."""
    loaded = load_for_capture("demo", device=device, dtype=dtype, adapter=adapter)
    samples = list(load_dataset(demo_dataset_csv()).samples[:limit])
    sample_s: list[float] = []

    def progress(event: RunProgress) -> None:
        if event.event == "sample" and event.sample_s is not None:
            sample_s.append(event.sample_s)

    with tempfile.TemporaryDirectory(prefix="medtui-bench-") as out:
        tree = ResultsTree(out)
        with tree.locked():
            start = time.perf_counter()
            counts = run_evaluation(loaded, samples, tree, load_config(None), resume=False, progress=progress)
            wall = time.perf_counter() - start
    return EvalFigures(counts.done, counts.failed, wall, sample_s,
                       "pipeline.evaluation.run_evaluation into a temporary results tree, summary and plots included")
