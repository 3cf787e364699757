"""One question about one film (``medtui check``): the row through the pipeline, timed step by step, and
with ``--export`` written as a complete results tree by the same writer as ``medtui eval``."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.config import Config
from medgemma_tui.data.images import load_image
from medgemma_tui.data.schema import Sample
from medgemma_tui.errors import MedtuiError
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.model.loading import LoadedModel
from medgemma_tui.pipeline.evaluation import EvalCounts, write_results
from medgemma_tui.pipeline.rows import RowSettings, analyse_row, answer_film, check_row


class CheckAnalysisError(MedtuiError):
    """``check --export``: the row's files were written but analysis/ could not be (the answer still prints)."""


@dataclass
class Checked:
    result: SampleResult
    loaded: LoadedModel
    timings: dict[str, float] = field(default_factory=dict)
    verify: dict[str, Any] | None = None


def single_sample(image: str | os.PathLike[str], question: str, ground_truth: str = "") -> Sample:
    """A Sample for one image and question; its key names the image and a hash of the question."""
    path = Path(image)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._-")[:48] or "image"
    digest = hashlib.sha1(question.encode("utf-8")).hexdigest()[:8]
    return Sample(
        key=f"{stem}_q{digest}", row=0, study_id="", dicom_id="", image_path=str(path), image=path,
        question=question, answer=ground_truth, baseline_question=question, question_variant="original",
        variant_index=0, strategy="", image_found="image_path",
    )


def check_image(load: Callable[[], LoadedModel], image: str | os.PathLike[str], question: str,
                settings: RowSettings, verify_eager: bool = False) -> Checked:
    """Answer ``question`` about ``image``: the film is read (and a bad one refused) before the model loads."""
    sample = single_sample(image, question)
    check_row(sample)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    film = load_image(sample.image)
    timings["load_image"] = time.perf_counter() - t
    t = time.perf_counter()
    loaded = load()
    timings["load_model"] = time.perf_counter() - t
    t = time.perf_counter()
    record = answer_film(loaded, sample, film, settings)
    timings["answer_and_capture"] = time.perf_counter() - t
    t = time.perf_counter()
    result = analyse_row(sample, film, record, settings, loaded)
    timings["analysis"] = time.perf_counter() - t
    checked = Checked(result=result, loaded=loaded, timings=timings)
    if verify_eager:
        from medgemma_tui.engine.reference import verify_against_eager

        t = time.perf_counter()
        checked.verify = verify_against_eager(loaded, film.rgb, record)
        timings["verify_eager"] = time.perf_counter() - t
    return checked


def export_check(out_dir: str | os.PathLike[str], checked: Checked, config: Config) -> Path:
    """Write one checked row as a standard results tree (``medtui check --export DIR``)."""
    config = config.with_overrides({"model.name_or_path": checked.loaded.source})
    tree = ResultsTree(out_dir)
    run_info = {"command": "medtui check",
                "timings_s": {k: round(v, 4) for k, v in checked.timings.items()}}
    with tree.locked():
        counts: EvalCounts = write_results([checked.result], tree, config, checked.loaded, run_info, plots=False)
    if counts.analysis_error:
        raise CheckAnalysisError(f"the tree was written but its analysis failed: {counts.analysis_error}")
    return tree.root
