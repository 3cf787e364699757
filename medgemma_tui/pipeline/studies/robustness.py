"""The robustness study of one row: the film under each configured perturbation, answered and captured again.

Per perturbation: the answer, its label, whether it flipped against the unperturbed answer, and the
perturbed map against the unperturbed one (JS in nats, Pearson r, IoU of the top 10% cells, every map
metric's delta, ``analysis.compare``). Costs one answer and capture per perturbation; a perturbed
film is a new film (nothing of the original's vision pass is reused).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.compare import compare_maps
from medgemma_tui.analysis.perturbations import Perturbation, from_config, square_box
from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.engine.record import SHARE_COLUMNS, AttentionRecord, first_answer_token
from medgemma_tui.json_values import jsonable
from medgemma_tui.model.loading import LoadedModel

if TYPE_CHECKING:
    from medgemma_tui.config import Config



def robustness_study(
    loaded: LoadedModel,
    film,
    result: SampleResult,
    config: Config,
    perturbations: Iterable[Perturbation] | None = None,
    on_record: Callable[[Perturbation, AttentionRecord], None] | None = None,
) -> dict[str, Any]:
    """The sample's film under each perturbation, against the unperturbed run in ``result``.

    ``film`` is the ``data.images.LoadedImage`` the result was made from; the perturbations come from
    ``config.robustness`` unless given. The map is the result's own view (same spec), recomputed on
    each perturbed record. Maps are compared on the part of the film both runs saw: the whole film,
    except for ``crop`` (the centred square; the unperturbed map is resampled onto it by area) and
    ``pad`` (the perturbed map's padding cells are dropped and reported as ``mass_outside_film``).
    Rotation is compared cell by cell in the film's frame (3 degrees moves a corner by under a cell).

    Returns ``key``, ``question``, ``map``, ``reference`` (the unperturbed answer, label and first
    token), ``perturbations`` (one entry each: name, parameter, strength, seed, pixels_differing,
    answer, answer_label, correct, flip, answer_changed, first_token, compared_on, region,
    mass_outside_film, js, pearson, top_iou, metrics, metric_deltas, share_deltas, seconds), and
    ``flip_rate``, ``flipped``, ``mean_js``, ``max_js``, ``seconds``.
    """
    from PIL import Image

    from medgemma_tui.analysis.masks import anatomy_masks
    from medgemma_tui.analysis.record_analysis import analyse_record
    from medgemma_tui.analysis.views import row_shares
    from medgemma_tui.engine.extract import extract_record
    from medgemma_tui.engine.prompt import prompt_settings

    started = time.perf_counter()
    rob = config.robustness
    chosen = list(from_config(rob) if perturbations is None else perturbations)
    analysis, sample = result.analysis, result.sample
    spec = analysis.view.spec
    terms = list(config.analysis.terms) if config.analysis.terms else None
    rgb = np.asarray(film.rgb.convert("RGB"), dtype=np.uint8)
    height, width = rgb.shape[:2]
    masks = analysis.masks if analysis.masks is not None else anatomy_masks(film.pixels)
    boxes = list(sample.bbox or ())
    reference_grid = np.asarray(analysis.grid, dtype=np.float64)
    reference_shares = row_shares(analysis.record, spec)
    ref_token = first_answer_token(analysis.record)

    entries = []
    for perturbation in chosen:
        t0 = time.perf_counter()
        pixels = perturbation.apply(rgb, rob.seed, masks.body)
        record = extract_record(loaded, Image.fromarray(pixels), sample.question,
                                max_new_tokens=config.decoding.max_new_tokens,
                                prompt_settings=prompt_settings(analysis.record.extra.get("prompt")))
        if on_record is not None:  # e.g. the app keeps each perturbed film as the model was given it
            on_record(perturbation, record)
        perturbed = analyse_record(record, ground_truth=sample.answer, spec=spec, terms=terms,
                                   hedged_answers=config.analysis.hedged_answers)
        frame = square_box(width, height, perturbation.name) if perturbation.changes_frame else (0, 0, width, height)
        compared = compare_maps(reference_grid, perturbed.grid, frame, (width, height), masks, boxes,
                                config.analysis.pointing_tolerance_px)
        shares = row_shares(record, spec)
        token = first_answer_token(record)
        entries.append({
            **perturbation.to_json(),
            "seed": rob.seed,
            "pixels_differing": int(np.count_nonzero(np.any(pixels != rgb, axis=-1))) if pixels.shape == rgb.shape
            else None,
            "answer": record.answer,
            "answer_label": perturbed.answer_label,
            "correct": perturbed.correct,
            "flip": perturbed.answer_label != analysis.answer_label,
            "answer_changed": record.answer != analysis.record.answer,
            "first_token": token,
            **compared,
            "share_deltas": {k: shares[k] - reference_shares[k] for k in SHARE_COLUMNS},
            # the perturbed map itself, so a viewer can draw it beside the original (16x16 floats)
            "grid": np.round(np.asarray(perturbed.grid, dtype=np.float64), 6).tolist(),
            "seconds": time.perf_counter() - t0,
        })
    flips = [e["flip"] for e in entries]
    js = [e["js"] for e in entries]
    return jsonable({
        "key": sample.key,
        "question": sample.question,
        "map": {"description": analysis.view.description, "view": spec.view, "rows": str(spec.rows)},
        "reference": {
            "answer": analysis.record.answer,
            "answer_label": analysis.answer_label,
            "correct": analysis.correct,
            "first_token": ref_token,
            "grid": np.round(reference_grid, 6).tolist(),
        },
        "perturbations": entries,
        "flip_rate": float(np.mean(flips)) if flips else None,
        "flipped": [e["name"] for e in entries if e["flip"]],
        "mean_js": float(np.mean(js)) if js else None,
        "max_js": float(np.max(js)) if js else None,
        "seconds": time.perf_counter() - started,
    })


def perturbation_of(entry: Mapping[str, Any]) -> Perturbation | None:
    """The ``Perturbation`` one entry of a study's ``perturbations`` was made with (None without a name
    or strength)."""
    name, strength = entry.get("name"), entry.get("strength")
    if not isinstance(name, str) or strength is None:
        return None
    return Perturbation(name, strength, str(entry.get("parameter", "")))


def perturbed_films(study: Mapping[str, Any], xray: np.ndarray) -> list[np.ndarray | None]:
    """Each perturbation of a ``robustness_study`` dict re-applied to ``xray``, in the study's order.

    ``xray`` is the film as the model saw it (``record.xray``, uint8 [H, W], square): it is made RGB,
    as the processor gets it, perturbed with the entry's own seed (``pixels`` inside
    ``anatomy_masks(xray).body``), and returned gray (every perturbation keeps a gray film gray).
    The study perturbed the film itself, before the processor resized it, so these are pictures of what
    each perturbation does, not the exact pixels the model was given; pad and crop leave a square film
    as it is. None for an entry this version cannot re-apply (an unknown name or a bad strength).
    """
    from medgemma_tui.analysis.masks import anatomy_masks

    film = np.asarray(xray, dtype=np.uint8)
    rgb = np.repeat(film[..., None], 3, axis=-1)
    body = None
    films: list[np.ndarray | None] = []
    for entry in study.get("perturbations") or []:
        perturbation = perturbation_of(entry)
        if perturbation is None:
            films.append(None)
            continue
        if perturbation.name == "pixels" and body is None:
            body = anatomy_masks(film).body
        try:
            pixels = perturbation.apply(rgb, int(entry.get("seed") or 0), body)
        except (KeyError, TypeError, ValueError):
            films.append(None)
            continue
        films.append(np.ascontiguousarray(pixels[..., 0]))
    return films


def robustness_eval_study(config: Config) -> Callable[[LoadedModel, SampleResult], dict[str, Any]]:
    """The robustness study of a row: ``robustness_study``'s dict (``make_studies`` files it)."""

    def study(loaded, result) -> dict[str, Any]:
        return robustness_study(loaded, result.film, result, config)

    return study
