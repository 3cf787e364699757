"""How each attribution method of ``registry.METHODS`` is computed: each gives one map over the image
tokens for the same target (the decision token where the pipeline marked it, else the first answer token
that is not an end token: ``gradients.answer_target``), so they can be compared with the same metrics and
put through the same sanity checks. The registry names these functions; nothing else lists the methods.

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
from medgemma_tui.registry import ATTRIBUTION, METHODS, UnknownNameError


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


def answer_map(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, settings=None
               ) -> tuple[np.ndarray, dict[str, Any]]:
    return target_attention(loaded, image, record), {}


def gradient_method(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, settings=None
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    return gradient_attention(loaded, image, record).mean(axis=(0, 1)).astype(np.float32), {}


def gradcam_method(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, settings=None
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    return gradcam(loaded, image, record), {}


def gradcampp_method(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, settings=None
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    return gradcampp(loaded, image, record), {}


def occlusion_method(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, settings
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    make_probe = pixel_probe if settings.occlusion_input == "pixels" else token_probe
    probe = make_probe(loaded, image, record, settings.occlusion_baseline, settings.batch_size)
    return occlusion_map(probe, tuple(record.grid), settings.occlusion_window), {
        "window": settings.occlusion_window, "baseline": settings.occlusion_baseline,
        "input": settings.occlusion_input}


def rise_method(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, settings
                ) -> tuple[np.ndarray, dict[str, Any]]:
    probe = token_probe(loaded, image, record, settings.occlusion_baseline, settings.batch_size)
    grid = rise_map(probe, tuple(record.grid), settings.rise_masks, settings.rise_cells, settings.rise_keep,
                    settings.seed)
    return grid, {"masks": settings.rise_masks, "cells": settings.rise_cells, "keep": settings.rise_keep,
                  "seed": settings.seed, "baseline": settings.occlusion_baseline}


def ig_method(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, settings
              ) -> tuple[np.ndarray, dict[str, Any]]:
    return ig_map(loaded, image, record, settings.ig_steps, settings.ig_baseline, settings.batch_size,
                  settings.ig_tolerance, settings.ig_max_steps)


def compute_method(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, name: str, settings
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """One method's map [N] float32 (signed where the method is; views keep the positive part) and notes."""
    try:
        spec = METHODS[name]
    except UnknownNameError as exc:
        raise ValueError(str(exc)) from None
    return spec.run(loaded, image, record, settings)


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
        spec = METHODS[name]
        if spec.kind == ATTRIBUTION:  # the others are kept in their own shapes by ``gradients``
            record.maps[name] = flat
        if spec.notes_as is not None:
            record.extra[f"{name}_{spec.notes_as}"] = notes
        record.timings_s[f"map_{name}"] = seconds
        out[name] = {"seconds": seconds, **notes}
    return out
