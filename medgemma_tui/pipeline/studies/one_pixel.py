"""The one-pixel attack of one row (Su, Vargas and Sakurai 2019): k pixels inside the lung fields, searched by
differential evolution to flip the answer or lower its verdict's log-probability most, within a budget.

The target is the answer token carrying the verdict (``decision_index``: "no" in "Based on the image, there
is no ..."), read teacher-forced at the row that produced it; a candidate whose verdict token is no longer
the model's first choice stops the search after its generation, and the chosen pixels are then answered
again in full (``extract_record``) to say whether the *answer's label* flipped. Pixels are changed in the
model's own input (the processor's square frame: 896 x 896 for MedGemma), where one pixel is one pixel of
what the vision tower sees; the lung masks are resampled onto that frame (nearest), and the body, then the
whole frame, stand in when a film has no lung pixel. Costs at most ``population x 2k x (generations + 1)``
forward passes of the whole model (vision tower included), ``one_pixel_batch`` films per pass, plus one
answer and capture.

Writes ``robustness/{key}.json`` section ``one_pixel``; ``export.study_tables`` sums the flip rate, by
finding, and ``analysis/`` bounds it by the study bootstrap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.compare import compare_maps
from medgemma_tui.analysis.one_pixel import Budget, search
from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.json_values import jsonable
from medgemma_tui.model.loading import LoadedModel

if TYPE_CHECKING:
    from medgemma_tui.config import Config


def budget_of(config: Config) -> Budget:
    rob = config.robustness
    return Budget(pixels=max(rob.one_pixel, 1), max_delta=rob.one_pixel_max_delta, population=rob.one_pixel_population,
                  generations=rob.one_pixel_generations, seed=rob.seed)


def allowed_pixels(masks, side: int) -> tuple[np.ndarray, str]:
    """Flat indices of the frame's pixels (``side`` x ``side``) the attack may change, and which region they are."""
    from PIL import Image

    for name, mask in (("lungs", masks.lungs if masks is not None else None),
                       ("body", masks.body if masks is not None else None)):
        if mask is not None and np.any(mask):
            small = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).resize((side, side),
                                                                                    Image.Resampling.NEAREST)
            found = np.flatnonzero(np.asarray(small) > 127)
            if found.size:
                return found, name
    return np.arange(side * side), "film"


def finding_of(sample) -> str:
    """The row's finding: its ``finding`` column, else the most specific lexicon term of its question."""
    if getattr(sample, "finding", ""):
        return str(sample.finding)
    from medgemma_tui.analysis.lexicon import match_terms

    matches = match_terms(sample.question or "")
    if not matches:
        return ""
    longest = max(matches, key=lambda m: m.end - m.start)
    return str(longest.concept)


def one_pixel_study(loaded: LoadedModel, film, result: SampleResult, config: Config) -> dict[str, Any]:
    """The attack on one row; a JSON-ready dict (see the module's doc and README: "The one-pixel attack")."""
    from medgemma_tui.analysis.masks import anatomy_masks
    from medgemma_tui.analysis.record_analysis import analyse_record
    from medgemma_tui.engine.extract import extract_record
    from medgemma_tui.engine.pixel_edits import pixel_edit_score
    from medgemma_tui.engine.prompt import prompt_settings

    started = time.perf_counter()
    analysis, sample = result.analysis, result.sample
    record = analysis.record
    budget = budget_of(config)
    image = film.rgb.convert("RGB")
    width, height = image.size
    masks = analysis.masks if analysis.masks is not None else anatomy_masks(film.pixels)
    target = int(analysis.decision_index)
    score = pixel_edit_score(loaded, image, record, target, batch_size=config.robustness.one_pixel_batch)
    side = score.side
    allowed, region = allowed_pixels(masks, side)
    rows_of, cols_of = np.divmod(allowed, side)

    def scored(candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = candidates[..., 0].astype(np.int64)
        return score(rows_of[index], cols_of[index], candidates[..., 1])

    reference_logprob = float(record.answer_logprobs[target])
    found = search(scored, int(allowed.size), budget)
    index = found.candidate[:, 0].astype(np.int64)
    rows, cols, deltas = rows_of[index], cols_of[index], found.candidate[:, 1]
    before = np.rint(score.values()[rows, cols])  # 8-bit levels, as the processor was given them
    after = np.clip(np.round(before + deltas), 0, 255)

    attacked = extract_record(loaded, score.edited_image(rows, cols, deltas), sample.question,
                              max_new_tokens=config.decoding.max_new_tokens,
                              prompt_settings=prompt_settings(record.extra.get("prompt")))
    terms = list(config.analysis.terms) if config.analysis.terms else None
    perturbed = analyse_record(attacked, ground_truth=sample.answer, spec=analysis.view.spec, terms=terms)
    compared = compare_maps(np.asarray(analysis.grid, dtype=np.float64), perturbed.grid, (0, 0, width, height),
                            (width, height), masks, list(sample.bbox or ()))
    return jsonable({
        "key": sample.key,
        "question": sample.question,
        "finding": finding_of(sample),
        "method": "differential evolution (Su et al. 2019), scipy.optimize.differential_evolution",
        "budget": {"pixels": budget.pixels, "max_delta": budget.max_delta, "population": budget.population,
                   "generations": budget.generations, "max_queries": budget.max_queries, "seed": budget.seed,
                   "batch": config.robustness.one_pixel_batch},
        "region": region,
        "region_pixels": int(allowed.size),
        "frame": [side, side],
        "target": {"answer_index": target, "token": record.answer_tokens[target] if record.answer_tokens else "",
                   "logprob": reference_logprob},
        "reference": {"answer": record.answer, "answer_label": analysis.answer_label, "correct": analysis.correct},
        "pixels": [{"row": int(r), "col": int(c), "x": (c + 0.5) * width / side, "y": (r + 0.5) * height / side,
                    "before": float(b), "after": float(a)}
                   for r, c, b, a in zip(rows, cols, before, after, strict=True)],
        "logprob": found.logprob,
        "logprob_drop": reference_logprob - found.logprob,
        "verdict_displaced": found.flipped,
        "queries": found.queries,
        "generations": found.generations,
        "history": found.history,
        "answer": attacked.answer,
        "answer_label": perturbed.answer_label,
        "correct": perturbed.correct,
        "flip": perturbed.answer_label != analysis.answer_label,
        "answer_changed": attacked.answer != record.answer,
        **{name: compared.get(name) for name in ("js", "pearson", "top_iou")},
        "metric_deltas": compared.get("metric_deltas"),
        "grid": np.round(np.asarray(perturbed.grid, dtype=np.float64), 6).tolist(),
        "seconds": time.perf_counter() - started,
    })


def one_pixel_eval_study(config: Config) -> Callable[[LoadedModel, SampleResult], dict[str, Any]]:
    """The one-pixel attack on a row: ``one_pixel_study``'s dict (``make_studies`` files it)."""

    def study(loaded, result) -> dict[str, Any]:
        return one_pixel_study(loaded, result.film, result, config)

    return study
