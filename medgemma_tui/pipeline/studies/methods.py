"""Three studies of one row beside the answer: attribution methods side by side, the heads that
localise, and the model-parameter randomisation sanity check (Adebayo et al., 2018).

- ``methods_study``: the row's attention views (answer, layer-weighted, rollout, gated), gradient x
  attention and Grad-CAM, and the requested methods of ``engine.attribution`` (occlusion, RISE,
  integrated gradients, Grad-CAM++), each as the 16x16 grid its view shows, with the box metrics of
  ``analysis.metrics`` (pointing game, mass-in-box lift, AUROC), the seconds it cost beyond the answer
  pass, and, when the faithfulness study is on, its deletion and insertion gains and ERASER's
  comprehensiveness and sufficiency gains over random orders (the same orders for all four).
- ``heads_study``: per layer x head, the pointing game and mass-in-box lift of that head's own map at
  the row the view reads (boxed rows only), and the box and pointing grids for the top-heads choice,
  which ``export.method_tables`` makes across studies (leave-one-study-out).
- ``sanity_study``: the chosen methods on a deep copy of the model (the shared model is never
  changed) whose layers are re-initialised one more at a time, decoder from the top down and then the
  vision tower (``engine.attribution.randomise``); per step and method the Spearman rank correlation
  and SSIM of the map against the unrandomised one (``analysis.sanity``). The target stays the
  original answer token, fed the original tokens, so every step explains the same output.

Each returns a plain JSON-ready dict; ``pipeline.studies.make_studies`` files what the ``*_eval_study``
callables return in ``result.analysis.extras`` under each study's registered name (written to
``robustness/{key}.json``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.heads import row_head_scores
from medgemma_tui.analysis.metrics import map_metrics
from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.analysis.sanity import spearman, ssim
from medgemma_tui.analysis.views import compute_view
from medgemma_tui.export.method_tables import FAITHFULNESS_GAINS
from medgemma_tui.json_values import jsonable
from medgemma_tui.model.loading import LoadedModel
from medgemma_tui.registry import ATTRIBUTION, GRADIENT, METHODS, PER_METHOD, method_names

if TYPE_CHECKING:
    from medgemma_tui.config import Config

ATTENTION_VIEWS = ("answer", "layer_weighted", "rollout", "gated")  # read from the record, no model pass
METHOD_METRICS = ("pointing_hit", "pointing_chance", "mass_in_box_lift", "auroc")


def _image(film):
    return film.rgb if hasattr(film, "rgb") else film


def _box_metrics(grid: np.ndarray, analysis) -> dict[str, float | None]:
    if analysis.box_grid is None:
        return {name: None for name in METHOD_METRICS}
    metrics = map_metrics(grid, box=analysis.box_grid, pointing=analysis.pointing_cells)
    return {name: metrics[name] for name in METHOD_METRICS}


def methods_study(loaded: LoadedModel, result: SampleResult, config: Config, names: Sequence[str] = (),
                  faithfulness: bool = False) -> dict[str, Any]:
    """Every compared method's grid metrics, seconds and (with ``faithfulness``) ``FAITHFULNESS_GAINS``."""
    from medgemma_tui.engine.attribution.methods import add_method_maps
    from medgemma_tui.engine.gradients import add_model_views
    from medgemma_tui.pipeline.studies.faithfulness import faithfulness_study

    record, analysis = result.record, result.analysis
    image = _image(result.film)
    spec = analysis.view.spec
    seconds: dict[str, float] = {}
    gradients = method_names(GRADIENT)  # always compared
    wanted = [n for n in gradients if n not in record.maps]
    if wanted:
        add_model_views(loaded, image, record, wanted)
    for name in gradients:
        seconds[name] = float(record.timings_s.get(f"map_{name}", float("nan")))
    attribution = method_names(ATTRIBUTION)
    added = add_method_maps(loaded, image, record, [n for n in names if n in attribution], config.methods)
    seconds.update({name: entry["seconds"] for name, entry in added.items()})

    out: dict[str, Any] = {"rows": spec.rows, PER_METHOD: {}}
    for name in (*ATTENTION_VIEWS, *gradients, *added):
        t0 = time.perf_counter()
        try:
            view = compute_view(record, spec.with_(view=name))
        except ValueError as exc:  # e.g. no layer-mean attention for rollout
            out[PER_METHOD][name] = {"error": str(exc)}
            continue
        entry: dict[str, Any] = {"description": view.description, **_box_metrics(view.grid, analysis),
                                 "seconds": seconds.get(name, time.perf_counter() - t0)}
        if faithfulness:
            faith = faithfulness_study(loaded, result.film, record, view.grid, config)
            entry.update({gain: faith[gain] for gain in FAITHFULNESS_GAINS})
        notes_as = METHODS[name].notes_as if name in METHODS else None
        if notes_as is not None:
            entry[notes_as] = record.extra.get(f"{name}_{notes_as}")
        out[PER_METHOD][name] = entry
    return jsonable(out)



