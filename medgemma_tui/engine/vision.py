"""The image features of the film at hand, computed once and reused for every row that asks about it.

On MedGemma-4b the SigLIP tower and projector (27 layers over 4096 patches at 896 px) cost more than
the whole decoder pass over a VQA prompt, and a dataset asks several questions about each film. The
features are the model's own ``get_image_features`` output, handed to ``generate`` through
``mm_encoder_outputs`` (transformers' pre-encoded multimodal input: used in the prefill, dropped after
it), so a row answered with reused features is the same computation as one answered from pixels.

The cache holds one film: a film is recognised by its exact pixel tensor, so a perturbed film (the
robustness study) or the next film of the dataset is a new entry and replaces the last.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class VisionCache:
    """The last film's pixel values and its image features; ``hits`` and ``misses`` for the bench."""

    pixel_values: torch.Tensor | None = None
    features: Any = None  # the model's image ModelOutput (``pooler_output``: [1, 256, hidden])
    hits: int = 0
    misses: int = 0
    seconds: list[float] = field(default_factory=list)  # time of each vision pass computed

    def features_for(self, model, pixel_values: torch.Tensor):
        """The image features of ``pixel_values``: the cached ones when the pixels are the same film."""
        if self.pixel_values is not None and self.pixel_values.shape == pixel_values.shape and bool(
                torch.equal(self.pixel_values, pixel_values)):
            self.hits += 1
            return self.features
        import time

        start = time.perf_counter()
        with torch.no_grad():
            features = model.get_image_features(pixel_values, return_dict=True)
        self.seconds.append(time.perf_counter() - start)
        self.pixel_values, self.features = pixel_values, features
        self.misses += 1
        return features

    def clear(self) -> None:
        self.pixel_values = self.features = None


def takes_features(model) -> bool:
    """Whether ``generate`` hands ``mm_encoder_outputs`` to this model: transformers does so only where the
    model's ``forward`` names the keyword (``GenerationMixin._supports_mm_encoder_outputs``), which older 5.x
    releases' Gemma 3 does not; there a row's features come from its pixels."""
    return "mm_encoder_outputs" in inspect.signature(model.forward).parameters


def with_features(model, inputs: dict[str, torch.Tensor], cache: VisionCache | None) -> dict[str, Any]:
    """``generate`` inputs with the film's features in place of its pixels (unchanged without a cache).

    A batch of rows about one film (``input_ids`` [B, S], ``pixel_values`` of the one film) gets the film's
    features once per row: the model scatters them over the image tokens of every row in batch order."""
    if cache is None or "pixel_values" not in inputs:
        return inputs
    rows = int(inputs["input_ids"].shape[0])
    if not takes_features(model):  # the pixels, once per row: each row's vision pass is computed again
        pixels = inputs["pixel_values"]
        return {**inputs, "pixel_values": pixels.repeat(rows, 1, 1, 1) if pixels.shape[0] != rows else pixels}
    out = {k: v for k, v in inputs.items() if k != "pixel_values"}
    features = cache.features_for(model, inputs["pixel_values"])
    if rows > 1 and features.pooler_output.shape[0] == 1:
        features = copy.copy(features)  # the cached output stays the film's own
        features.pooler_output = features.pooler_output.repeat(rows, 1, 1)  # [B, tokens, hidden]
    out["mm_encoder_outputs"] = {"image": features}
    return out
