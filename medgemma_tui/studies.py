"""Studies of one sample that need the model again (headless, opt-in): robustness and faithfulness.

- ``robustness_study``: the film under each configured perturbation (``analysis.perturbations``) is
  answered and captured again; per perturbation the answer, its label, whether it flipped against the
  unperturbed answer, and the perturbed map against the unperturbed one (JS in nats, Pearson r, IoU of
  the top 10% cells, every map metric's delta). Costs one ``extract_record`` per perturbation.
- ``faithfulness_study``: deletion and insertion curves. Image tokens are removed (deletion) or
  restored onto an all-neutral image (insertion) in the order of the map, most attended first, and the
  log-probability of the answer's first content token is followed; the same curves for seeded random
  orders are the baseline. All the inputs of every curve go through the decoder as batches of
  ``inputs_embeds``: ``2 + 2 (steps - 1) (1 + random_orders)`` sequences, ``batch_size`` at a time,
  plus one vision pass (two with the ``blur`` baseline).

What a removed image token becomes (``[faithfulness] baseline``):

- ``mean`` (the default): the mean of this film's own projected image tokens, the same vector in every
  removed cell. MedGemma's projector ends in an RMS norm, so its tokens live at a fixed scale around
  a common offset; the mean keeps that scale and offset (so the decoder still sees "an image") while
  carrying no information about where anything is. It needs no extra pass through the vision tower,
  and unlike a mean-grey image it does not change the tokens that are kept: SigLIP mixes the whole
  image, so a grey film's tokens would differ from the kept ones in how they were computed as well
  as in what they show.
- ``zero``: the zero vector, far from anything the projector produces (a strong, off-distribution
  removal; it tends to exaggerate drops).
- ``blur``: each cell's token from the film blurred with a Gaussian of one grid cell's width (the
  common choice for insertion in the saliency literature: content is removed, the low frequencies kept).

Both studies return plain JSON-ready dicts (floats, None for undefined numbers). In ``medtui eval`` the
study callables of ``robustness_eval_study``/``faithfulness_eval_study`` put them in
``result.analysis.extras`` under ``STUDY_KEYS``; the tree writes them to ``robustness/{key}.json``;
``summarise_studies`` turns the files of a tree into tables and summary numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from medgemma_tui.analysis.metrics import BOX_METRIC_NAMES, METRIC_NAMES, js_divergence, map_metrics, pearson, top_iou
from medgemma_tui.analysis.perturbations import Perturbation, from_config, square_box

if TYPE_CHECKING:
    from medgemma_tui.config import Config
    from medgemma_tui.engine.record import AttentionRecord
    from medgemma_tui.model.loading import LoadedModel
    from medgemma_tui.runner import SampleResult

__all__ = [
    "STUDY_KEYS",
    "robustness_study",
    "perturbation_of",
    "perturbed_films",
    "faithfulness_study",
    "robustness_eval_study",
    "faithfulness_eval_study",
    "summarise_studies",
    "StudyTables",
]

STUDY_KEYS = ("robustness", "faithfulness")  # sections of robustness/{key}.json, keys of analysis.extras
SHARE_NAMES = ("bos_share", "image_share", "text_share")
TOP_FRACTION = 0.1


# ==== robustness ======================================================================================


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
    from medgemma_tui.analysis.sample import analyse_record
    from medgemma_tui.analysis.views import row_shares
    from medgemma_tui.engine.extract import extract_record

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
                                max_new_tokens=config.decoding.max_new_tokens)
        if on_record is not None:  # e.g. the app keeps each perturbed film as the model was given it
            on_record(perturbation, record)
        perturbed = analyse_record(record, ground_truth=sample.answer, spec=spec, terms=terms)
        frame = square_box(width, height, perturbation.name) if perturbation.changes_frame else (0, 0, width, height)
        compared = compare_maps(reference_grid, perturbed.grid, frame, (width, height), masks, boxes)
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
            "share_deltas": {k: shares[k] - reference_shares[k] for k in SHARE_NAMES},
            # the perturbed map itself, so a viewer can draw it beside the original (16x16 floats)
            "grid": np.round(np.asarray(perturbed.grid, dtype=np.float64), 6).tolist(),
            "seconds": time.perf_counter() - t0,
        })
    flips = [e["flip"] for e in entries]
    js = [e["js"] for e in entries]
    return _clean({
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


def first_answer_token(record: AttentionRecord) -> dict[str, Any]:
    """The first answer token that is not an end token (the one the default map's row produced)."""
    rows = record.content_answer_rows
    index = int(record.query_answer_index[rows[0]]) if len(rows) else 0
    return {
        "index": index,
        "id": int(record.answer_ids[index]),
        "text": record.answer_tokens[index],
        "logprob": float(record.answer_logprobs[index]),
    }


def compare_maps(
    reference: np.ndarray,
    perturbed: np.ndarray,
    frame: tuple[int, int, int, int],
    film_size: tuple[int, int],
    masks=None,
    boxes=(),
) -> dict[str, Any]:
    """JS, Pearson, top-10% IoU and metric deltas of a perturbed map against the reference map.

    ``reference`` covers the whole film (``film_size`` = (width, height)); ``perturbed`` covers
    ``frame`` = (x0, y0, x1, y1) in film pixels (the film itself, a padded square around it or a
    cropped square inside it). Both are area-resampled onto the same grid over the film's part inside
    the frame, renormalised, and compared there; masks and boxes are cut to that region.
    """
    from medgemma_tui.analysis.grounding import boxes_to_grid
    from medgemma_tui.analysis.masks import mask_to_grid

    width, height = film_size
    region = (max(frame[0], 0), max(frame[1], 0), min(frame[2], width), min(frame[3], height))
    shape = np.asarray(reference).shape
    ref = regrid(reference, (0, 0, width, height), region, shape)
    new_raw = regrid(perturbed, frame, region, shape)
    total = float(np.asarray(perturbed, dtype=np.float64).sum())
    inside = float(new_raw.sum())
    x0, y0, x1, y1 = region
    body = lungs = box = None
    if masks is not None:
        body = mask_to_grid(masks.body[y0:y1, x0:x1], shape)
        lungs = mask_to_grid(masks.lungs[y0:y1, x0:x1], shape)
    if boxes:
        box = boxes_to_grid([(bx - x0, by - y0, bw, bh) for bx, by, bw, bh in boxes], (x1 - x0, y1 - y0), shape)
    before = map_metrics(ref, body, lungs, box)
    after = map_metrics(new_raw, body, lungs, box)
    names = [n for n in (*METRIC_NAMES, *BOX_METRIC_NAMES) if n in before]
    return {
        "compared_on": "film" if region == (0, 0, width, height) else "centre square",
        "region": list(region),
        "mass_outside_film": 1.0 - inside / total if total > 0 else None,
        "js": js_divergence(ref, new_raw),
        "pearson": pearson(ref, new_raw),
        "top_iou": top_iou(ref, new_raw, TOP_FRACTION),
        "metrics": {n: after[n] for n in names},
        "metric_deltas": {n: after[n] - before[n] for n in names},
    }


def regrid(grid: np.ndarray, src: tuple[float, float, float, float], dst: tuple[float, float, float, float],
           shape: tuple[int, int] | None = None) -> np.ndarray:
    """Mass of a map over box ``src`` redistributed onto a ``shape`` grid over box ``dst`` (by area).

    Boxes are (x0, y0, x1, y1) in the same pixel coordinates; each source cell gives each target cell
    the share of its area they overlap (mass outside ``dst`` is dropped). Identical boxes and shapes
    return the map unchanged.
    """
    g = np.asarray(grid, dtype=np.float64)
    rows, cols = shape or g.shape
    ry = _overlap(np.linspace(src[1], src[3], g.shape[0] + 1), np.linspace(dst[1], dst[3], rows + 1))
    rx = _overlap(np.linspace(src[0], src[2], g.shape[1] + 1), np.linspace(dst[0], dst[2], cols + 1))
    return ry @ g @ rx.T


def _overlap(src_edges: np.ndarray, dst_edges: np.ndarray) -> np.ndarray:
    """[dst, src]: the fraction of each source interval that falls in each target interval."""
    lo = np.maximum(dst_edges[:-1, None], src_edges[None, :-1])
    hi = np.minimum(dst_edges[1:, None], src_edges[None, 1:])
    return np.clip(hi - lo, 0.0, None) / np.diff(src_edges)[None, :]


# ==== faithfulness ====================================================================================


def faithfulness_study(
    loaded: LoadedModel,
    film,
    record: AttentionRecord,
    grid: np.ndarray,
    config: Config,
    *,
    random_orders: int = 1,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Deletion and insertion curves of ``grid``'s order against seeded random orders.

    ``film`` is the LoadedImage (or the PIL image) and ``record`` the AttentionRecord the map came
    from; ``config.faithfulness`` gives ``steps`` (curve points are the fractions 0, 1/steps, ..., 1 of
    the image tokens), ``baseline`` (mean, zero or blur; see the module docstring) and ``seed`` (the
    random orders). The followed token is the answer's first content token, fed the answer tokens
    before it when there are any. AUCs are trapezoids over the fraction axis, so an AUC is the curve's
    mean: a faithful map has a lower deletion AUC and a higher insertion AUC than random.
    """
    import torch

    from medgemma_tui.engine.extract import model_inputs
    from medgemma_tui.engine.prompt import build_prompt

    started = time.perf_counter()
    faith = config.faithfulness
    steps = int(faith.steps)
    if steps < 1 or random_orders < 1 or batch_size < 1:
        raise ValueError("steps, random_orders and batch_size must be >= 1")
    model, processor = loaded.model, loaded.processor
    image = film.rgb if hasattr(film, "rgb") else film
    prompt = build_prompt(processor, model.config, image, record.question)
    inputs = model_inputs(loaded, prompt)
    P = prompt.prompt_length
    if P != record.prompt_length or not np.array_equal(prompt.input_ids, record.input_ids[:P]):
        raise ValueError("the record was not made from this film and question (the prompts differ)")
    weights = np.asarray(grid, dtype=np.float64).ravel()
    start, end = prompt.image_token_span
    n = end - start
    if weights.size != n:
        raise ValueError(f"the map has {weights.size} cells, the prompt {n} image tokens")

    token = first_answer_token(record)
    prefix = np.asarray(record.answer_ids[:token["index"]], dtype=np.int64)
    device = loaded.device
    ids = torch.cat([inputs["input_ids"], torch.as_tensor(prefix, device=device)[None]], dim=1)  # [1, S]
    token_types = torch.cat([inputs["token_type_ids"], torch.zeros_like(ids[:, P:])], dim=1)
    attention = torch.ones_like(ids)

    with torch.no_grad():
        image_mask = ids == model.config.image_token_index
        text = model.get_input_embeddings()(ids.masked_fill(image_mask, 0))  # [1, S, D]; image ids may be OOV
        features = image_features(model, inputs["pixel_values"]).to(text.dtype)  # [N, D]
        neutral = neutral_tokens(loaded, image, record.question, features, faith.baseline)  # [N, D]

        map_order = np.argsort(-weights, kind="stable")  # most attended first, ties in row-major order
        rng = np.random.default_rng(faith.seed)
        shuffled = [rng.permutation(n) for _ in range(random_orders)]
        counts = [int(math.floor(n * i / steps + 0.5)) for i in range(steps + 1)]
        curves = {(name, 0): map_order for name in ("deletion", "insertion")}
        curves.update({(f"{name}_random", j): order for j, order in enumerate(shuffled)
                       for name in ("deletion", "insertion")})
        keep_sets, index = _curve_inputs(curves, counts, n)
        t_forward = time.perf_counter()
        logprobs = _batched_logprobs(model, text, features, neutral, image_mask[0], attention, token_types,
                                     keep_sets, token["id"], batch_size)
        forward_s = time.perf_counter() - t_forward

    def curve(name: str, j: int) -> list[float]:
        return [float(logprobs[index[(name, j, i)]]) for i in range(steps + 1)]

    fractions = [c / n for c in counts]
    out: dict[str, Any] = {
        "target": {**token, "position": P - 1 + token["index"]},
        "record_logprob": token["logprob"],
        "baseline": faith.baseline,
        "seed": faith.seed,
        "steps": steps,
        "fractions": fractions,
        "cells": counts,
        "order": "map, most attended first (ties in row-major order)",
        "map_order": map_order.tolist(),
        "random_orders": [o.tolist() for o in shuffled],
    }
    for name in ("deletion", "insertion"):
        mapped = curve(name, 0)
        randoms = [curve(f"{name}_random", j) for j in range(random_orders)]
        random_mean = np.mean(randoms, axis=0).tolist()
        out[name] = {
            "map": mapped,
            "random": random_mean,
            "random_each": randoms,
            "map_prob": np.exp(mapped).tolist(),
            "random_prob": np.exp(random_mean).tolist(),
        }
        out[f"{name}_auc"] = _trapezoid(fractions, mapped)
        out[f"{name}_auc_random"] = float(np.mean([_trapezoid(fractions, r) for r in randoms]))
        out[f"{name}_auc_prob"] = _trapezoid(fractions, np.exp(mapped))
        out[f"{name}_auc_prob_random"] = float(np.mean([_trapezoid(fractions, np.exp(r)) for r in randoms]))
    out["full_image_logprob"] = out["deletion"]["map"][0]
    out["neutral_image_logprob"] = out["deletion"]["map"][-1]
    out["deletion_gain"] = out["deletion_auc_random"] - out["deletion_auc"]  # > 0: the map beats random
    out["insertion_gain"] = out["insertion_auc"] - out["insertion_auc_random"]  # > 0: the map beats random
    out["deletion_beats_random"] = out["deletion_gain"] > 0
    out["insertion_beats_random"] = out["insertion_gain"] > 0
    out["sequences"] = len(keep_sets)
    out["forward_passes"] = math.ceil(len(keep_sets) / batch_size)
    out["batch_size"] = batch_size
    out["seconds"] = {"forward": forward_s, "total": time.perf_counter() - started}
    return _clean(out)


def image_features(model, pixel_values) -> Any:
    """The projected image tokens of one image: [N, D] (N = mm_tokens_per_image, row-major)."""
    out = model.get_image_features(pixel_values, return_dict=True)
    features = out.pooler_output if hasattr(out, "pooler_output") else out
    return features.reshape(-1, features.shape[-1])


def neutral_tokens(loaded: LoadedModel, image, question: str, features, baseline: str):
    """What a removed image token becomes: [N, D] (see the module docstring)."""
    import torch
    from PIL import ImageFilter

    from medgemma_tui.engine.extract import model_inputs
    from medgemma_tui.engine.prompt import build_prompt

    if baseline == "mean":
        return features.mean(dim=0, keepdim=True).expand_as(features)
    if baseline == "zero":
        return torch.zeros_like(features)
    if baseline == "blur":
        side = int(round(math.sqrt(features.shape[0])))
        blurred = image.filter(ImageFilter.GaussianBlur(radius=max(image.size) / side))
        prompt = build_prompt(loaded.processor, loaded.model.config, blurred, question)
        return image_features(loaded.model, model_inputs(loaded, prompt)["pixel_values"]).to(features.dtype)
    raise ValueError(f"unknown faithfulness baseline {baseline!r} (mean, zero or blur)")


def _curve_inputs(curves: Mapping[tuple[str, int], np.ndarray], counts: list[int], n: int):
    """Unique keep-masks over every curve point, and (curve, order, step) -> its mask's index.

    Deletion keeps every token but the first ``count`` of the order; insertion keeps only those.
    Curves share their end points (the whole image, the all-neutral image), computed once.
    """
    masks: list[np.ndarray] = []
    seen: dict[bytes, int] = {}
    index: dict[tuple[str, int, int], int] = {}
    for (name, j), order in curves.items():
        for i, count in enumerate(counts):
            keep = np.zeros(n, dtype=bool) if name.startswith("insertion") else np.ones(n, dtype=bool)
            keep[order[:count]] = name.startswith("insertion")
            sig = np.packbits(keep).tobytes()
            if sig not in seen:
                seen[sig] = len(masks)
                masks.append(keep)
            index[(name, j, i)] = seen[sig]
    return np.stack(masks), index


def _batched_logprobs(model, text, features, neutral, image_mask, attention, token_types, keep_sets: np.ndarray,
                      target: int, batch_size: int) -> np.ndarray:
    """log p(target) at the last position for every keep-mask, ``batch_size`` sequences per forward."""
    import torch

    positions = torch.nonzero(image_mask).squeeze(1)  # [N]
    keep_all = torch.as_tensor(keep_sets, device=text.device)  # [U, N]
    out = []
    for first in range(0, len(keep_sets), batch_size):
        keep = keep_all[first:first + batch_size]
        b = keep.shape[0]
        embeds = text.expand(b, -1, -1).clone()  # [b, S, D]
        embeds[:, positions] = torch.where(keep[..., None], features[None], neutral[None])
        logits = model(inputs_embeds=embeds, attention_mask=attention.expand(b, -1),
                       token_type_ids=token_types.expand(b, -1), use_cache=False, logits_to_keep=1).logits
        out.append(torch.log_softmax(logits[:, -1].float(), dim=-1)[:, target].cpu())
    return torch.cat(out).numpy().astype(np.float64)


def _trapezoid(x, y) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


# ==== in medtui eval ==================================================================================


def robustness_eval_study(config: Config) -> Callable[[Any, Any, Any], None]:
    """An ``evaluation.Study``: puts ``robustness_study``'s dict in ``result.analysis.extras["robustness"]``."""

    def study(loaded, result, tree=None) -> None:
        result.analysis.extras["robustness"] = robustness_study(loaded, result.film, result, config)

    return study


def faithfulness_eval_study(config: Config) -> Callable[[Any, Any, Any], None]:
    """An ``evaluation.Study``: puts ``faithfulness_study``'s dict in ``result.analysis.extras["faithfulness"]``."""

    def study(loaded, result, tree=None) -> None:
        result.analysis.extras["faithfulness"] = faithfulness_study(loaded, result.film, result.record,
                                                                    result.analysis.grid, config)

    return study


# ==== across samples (no model) =======================================================================


@dataclass
class StudyTables:
    robustness: pd.DataFrame  # one row per sample and perturbation
    faithfulness: pd.DataFrame  # one row per sample
    summary: dict[str, Any]  # {"robustness": {...}, "faithfulness": {...}}, the sections that have rows


ROBUSTNESS_COLUMNS = ("key", "perturbation", "strength", "reference_label", "answer_label", "flip", "js",
                      "pearson", "top_iou", "mass_outside_film")
FAITHFULNESS_COLUMNS = ("key", "baseline", "steps", "deletion_auc", "deletion_auc_random", "deletion_gain",
                        "insertion_auc", "insertion_auc_random", "insertion_gain", "full_image_logprob",
                        "neutral_image_logprob")
SUMMARY_DELTAS = ("entropy_norm", "inside_body_ratio", "inside_lungs_ratio", "mass_in_box", "image_share")


def summarise_studies(files: Iterable[Mapping[str, Any]]) -> StudyTables:
    """Tables and summary numbers from the contents of a tree's ``robustness/{key}.json`` files."""
    rob_rows, faith_rows = [], []
    for payload in files:
        rob = payload.get("robustness")
        if rob:
            for entry in rob.get("perturbations", []):
                rob_rows.append({
                    "key": rob.get("key", payload.get("key")),
                    "perturbation": entry["name"],
                    "strength": entry.get("strength"),
                    "reference_label": rob["reference"]["answer_label"],
                    "answer_label": entry["answer_label"],
                    "flip": bool(entry["flip"]),
                    "js": entry.get("js"),
                    "pearson": entry.get("pearson"),
                    "top_iou": entry.get("top_iou"),
                    "mass_outside_film": entry.get("mass_outside_film"),
                    **{f"delta_{k}": v for k, v in entry.get("metric_deltas", {}).items()},
                    **{f"delta_{k}": v for k, v in entry.get("share_deltas", {}).items()},
                })
        faith = payload.get("faithfulness")
        if faith:
            faith_rows.append({"key": payload.get("key"), **{c: faith.get(c) for c in FAITHFULNESS_COLUMNS[1:]}})
    robustness = pd.DataFrame(rob_rows)
    if robustness.empty:
        robustness = pd.DataFrame(columns=ROBUSTNESS_COLUMNS)
    faithfulness = pd.DataFrame(faith_rows, columns=FAITHFULNESS_COLUMNS)
    summary: dict[str, Any] = {}
    if not robustness.empty:
        summary["robustness"] = {
            "samples": int(robustness["key"].nunique()),
            "flip_rate": _mean(robustness["flip"]),
            "mean_js": _mean(robustness["js"]),
            "by_perturbation": {
                str(name): {
                    "n": len(part),
                    "flip_rate": _mean(part["flip"]),
                    "mean_js": _mean(part["js"]),
                    "mean_pearson": _mean(part["pearson"]),
                    "mean_top_iou": _mean(part["top_iou"]),
                    **{f"mean_delta_{k}": _mean(part[f"delta_{k}"]) for k in SUMMARY_DELTAS
                       if f"delta_{k}" in part},
                }
                for name, part in robustness.groupby("perturbation", sort=False)
            },
        }
    if not faithfulness.empty:
        summary["faithfulness"] = {
            "samples": len(faithfulness),
            **{f"mean_{c}": _mean(faithfulness[c]) for c in FAITHFULNESS_COLUMNS[3:]},
            "deletion_beats_random": _mean(faithfulness["deletion_gain"].astype(float) > 0),
            "insertion_beats_random": _mean(faithfulness["insertion_gain"].astype(float) > 0),
        }
    return StudyTables(robustness, faithfulness, summary)


def _mean(values) -> float | None:
    vals = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").astype(float)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if len(vals) else None


def _clean(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays unwrapped, NaN and infinities as None, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