def heads_study(result: SampleResult) -> dict[str, Any] | None:
    """Per layer x head box metrics of the row the view reads; None for a row without a box."""
    record, analysis = result.record, result.analysis
    metrics = row_head_scores(record, analysis.view.spec.rows, analysis.box_grid, analysis.pointing_cells)
    if metrics is None:
        return None
    return jsonable({
        "rows": analysis.view.spec.rows,
        "study_id": result.sample.study_id,
        **{name: values.tolist() for name, values in metrics.items()},
        "box_grid": np.asarray(analysis.box_grid, dtype=float).tolist(),
        "pointing_cells": None if analysis.pointing_cells is None
        else np.asarray(analysis.pointing_cells, dtype=bool).tolist(),
    })


def sanity_study(loaded: LoadedModel, copy_of: LoadedModel, result: SampleResult, config: Config
                 ) -> dict[str, Any]:
    """Spearman and SSIM of each method's map against the unrandomised one, step by step."""
    from medgemma_tui.engine.attribution.methods import compute_method
    from medgemma_tui.engine.attribution.randomise import cascading_randomisation, restore

    started = time.perf_counter()
    # integrated gradients at a fixed ig_steps here, on the original and every randomised model alike:
    # the check compares maps' rank order, and refining the steps until complete cost up to 27 times as
    # much at every step (a randomised model's path is rougher still)
    settings = replace(config.methods, ig_max_steps=config.methods.ig_steps)
    record, image = result.record, _image(result.film)
    shape = tuple(record.grid)
    names = list(settings.sanity_methods)
    restore(copy_of, loaded)

    def maps() -> dict[str, np.ndarray]:
        return {name: np.clip(compute_method(copy_of, image, record, name, settings)[0], 0, None).reshape(shape)
                for name in names}

    original = maps()
    steps = ["original"]
    scores = {name: {"spearman": [1.0], "ssim": [1.0]} for name in names}
    for _, label in cascading_randomisation(copy_of, settings.seed, settings.sanity_vision):
        steps.append(label)
        for name, grid in maps().items():
            scores[name]["spearman"].append(spearman(original[name], grid))
            scores[name]["ssim"].append(ssim(original[name], grid))
    restore(copy_of, loaded)
    return jsonable({"steps": steps, PER_METHOD: scores, "seed": settings.seed,
                     "seconds": time.perf_counter() - started})


def methods_eval_study(config: Config, names: Sequence[str] | None = None, faithfulness: bool | None = None
                       ) -> Callable[[LoadedModel, SampleResult], dict[str, Any]]:
    """The methods study of a row: ``methods_study``'s dict (``make_studies`` files it)."""
    chosen = tuple(config.methods.names if names is None else names)
    faith = config.faithfulness.enabled if faithfulness is None else faithfulness

    def study(loaded, result) -> dict[str, Any]:
        return methods_study(loaded, result, config, chosen, faith)

    return study


def heads_eval_study(config: Config) -> Callable[[LoadedModel, SampleResult], dict[str, Any] | None]:
    """The heads study of a row: ``heads_study``'s dict, for boxed rows (``make_studies`` files it)."""

    def study(loaded, result) -> dict[str, Any] | None:
        return heads_study(result)

    return study


def sanity_eval_study(config: Config) -> Callable[[LoadedModel, SampleResult], dict[str, Any]]:
    """The sanity check of a row: ``sanity_study``'s dict (``make_studies`` files it); one deep copy
    of the model for the whole run, its weights restored from the shared model before every row."""
    held: dict[str, LoadedModel] = {}

    def study(loaded, result) -> dict[str, Any]:
        from medgemma_tui.engine.attribution.randomise import randomisable_copy

        if "copy" not in held:
            held["copy"] = randomisable_copy(loaded)
        return sanity_study(loaded, held["copy"], result, config)

    return study
