"""Attribution methods by name: each gives one map over the image tokens for the same target (the
decision token where the pipeline marked it, else the first answer token that is not an end token:
``gradients.answer_target``), so they can be compared
with the same metrics and put through the same sanity checks.

- ``answer``: the target row's attention on the image tokens, mean over layers and heads (eager,
  teacher-forced over the record's fed tokens; on the unchanged model it is the captured map).
- ``gradient``, ``gradcam``: ``engine.gradients``; ``gradcampp``: ``grad_cam_pp``.
- ``occlusion``: ``occlusion`` through ``probe.PixelProbe`` (each cell's pixels replaced, the film re-encoded),
  or ``probe.TokenProbe`` with ``occlusion_input = "tokens"``; ``rise``: ``rise`` through ``probe.TokenProbe``.
- ``ig``: ``integrated_gradients`` on the pixels.

Settings come from the ``[methods]`` config section (``config.schema.MethodsConfig``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from PIL import Image

from medgemma_tui.engine.attribution.grad_cam_pp import gradcampp
from medgemma_tui.engine.attribution.integrated_gradients import ig_map
from medgemma_tui.engine.attribution.occlusion import occlusion_map
from medgemma_tui.engine.attribution.probe import pixel_probe, token_probe
from medgemma_tui.engine.attribution.rise import rise_map
from medgemma_tui.engine.gradients import answer_target, gradcam, gradient_attention, teacher_forced_inputs
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.engine.reference import text_attention
from medgemma_tui.model.loading import LoadedModel

ATTRIBUTION_METHODS = ("occlusion", "rise", "ig", "gradcampp")  # the maps ``--methods`` adds
METHODS = ("answer", "gradient", "gradcam", *ATTRIBUTION_METHODS)  # every name ``compute_method`` knows


@torch.no_grad()
def target_attention(loaded: LoadedModel, image: Image.Image, record: AttentionRecord) -> np.ndarray:
    """The target row's image attention, mean over layers and heads: [N] float32."""
    model = loaded.model
    position, _ = answer_target(record)
    inputs = teacher_forced_inputs(loaded, image, record, position)
    with text_attention(model, "eager"):
        out = model(**inputs, output_attentions=True, use_cache=False, logits_to_keep=1)
    start, end = record.image_token_span
    rows = torch.stack([a[0, :, position, start:end].float() for a in out.attentions])  # [L, H, N]
    return rows.mean(dim=(0, 1)).cpu().numpy().astype(np.float32)


def compute_method(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, name: str, settings
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """One method's map [N] float32 (signed where the method is; views keep the positive part) and notes."""
    shape = tuple(record.grid)
    if name == "answer":
        return target_attention(loaded, image, record), {}
    if name == "gradient":
        return gradient_attention(loaded, image, record).mean(axis=(0, 1)).astype(np.float32), {}
    if name == "gradcam":
        return gradcam(loaded, image, record), {}
    if name == "gradcampp":
        return gradcampp(loaded, image, record), {}
    if name == "occlusion":
        make_probe = pixel_probe if settings.occlusion_input == "pixels" else token_probe
        probe = make_probe(loaded, image, record, settings.occlusion_baseline, settings.batch_size)
        return occlusion_map(probe, shape, settings.occlusion_window), {
            "window": settings.occlusion_window, "baseline": settings.occlusion_baseline,
            "input": settings.occlusion_input}
    if name == "rise":
        probe = token_probe(loaded, image, record, settings.occlusion_baseline, settings.batch_size)
        return rise_map(probe, shape, settings.rise_masks, settings.rise_cells, settings.rise_keep, settings.seed), {
            "masks": settings.rise_masks, "cells": settings.rise_cells, "keep": settings.rise_keep,
            "seed": settings.seed, "baseline": settings.occlusion_baseline}
    if name == "ig":
        return ig_map(loaded, image, record, settings.ig_steps, settings.ig_baseline, settings.batch_size,
                      settings.ig_tolerance, settings.ig_max_steps)
    raise ValueError(f"unknown attribution method {name!r} (known: {', '.join(METHODS)})")


def add_method_maps(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, names: Iterable[str], settings
                    ) -> dict[str, dict[str, Any]]:
    """Compute the named methods into ``record.maps`` (timings in ``record.timings_s["map_{name}"]``).

    Returns {name: {"seconds": s, **notes}}.
    """
    out = {}
    for name in names:
        t0 = time.perf_counter()
        flat, notes = compute_method(loaded, image, record, name, settings)
        seconds = time.perf_counter() - t0
        if name in ATTRIBUTION_METHODS:  # the others are kept in their own shapes by ``gradients``
            record.maps[name] = flat
        if name == "ig":
            record.extra["ig_completeness"] = notes
        record.timings_s[f"map_{name}"] = seconds
        out[name] = {"seconds": seconds, **notes}
    return out
