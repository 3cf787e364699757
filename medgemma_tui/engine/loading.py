"""A model ready for capture: loaded by ``model.loading``, its text decoder on the capture function.

The capture function runs SDPA unless a ``CaptureSession`` is active, so a prepared model answers
exactly as a plain SDPA one; the SigLIP tower stays on plain SDPA (its modules have no ``layer_idx``).
"""

from __future__ import annotations

import os
from typing import Any

from medgemma_tui.engine.capture import CAPTURE_ATTENTION, register_capture_attention
from medgemma_tui.model.loading import LoadedModel, load_model


def prepare_for_capture(loaded: LoadedModel) -> LoadedModel:
    """Register the capture function (and its mask function) and run the text decoder through it."""
    register_capture_attention()
    loaded.model.set_attn_implementation({"text_config": CAPTURE_ATTENTION, "vision_config": "sdpa"})
    return loaded


def load_for_capture(source: str | os.PathLike | None = None, **options: Any) -> LoadedModel:
    """``model.loading.load_model(source, **options)`` (``device``, ``dtype``, ``revision``, ``adapter``: its
    keywords and defaults) and then ``prepare_for_capture``: what every front end loads."""
    return prepare_for_capture(load_model(source, **options))
