"""The faithfulness study of one row: deletion and insertion curves against seeded random orders.

- ``robustness_study``: the film under each configured perturbation (``analysis.perturbations``) is
  answered and captured again; per perturbation the answer, its label, whether it flipped against the
  unperturbed answer, and the perturbed map against the unperturbed one (JS in nats, Pearson r, IoU of
  the top 10% cells, every map metric's delta). Costs one ``extract_record`` per perturbation.
- ``faithfulness_study``: deletion and insertion curves. Image tokens are removed (deletion) or
  restored onto an all-neutral image (insertion) in the order of the map, most attended first, and the
  followed answer token's log-probability and probability are read at each step (the probability
  curve is the one of RISE, Petsiuk et al. 2018; the log-probability curve spreads out the low end);
  the same curves for ``random_orders`` seeded random orders are the baseline, reported with their
  spread. All the inputs of every curve go through the decoder as batches of ``inputs_embeds``:
  ``2 + 2 (steps - 1) (1 + random_orders)`` sequences for the curves and up to
  ``2 len(ERASER_BINS) (1 + random_orders)`` more for ERASER's bins (fewer where a bin falls on a curve
  point), ``batch_size`` at a time, plus one vision pass (two with the ``blur`` baseline).

- ERASER's comprehensiveness and sufficiency (DeYoung et al. 2020, "ERASER: A Benchmark to Evaluate
  Rationalized NLP Models", section 4.2), on the same orders: the map's top k% of the image tokens is
  the rationale r_k, for k in ``ERASER_BINS`` (1, 5, 10, 20, 50%; ``round(k N)`` tokens, at least one).
  Comprehensiveness is p(x) - p(x without r_k), the probability lost when the rationale is removed
  (higher = the map found what the answer needs); sufficiency is p(x) - p(r_k alone), the probability
  lost when only the rationale is kept on the neutral image (lower = the rationale suffices). Each is
  aggregated over the bins as the area over the perturbation curve (AOPC): the mean over the five bins,
  as the authors' code computes it. The same numbers for every random order are the baseline, compared
  as the curves are (``compare_to_random``; for sufficiency lower is better). Removed and kept tokens
  are replaced exactly as in the deletion and insertion curves, so comprehensiveness at a bin is the
  deletion curve's drop at that fraction and sufficiency the insertion curve's shortfall there.

The followed token is the one whose row the map read (``followed_index``): the verdict token for
the default ``decision`` row ("no" in "Based on the image, there is no effusion."), fed the answer
tokens before it.

Against random (``compare_to_random``), per curve and per kind (log-probability, probability): the
map's AUC, the random orders' AUCs (each, their mean and sample SD), ``gain`` (the map's advantage
over the random mean: random - map for deletion, map - random for insertion), ``z`` (gain / SD),
``orders_beaten`` (the share of random orders the map's AUC beats) and ``beats_random``: the map's
AUC beats every random order *and* its gain exceeds 2 SD of the random AUCs (with one random order,
where an SD cannot be estimated, beating it). With 8 orders a map ranked at random beats all of them
1 time in 9; the 2 SD margin makes the flag stricter than that.

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
study callables of ``robustness_eval_study``/``faithfulness_eval_study`` return them and
``pipeline.studies.make_studies`` files them in ``result.analysis.extras`` under their names in
``registry.STUDIES``; the tree writes them to ``robustness/{key}.json``; ``summarise_studies`` turns the
files of a tree into tables and summary numbers.
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
    random_orders: int | None = None,
    batch_size: int = 16,
    token_index: int | None = None,
) -> dict[str, Any]:
    """Deletion and insertion curves of ``grid``'s order against seeded random orders.

    ``film`` is the LoadedImage (or the PIL image) and ``record`` the AttentionRecord the map came
    from; ``config.faithfulness`` gives ``steps`` (curve points are the fractions 0, 1/steps, ..., 1 of
    the image tokens), ``baseline`` (mean, zero or blur; see the module docstring), ``seed`` and
    ``random_orders`` (the random orders; the argument overrides the config's count). The followed
    token is answer token ``token_index`` (default: the first content token), fed the answer tokens
    before it. AUCs are trapezoids over the fraction axis, so an AUC is the curve's
    mean: a faithful map has a lower deletion AUC and a higher insertion AUC than random.
    """
    import torch

    from medgemma_tui.engine.extract import model_inputs
    from medgemma_tui.engine.prompt import record_prompt

    started = time.perf_counter()
    faith = config.faithfulness
    steps = int(faith.steps)
    random_orders = int(faith.random_orders if random_orders is None else random_orders)
    if steps < 1 or random_orders < 1 or batch_size < 1:
        raise ValueError("steps, random_orders and batch_size must be >= 1")
    model, processor = loaded.model, loaded.processor
    image = film.rgb if hasattr(film, "rgb") else film
    prompt = record_prompt(processor, model.config, image, record)
    inputs = model_inputs(loaded, prompt)
    P = prompt.prompt_length
    if P != record.prompt_length or not np.array_equal(prompt.input_ids, record.input_ids[:P]):
        raise ValueError("the record was not made from this film and question (the prompts differ)")
    weights = np.asarray(grid, dtype=np.float64).ravel()
    start, end = prompt.image_token_span
    n = end - start
    if weights.size != n:
        raise ValueError(f"the map has {weights.size} cells, the prompt {n} image tokens")

    token = first_answer_token(record) if token_index is None else answer_token(record, token_index)
    prefix = np.asarray(record.answer_ids[:token["index"]], dtype=np.int64)
    device = loaded.device
    ids = torch.cat([inputs["input_ids"], torch.as_tensor(prefix, device=device)[None]], dim=1)  # [1, S]
    token_types = torch.cat([inputs["token_type_ids"], torch.zeros_like(ids[:, P:])], dim=1)
    attention = torch.ones_like(ids)

    with torch.no_grad():
        image_mask = ids == model.config.image_token_index
        text = model.get_input_embeddings()(ids.masked_fill(image_mask, 0))  # [1, S, D]; image ids may be OOV
        features = image_features(model, inputs["pixel_values"]).to(text.dtype)  # [N, D]
        neutral = neutral_tokens(loaded, image, record, features, faith.baseline)  # [N, D]

        map_order = np.argsort(-weights, kind="stable")  # most attended first, ties in row-major order
        rng = np.random.default_rng(faith.seed)
        shuffled = [rng.permutation(n) for _ in range(random_orders)]
        counts = [int(math.floor(n * i / steps + 0.5)) for i in range(steps + 1)]
        rationale = eraser_counts(n)
        counts_of = {"deletion": counts, "insertion": counts, "comprehensiveness": rationale,
                     "sufficiency": rationale}
        curves = {(name, 0): (map_order, counts_of[name]) for name in counts_of}
        curves.update({(f"{name}_random", j): (order, counts_of[name]) for j, order in enumerate(shuffled)
                       for name in counts_of})
        keep_sets, index = _curve_inputs(curves, n)
        t_forward = time.perf_counter()
        logprobs = _batched_logprobs(model, text, features, neutral, image_mask[0], attention, token_types,
                                     keep_sets, token["id"], batch_size)
        forward_s = time.perf_counter() - t_forward

    def curve(name: str, j: int) -> list[float]:
        return [float(logprobs[index[(name, j, i)]]) for i in range(len(counts_of[name.removesuffix("_random")]))]

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
        "random_order_count": random_orders,
        "random_orders": [o.tolist() for o in shuffled],
        "beats_random_rule": BEATS_RANDOM_RULE,
    }
    for name in ("deletion", "insertion"):
        mapped = np.asarray(curve(name, 0))
        randoms = np.asarray([curve(f"{name}_random", j) for j in range(random_orders)])  # [orders, steps + 1]
        out[name] = {
            "map": mapped.tolist(),
            "random": randoms.mean(axis=0).tolist(),
            "random_sd": _sd(randoms).tolist(),
            "random_each": randoms.tolist(),
            "map_prob": np.exp(mapped).tolist(),
            "random_prob": np.exp(randoms).mean(axis=0).tolist(),  # the mean probability, not exp(mean log)
            "random_prob_sd": _sd(np.exp(randoms)).tolist(),
        }
        for kind, values, randoms_of_kind in (("", mapped, randoms), ("_prob", np.exp(mapped), np.exp(randoms))):
            compared = compare_to_random(_trapezoid(fractions, values),
                                         [_trapezoid(fractions, r) for r in randoms_of_kind],
                                         lower_is_better=name == "deletion")
            put_comparison(out, compared, score=f"{name}_auc{kind}", name=name, kind=kind)
    full = math.exp(out["deletion"]["map"][0])
    for name in ("comprehensiveness", "sufficiency"):
        mapped = full - np.exp(curve(name, 0))  # [bins]: probability lost with r_k removed / with r_k alone
        randoms = full - np.exp([curve(f"{name}_random", j) for j in range(random_orders)])  # [orders, bins]
        out[name] = {"bins": list(ERASER_BINS), "cells": rationale, "map": mapped.tolist(),
                     "random": randoms.mean(axis=0).tolist(), "random_sd": _sd(randoms).tolist(),
                     "random_each": randoms.tolist()}
        compared = compare_to_random(aopc(mapped), [aopc(r) for r in randoms],
                                     lower_is_better=name == "sufficiency")
        put_comparison(out, compared, score=f"{name}_aopc", name=name)
    out["full_image_logprob"] = out["deletion"]["map"][0]
    out["neutral_image_logprob"] = out["deletion"]["map"][-1]
    out["full_image_prob"] = math.exp(out["full_image_logprob"])
    out["neutral_image_prob"] = math.exp(out["neutral_image_logprob"])
    out["sequences"] = len(keep_sets)
    out["forward_passes"] = math.ceil(len(keep_sets) / batch_size)
    out["batch_size"] = batch_size
    out["seconds"] = {"forward": forward_s, "total": time.perf_counter() - started}
    return jsonable(out)


ERASER_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)  # DeYoung et al. 2020: the rationale's share of the tokens


def eraser_counts(n: int) -> list[int]:
    """Tokens in the rationale at each of ``ERASER_BINS`` of ``n``: round(k n), at least 1."""
    return [max(1, int(math.floor(n * k + 0.5))) for k in ERASER_BINS]


def aopc(drops) -> float:
    """ERASER's aggregate over the bins (area over the perturbation curve): the mean of the per-bin drops."""
    return float(np.mean(np.asarray(drops, dtype=np.float64)))


BEATS_RANDOM_RULE = ("the map's AUC beats every random order's and the random mean by more than 2 SD of the "
                     "random AUCs (with one random order: beats it)")


def compare_to_random(auc: float, random_aucs: list[float], lower_is_better: bool) -> dict[str, Any]:
    """The map's AUC against the random orders' AUCs: mean, sample SD, gain, z, share beaten, beats_random.

    ``gain`` is the map's advantage over the random mean (positive = better); ``z`` is gain / SD (None
    when the SD is 0 or cannot be estimated); ``beats_random`` follows ``BEATS_RANDOM_RULE``.
    """
    randoms = np.asarray(random_aucs, dtype=np.float64)
    if randoms.size == 0:
        raise ValueError("no random orders to compare with")
    sign = -1.0 if lower_is_better else 1.0
    mean = float(randoms.mean())
    sd = float(randoms.std(ddof=1)) if randoms.size >= 2 else None
    gain = sign * (auc - mean)
    beaten = sign * (auc - randoms) > 0  # [orders]
    margin_ok = True if sd is None else gain > 2 * sd
    return {
        "auc": float(auc),
        "random_mean": mean,
        "random_sd": sd,
        "random_each": randoms.tolist(),
        "gain": float(gain),
        "z": float(gain / sd) if sd else None,
        "orders_beaten": float(beaten.mean()),
        "beats_random": bool(beaten.all() and margin_ok),
    }


def put_comparison(out: dict[str, Any], compared: dict[str, Any], score: str, name: str, kind: str = "") -> None:
    """``compare_to_random``'s figures under the study's keys: the score ``{score}`` (an AUC or an AOPC) with
    its random mean, SD and each order's, then ``{name}_gain{kind}`` (> 0: the map does better than the
    random mean), ``_z``, ``_orders_beaten`` and ``_beats_random``."""
    out[score] = compared["auc"]
    out[f"{score}_random"] = compared["random_mean"]
    out[f"{score}_random_sd"] = compared["random_sd"]
    out[f"{score}_random_each"] = compared["random_each"]
    for figure in ("gain", "z", "orders_beaten", "beats_random"):
        out[f"{name}_{figure}{kind}"] = compared[figure]


def _sd(curves: np.ndarray) -> np.ndarray:
    """Sample SD over the random orders at each step (zeros with a single order)."""
    return curves.std(axis=0, ddof=1) if len(curves) >= 2 else np.zeros(curves.shape[1:])


def answer_token(record: AttentionRecord, index: int) -> dict[str, Any]:
    """Answer token ``index`` as ``first_answer_token`` gives the first content one."""
    if not 0 <= index < len(record.answer_ids):
        raise ValueError(f"answer token {index} outside 0..{len(record.answer_ids) - 1}")
    return {"index": int(index), "id": int(record.answer_ids[index]), "text": record.answer_tokens[index],
            "logprob": float(record.answer_logprobs[index])}


def followed_index(analysis) -> int:
    """The answer token whose row the map read: what the faithfulness curves follow.

    ``decision`` rows (and the gradient-based views, which explain that token): the verdict token
    (``analysis.decision_index``); ``first_answer``: the first content token; an answer row's index: the
    token it produced; rows that produced no single token (``answer``, ``question``, a question row): the
    verdict token.
    """
    record, rows = analysis.record, analysis.view.spec.rows
    if rows == "first_answer":
        return record.first_content_index
    if isinstance(rows, (int, np.integer)) and record.query_answer_index[int(rows)] >= 0:
        return int(record.query_answer_index[int(rows)])
    return int(analysis.decision_index)


def image_features(model, pixel_values) -> Any:
    """The projected image tokens of one image: [N, D] (N = mm_tokens_per_image, row-major)."""
    out = model.get_image_features(pixel_values, return_dict=True)
    features = out.pooler_output if hasattr(out, "pooler_output") else out
    return features.reshape(-1, features.shape[-1])


def neutral_tokens(loaded: LoadedModel, image, record: AttentionRecord, features, baseline: str):
    """What a removed image token becomes: [N, D] (see the module docstring)."""
    import torch
    from PIL import ImageFilter

    from medgemma_tui.engine.extract import model_inputs
    from medgemma_tui.engine.prompt import record_prompt

    if baseline == "mean":
        return features.mean(dim=0, keepdim=True).expand_as(features)
    if baseline == "zero":
        return torch.zeros_like(features)
    if baseline == "blur":
        side = int(round(math.sqrt(features.shape[0])))
        blurred = image.filter(ImageFilter.GaussianBlur(radius=max(image.size) / side))
        prompt = record_prompt(loaded.processor, loaded.model.config, blurred, record)
        return image_features(loaded.model, model_inputs(loaded, prompt)["pixel_values"]).to(features.dtype)
    raise ValueError(f"unknown faithfulness baseline {baseline!r} (mean, zero or blur)")


KEEPS_ONLY = ("insertion", "sufficiency")  # curves that keep only the first ``count`` of the order


def _curve_inputs(curves: Mapping[tuple[str, int], tuple[np.ndarray, list[int]]], n: int):
    """Unique keep-masks over every curve point, and (curve, order, step) -> its mask's index.

    ``curves`` maps (name, order index) to (order, counts). Deletion and comprehensiveness keep every
    token but the first ``count`` of the order; insertion and sufficiency keep only those. Curves share
    points (the whole image, the all-neutral image, a bin on a curve step), each computed once.
    """
    masks: list[np.ndarray] = []
    seen: dict[bytes, int] = {}
    index: dict[tuple[str, int, int], int] = {}
    for (name, j), (order, counts) in curves.items():
        only = name.startswith(KEEPS_ONLY)
        for i, count in enumerate(counts):
            keep = np.zeros(n, dtype=bool) if only else np.ones(n, dtype=bool)
            keep[order[:count]] = only
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


def faithfulness_eval_study(config: Config) -> Callable[[LoadedModel, SampleResult], dict[str, Any]]:
    """The faithfulness study of a row: ``faithfulness_study``'s dict (``make_studies`` files it).

    The curves follow the token whose row the map read (``followed_index``); the dict also keeps the
    row's answer label and finding, so the tables can split by them.
    """

    def study(loaded, result) -> dict[str, Any]:
        analysis = result.analysis
        out = faithfulness_study(loaded, result.film, result.record, analysis.grid, config,
                                 token_index=followed_index(analysis))
        out["answer_label"] = analysis.answer_label
        out["finding"] = str(getattr(result.sample, "finding", "") or "")
        return out

    return study
