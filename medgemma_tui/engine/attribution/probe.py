"""The answer's probability under a changed image, many changes per forward pass, in two ways.

A ``PixelProbe`` changes the film itself: ``probabilities(keep)`` mixes each grid cell's square of
pixels (of the processor's output, so in the model's own normalisation) with a baseline by a weight in
[0, 1] and runs the whole model, vision tower included, ``batch_size`` films per forward. Baselines:
``mean`` (every pixel the film's mean, per channel: a flat patch of the film's own brightness, the
grey square of Zeiler and Fergus, 2014), ``zero`` (black pixels) or ``blur`` (the film blurred by one
cell, as the integrated-gradients baseline).

A ``TokenProbe`` holds one row's fed sequence up to the target row (``gradients.answer_target``: the
row of the decision token, else of the first answer token that is not an end token), its text
embeddings, its projected image tokens and a
baseline for them. ``probabilities(keep)`` mixes each image token with its baseline by a weight in
[0, 1] (1 keeps the token, 0 replaces it) and returns the target token's probability for every row of
``keep``, ``batch_size`` sequences per forward through ``inputs_embeds`` (the vision tower runs once).

Baselines: ``mean`` (the film's own mean image token: the scale and offset of MedGemma's projector
output without any place information), ``zero``, or ``blur`` (the tokens of the film blurred by one
cell). Cheaper (one vision pass), but a replaced token is a change the vision tower never made: the
tokens around it keep what they saw of the removed patch through the tower's attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from medgemma_tui.engine.gradients import answer_target, teacher_forced_inputs
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.model.loading import LoadedModel

TOKEN_BASELINES = ("mean", "zero", "blur")
PIXEL_BASELINES = TOKEN_BASELINES


def pixel_function(loaded: LoadedModel, image, record: AttentionRecord):
    """(f over a batch of pixel_values [B, 3, H, W] -> p(target) [B], the film's pixel_values [3, H, W])."""
    model = loaded.model
    position, token = answer_target(record)
    inputs = teacher_forced_inputs(loaded, image, record, position)

    def probability(pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        batch = {k: v.expand(b, *v.shape[1:]) for k, v in inputs.items() if k != "pixel_values"}
        logits = model(**batch, pixel_values=pixels.to(model.dtype), use_cache=False, logits_to_keep=1).logits
        return torch.softmax(logits[:, -1].float(), dim=-1)[:, token]

    return probability, inputs["pixel_values"][0]


def processed_pixels(loaded: LoadedModel, image, record: AttentionRecord) -> torch.Tensor:
    """The processor's pixel_values [3, H, W] of ``image`` (the model's resize and normalisation)."""
    from medgemma_tui.engine.extract import model_inputs
    from medgemma_tui.engine.prompt import build_prompt

    prompt = build_prompt(loaded.processor, loaded.config, image, record.question)
    return model_inputs(loaded, prompt)["pixel_values"][0].to(loaded.device)


def blurred(image, tokens_per_side: int):
    """The film blurred with a Gaussian of one token cell's width (its brightness without its detail)."""
    from PIL import ImageFilter

    return image.filter(ImageFilter.GaussianBlur(radius=max(image.size) / tokens_per_side))


def cell_weights_to_pixels(keep: torch.Tensor, side: int, size: int) -> torch.Tensor:
    """Per-cell weights [B, side * side] (row-major) -> per-pixel weights [B, 1, size, size], each cell its
    square of size // side pixels (a remainder at the right and bottom edges belongs to the last cells)."""
    cell = size // side
    index = torch.clamp(torch.arange(size, device=keep.device) // cell, max=side - 1)  # pixel -> cell
    grid = keep.view(-1, side, side)
    return grid[:, index][:, :, index][:, None]


@dataclass
class PixelProbe:
    function: Any  # [B, 3, H, W] pixel_values -> [B] p(target)
    pixels: torch.Tensor  # [3, H, W] the film's pixel_values
    baseline: torch.Tensor  # [3, H, W] what a removed pixel becomes
    side: int  # grid cells per side (sqrt of mm_tokens_per_image)
    batch_size: int = 16

    @property
    def cells(self) -> int:
        return self.side * self.side

    @torch.no_grad()
    def probabilities(self, keep: np.ndarray) -> np.ndarray:
        """p(target) for each row of ``keep`` [B, cells] (weights in [0, 1]): [B] float64."""
        keep_all = torch.as_tensor(np.asarray(keep, dtype=np.float32), device=self.pixels.device)
        size = self.pixels.shape[-1]
        out = []
        for first in range(0, keep_all.shape[0], self.batch_size):
            w = cell_weights_to_pixels(keep_all[first:first + self.batch_size], self.side, size).to(self.pixels.dtype)
            films = w * self.pixels[None] + (1 - w) * self.baseline[None]  # [b, 3, H, W]
            out.append(self.function(films).double().cpu())
        return torch.cat(out).numpy()


@torch.no_grad()
def pixel_probe(loaded: LoadedModel, image, record: AttentionRecord, baseline: str = "mean",
                batch_size: int = 16) -> PixelProbe:
    """The pixel probe of ``record``'s target row on ``image``."""
    if baseline not in PIXEL_BASELINES:
        raise ValueError(f"unknown pixel baseline {baseline!r} (known: {', '.join(PIXEL_BASELINES)})")
    function, pixels = pixel_function(loaded, image, record)
    side = int(round(loaded.config.mm_tokens_per_image ** 0.5))
    if baseline == "mean":
        neutral = pixels.mean(dim=(1, 2), keepdim=True).expand_as(pixels)
    elif baseline == "zero":
        from PIL import Image

        neutral = processed_pixels(loaded, Image.new(image.mode, image.size), record)
    else:
        neutral = processed_pixels(loaded, blurred(image, side), record)
    return PixelProbe(function=function, pixels=pixels, baseline=neutral.to(pixels.dtype), side=side,
                      batch_size=batch_size)


def projected_image_tokens(model, pixel_values) -> torch.Tensor:
    """The projected image tokens of one image: [N, D] (N = mm_tokens_per_image, row-major)."""
    out = model.get_image_features(pixel_values, return_dict=True)
    features = out.pooler_output if hasattr(out, "pooler_output") else out
    return features.reshape(-1, features.shape[-1])


@dataclass
class TokenProbe:
    model: Any
    text: torch.Tensor  # [1, S, D] text embeddings, image positions filled later
    features: torch.Tensor  # [N, D] the film's projected image tokens
    baseline: torch.Tensor  # [N, D] what a removed token becomes
    image_positions: torch.Tensor  # [N] sequence positions of the image tokens
    attention_mask: torch.Tensor  # [1, S]
    token_type_ids: torch.Tensor  # [1, S]
    target: int  # the answer token id whose probability is read at the last position
    batch_size: int = 16

    @property
    def cells(self) -> int:
        return int(self.features.shape[0])

    @torch.no_grad()
    def probabilities(self, keep: np.ndarray) -> np.ndarray:
        """p(target) for each row of ``keep`` [B, N] (weights in [0, 1]): [B] float64."""
        keep_all = torch.as_tensor(np.asarray(keep, dtype=np.float32), device=self.text.device)
        out = []
        for first in range(0, keep_all.shape[0], self.batch_size):
            w = keep_all[first:first + self.batch_size, :, None].to(self.text.dtype)  # [b, N, 1]
            b = w.shape[0]
            embeds = self.text.expand(b, -1, -1).clone()  # [b, S, D]
            embeds[:, self.image_positions] = w * self.features[None] + (1 - w) * self.baseline[None]
            logits = self.model(inputs_embeds=embeds, attention_mask=self.attention_mask.expand(b, -1),
                                token_type_ids=self.token_type_ids.expand(b, -1), use_cache=False,
                                logits_to_keep=1).logits
            out.append(torch.softmax(logits[:, -1].float(), dim=-1)[:, self.target].cpu())
        return torch.cat(out).numpy().astype(np.float64)


@torch.no_grad()
def token_probe(loaded: LoadedModel, image, record: AttentionRecord, baseline: str = "mean",
                batch_size: int = 16) -> TokenProbe:
    """The probe of ``record``'s target row on ``image`` (one vision pass)."""
    if baseline not in TOKEN_BASELINES:
        raise ValueError(f"unknown token baseline {baseline!r} (known: {', '.join(TOKEN_BASELINES)})")
    model = loaded.model
    position, token = answer_target(record)
    inputs = teacher_forced_inputs(loaded, image, record, position)
    ids = inputs["input_ids"]  # [1, position + 1]
    image_mask = ids[0] == model.config.image_token_index
    text = model.get_input_embeddings()(ids.masked_fill(ids == model.config.image_token_index, 0))
    features = projected_image_tokens(model, inputs["pixel_values"]).to(text.dtype)  # [N, D]
    if baseline == "mean":
        neutral = features.mean(dim=0, keepdim=True).expand_as(features)
    elif baseline == "zero":
        neutral = torch.zeros_like(features)
    else:
        side = int(round(loaded.config.mm_tokens_per_image ** 0.5))
        blurred_pixels = processed_pixels(loaded, blurred(image, side), record)[None].to(inputs["pixel_values"].dtype)
        neutral = projected_image_tokens(model, blurred_pixels).to(text.dtype)
    return TokenProbe(model=model, text=text, features=features, baseline=neutral,
                      image_positions=torch.nonzero(image_mask).squeeze(1), attention_mask=inputs["attention_mask"],
                      token_type_ids=inputs["token_type_ids"], target=token, batch_size=batch_size)
