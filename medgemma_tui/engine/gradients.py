"""Maps that need the model beyond the answer pass: gradient x attention, relevancy, Grad-CAM, the generic prompt.

Each map is computed on request and kept in ``record.maps`` (record.py says their shapes), so every
view stays a function of the record. The gradient maps read one target (``target_row``): the logit of the
decision token, the one carrying the verdict, where the pipeline has marked it, else of the first answer
token that is not an end token; at the row that produced it (the position before it: the README, "How
attention is captured").

- ``"gradient"``: the direct, one-layer term of Chefer et al. (2021, "Generic attention-model
  explainability for interpreting bi-modal and encoder-decoder transformers"): one teacher-forced pass
  over the record's fed sequence with eager attention on the text decoder, so the probabilities are in
  the graph; the positive part of A x dy/dA on the target row's image columns, per layer and head,
  with nothing propagated between layers.
- ``"relevancy"``: Chefer et al.'s (2021) relevancy propagated through every decoder layer (their
  self-attention rule, eqs. 5-6): R = I, then for each layer in order R += mean_heads((dy/dA * A)^+) R,
  read at the target row over the image tokens: [N].
- ``"gradcam"`` (Selvaraju et al.): on the vision tower's output A [patches, channels] (the last SigLIP
  layer after the tower's final LayerNorm: the features ``Gemma3MultiModalProjector`` pools; the
  layer's output before that norm is not, since the norm rescales each patch), channel weights
  w_c = mean over patches of dy/dA_c, map ReLU(sum_c w_c A_c) over the patch grid, pooled to the token
  grid as the projector pools its features.
- ``"generic"``: the first answer row's image attention when the same image is asked the generic prompt,
  for the relative view (which cancels sinks).

Gradient passes freeze every parameter and start the graph from a fresh leaf (the text embeddings, or
the SigLIP layer's output), so no parameter gets a ``.grad`` and the vision tower keeps no graph; the
parameters' ``requires_grad`` flags, the training flag and the attention implementation come back as
they were. The passes run in the model's dtype; the products are taken in fp32.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from medgemma_tui.engine.extract import extract_record, model_inputs
from medgemma_tui.engine.prompt import generic_settings, prompt_settings, record_prompt
from medgemma_tui.engine.record import TARGET_INDEX, AttentionRecord
from medgemma_tui.engine.reference import text_attention
from medgemma_tui.model.loading import LoadedModel

MODEL_MAPS = ("gradient", "gradcam", "generic", "relevancy")


# ---- the target: which logit the gradients are taken of -----------------------------------------
def first_content_row(record: AttentionRecord) -> int:
    """The record row that produced the first answer token that is not an end token (else answer token 0)."""
    return int(record.content_answer_rows[0])


def target_row(record: AttentionRecord) -> int:
    """The row whose token the gradient views and attribution methods explain: the answer token
    ``record.extra["target_index"]`` (the pipeline sets the decision token there: the verdict of a
    sentence such as "Based on the image, there is no ...", not its first word), else the first content token."""
    index = record.extra.get(TARGET_INDEX)
    if index is not None:
        rows = np.flatnonzero(record.query_answer_index == int(index))
        if len(rows):
            return int(rows[0])
    return first_content_row(record)


def answer_target(record: AttentionRecord) -> tuple[int, int]:
    """(sequence position of the target row, id of the answer token it produced)."""
    row = target_row(record)
    return int(record.query_positions[row]), int(record.answer_ids[record.query_answer_index[row]])


def teacher_forced_inputs(
    loaded: LoadedModel, image: Image.Image, record: AttentionRecord, last_position: int
) -> dict[str, torch.Tensor]:
    """Model inputs for the record's fed sequence up to and including ``last_position``.

    Later positions cannot change that row (text rows are causal), so the pass stops there.
    """
    prompt = record_prompt(loaded.processor, loaded.config, image, record)
    P = prompt.prompt_length
    if P != record.prompt_length or not np.array_equal(prompt.input_ids, record.input_ids[:P]):
        raise ValueError("the prompt built for this image and question does not match the record's prompt")
    inputs = model_inputs(loaded, prompt)
    fed = torch.as_tensor(record.input_ids[P : last_position + 1], device=loaded.device)[None]  # [1, a]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], fed], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    inputs["token_type_ids"] = torch.cat([inputs["token_type_ids"], torch.zeros_like(fed)], dim=1)
    return inputs


# ---- gradient passes that leave the model as they found it ---------------------------------------
@contextmanager
def frozen_for_gradients(model: torch.nn.Module) -> Iterator[None]:
    """Grad on, eval mode, every parameter frozen; the training flag and requires_grad flags come back."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


