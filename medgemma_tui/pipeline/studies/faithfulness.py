"""The faithfulness study of one row: deletion and insertion curves against seeded random orders.

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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.engine.record import AttentionRecord, first_answer_token
from medgemma_tui.json_values import jsonable
from medgemma_tui.model.loading import LoadedModel

if TYPE_CHECKING:
    from medgemma_tui.config import Config


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
    return jsonable(out)


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


def faithfulness_eval_study(config: Config) -> Callable[[LoadedModel, SampleResult], None]:
    """A ``batch.Study``: puts ``faithfulness_study``'s dict in ``result.analysis.extras["faithfulness"]``."""

    def study(loaded, result) -> None:
        result.analysis.extras["faithfulness"] = faithfulness_study(loaded, result.film, result.record,
                                                                    result.analysis.grid, config)

    return study