@contextmanager
def leaf_at(module: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Replace ``module``'s output by a fresh leaf that requires grad; the leaves are collected in the list."""
    leaves: list[torch.Tensor] = []

    def make_leaf(_module, _args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        leaf = hidden.detach().requires_grad_()
        leaves.append(leaf)
        return (leaf, *output[1:]) if isinstance(output, tuple) else leaf

    handle = module.register_forward_hook(make_leaf)
    try:
        yield leaves
    finally:
        handle.remove()


# ---- gradient-weighted attention ---------------------------------------------------------------------
def attention_gradients(loaded: LoadedModel, image: Image.Image, record: AttentionRecord):
    """The target row's attention A and dy/dA on every layer and head: two [L, H, S'] float32 arrays.

    S' = target position + 1. y is the target token's logit; the text decoder runs eager so that the
    probabilities it returns are the ones its output is made from.
    """
    model = loaded.model
    position, token = answer_target(record)
    inputs = teacher_forced_inputs(loaded, image, record, position)
    with frozen_for_gradients(model), leaf_at(model.get_input_embeddings()), text_attention(model, "eager"):
        out = model(**inputs, output_attentions=True, use_cache=False, logits_to_keep=1)
        logit = out.logits[0, -1, token]
        grads = torch.autograd.grad(logit, out.attentions)  # L x [1, H, S', S']
    attn = torch.stack([a[0, :, position].detach().float() for a in out.attentions])  # [L, H, S']
    grad = torch.stack([g[0, :, position].float() for g in grads])  # [L, H, S']
    return attn.cpu().numpy(), grad.cpu().numpy()


def gradient_attention(loaded: LoadedModel, image: Image.Image, record: AttentionRecord) -> np.ndarray:
    """Positive part of A x dy/dA on the target row's image columns: [L, H, N] float32."""
    attn, grad = attention_gradients(loaded, image, record)
    start, end = record.image_token_span
    return np.clip(attn[..., start:end] * grad[..., start:end], 0, None).astype(np.float32)


# ---- relevancy propagated through the layers (Chefer et al. 2021) --------------------------------------
def relevancy_matrix(layers: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """R [S, S] from each layer's (A, dy/dA), both [H, S, S], taken in layer order (Chefer et al. 2021).

    R starts as the identity (each token is relevant to itself); layer by layer
    A_bar = mean over heads of the positive part of dy/dA * A (eq. 5), and R = R + A_bar R (eq. 6).
    """
    relevance = None
    for attn, grad in layers:
        a_bar = np.clip(np.asarray(grad, dtype=np.float64) * np.asarray(attn, dtype=np.float64), 0, None).mean(0)
        relevance = np.eye(a_bar.shape[-1]) if relevance is None else relevance
        relevance = relevance + a_bar @ relevance
    if relevance is None:
        raise ValueError("no layers to propagate relevancy through")
    return relevance


def relevancy(loaded: LoadedModel, image: Image.Image, record: AttentionRecord) -> np.ndarray:
    """Chefer et al.'s (2021) relevancy of the image tokens for the answer logit, at the target row: [N] float32.

    The same teacher-forced eager pass as ``attention_gradients``, keeping every row of each layer's
    attention (the propagation mixes rows): [H, S', S'] per layer, moved to the CPU one layer at a time.
    """
    model = loaded.model
    position, token = answer_target(record)
    inputs = teacher_forced_inputs(loaded, image, record, position)
    with frozen_for_gradients(model), leaf_at(model.get_input_embeddings()), text_attention(model, "eager"):
        out = model(**inputs, output_attentions=True, use_cache=False, logits_to_keep=1)
        grads = torch.autograd.grad(out.logits[0, -1, token], out.attentions)  # L x [1, H, S', S']
    pairs = ((a[0].detach().float().cpu().numpy(), g[0].float().cpu().numpy()) for a, g in zip(out.attentions, grads,
                                                                                                strict=True))
    start, end = record.image_token_span
    return relevancy_matrix(pairs)[position, start:end].astype(np.float32)


# ---- Grad-CAM ----------------------------------------------------------------------------------------
def last_vision_layer(model) -> torch.nn.Module:
    """The vision tower's last module: the final LayerNorm after the last SigLIP encoder layer, whose
    output [1, patches, channels] is what the projector pools."""
    tower = model.model.vision_tower
    tower = getattr(tower, "vision_model", tower)  # older transformers wrap the transformer once more
    return tower.post_layernorm


def vision_gradients(loaded: LoadedModel, image: Image.Image, record: AttentionRecord):
    """The vision tower's output A (``last_vision_layer``) and dy/dA: two [patches, channels] float32 arrays."""
    model = loaded.model
    position, token = answer_target(record)
    inputs = teacher_forced_inputs(loaded, image, record, position)
    with frozen_for_gradients(model), leaf_at(last_vision_layer(model)) as leaves:
        out = model(**inputs, use_cache=False, logits_to_keep=1)
        (activations,) = leaves  # [1, patches, channels]
        (grad,) = torch.autograd.grad(out.logits[0, -1, token], activations)
    return activations[0].detach().float().cpu().numpy(), grad[0].float().cpu().numpy()


def grad_cam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """ReLU(sum_c w_c A_c) with w_c the mean over patches of dy/dA_c: [patches] float32."""
    weights = gradients.astype(np.float32).mean(axis=0)  # [channels]
    return np.maximum(activations.astype(np.float32) @ weights, 0)


def pool_to_tokens(patch_map: np.ndarray, config) -> np.ndarray:
    """A map over the SigLIP patch grid -> the image tokens, pooled as ``Gemma3MultiModalProjector`` pools.

    Patch p sits at (p // side, p % side), row-major; the average pool's kernel is patches per side
    over tokens per side; the pooled grid is flattened row-major, which is the image tokens' order.
    """
    patches_per_side = config.vision_config.image_size // config.vision_config.patch_size
    tokens_per_side = int(round(config.mm_tokens_per_image**0.5))
    kernel = patches_per_side // tokens_per_side
    grid = torch.as_tensor(patch_map, dtype=torch.float32).reshape(1, 1, patches_per_side, patches_per_side)
    return torch.nn.functional.avg_pool2d(grid, kernel_size=kernel, stride=kernel).flatten().numpy()  # [N]


def gradcam(loaded: LoadedModel, image: Image.Image, record: AttentionRecord) -> np.ndarray:
    """Grad-CAM on the vision tower's output for the answer logit, pooled to the token grid: [N] float32."""
    activations, gradients = vision_gradients(loaded, image, record)
    return pool_to_tokens(grad_cam(activations, gradients), loaded.config).astype(np.float32)


# ---- the generic prompt ------------------------------------------------------------------------------
def generic_attention(loaded: LoadedModel, image: Image.Image, max_new_tokens: int = 4,
                      record: AttentionRecord | None = None) -> dict[str, np.ndarray]:
    """Image attention of the generic prompt on the same image, by the kind of row: three [L, H, N] float32.

    ``"generic"`` is its first answer row, ``"generic_answers"`` the mean of its answer rows (end tokens
    left out) and ``"generic_question"`` the mean of its question rows, so the relative view divides
    like rows by like. The prompt takes ``record``'s system turn and image order (``generic_settings``).
    """
    settings = generic_settings(prompt_settings(record.extra.get("prompt") if record is not None else None))
    generic = extract_record(loaded, image, settings.generic_question, max_new_tokens=max_new_tokens,
                             keep_layer_mean=False, prompt_settings=settings)
    attn = generic.image_attn
    return {"generic": attn[first_content_row(generic)].astype(np.float32),
            "generic_answers": attn[generic.content_answer_rows].mean(axis=0).astype(np.float32),
            "generic_question": attn[generic.question_rows].mean(axis=0).astype(np.float32)}


def add_model_views(
    loaded: LoadedModel, image: Image.Image, record: AttentionRecord, which: Iterable[str] = MODEL_MAPS
) -> None:
    """Compute the chosen model-dependent maps into ``record.maps`` (with their timings in ``timings_s``)."""
    which = tuple(which)
    unknown = [name for name in which if name not in MODEL_MAPS]
    if unknown:
        raise ValueError(f"unknown model map {unknown[0]!r} (known: {', '.join(MODEL_MAPS)})")
    for name in which:
        t0 = time.perf_counter()
        if name == "gradient":
            record.maps["gradient"] = gradient_attention(loaded, image, record)
        elif name == "gradcam":
            record.maps["gradcam"] = gradcam(loaded, image, record)
        elif name == "relevancy":
            record.maps["relevancy"] = relevancy(loaded, image, record)
        else:
            record.maps.update(generic_attention(loaded, image, record=record))
            record.extra["generic_prompt"] = prompt_settings(record.extra.get("prompt")).generic_question
        record.timings_s[f"map_{name}"] = time.perf_counter() - t0
