"""Integrated gradients on the pixels (Sundararajan, Taly and Yan, 2017, "Axiomatic Attribution for
Deep Networks"), pooled to the image-token grid.

The path runs from a baseline image b to the film x; with ``steps`` points a_k = (k + 1/2) / steps
(the midpoint rule) the attribution of pixel i is (x_i - b_i) * mean_k df/dx_i(b + a_k (x - b)),
f the answer token's probability at the target row (``gradients.answer_target``). Completeness: the
attributions sum to f(x) - f(b) up to the rule's error, which shrinks as ``steps`` grows.

Baselines (both through the processor, so the normalisation is the model's own): ``black`` (a film
of zeros) or ``blur`` (the film blurred with a Gaussian of one token cell's width). Channels are
summed and the pixel map sum-pooled over each token's square of pixels (patches per side over
tokens per side, as ``Gemma3MultiModalProjector`` pools), so the token attributions keep the sum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageFilter

from medgemma_tui.engine.gradients import answer_target, frozen_for_gradients, teacher_forced_inputs
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.model.loading import LoadedModel

IG_BASELINES = ("black", "blur")


def integrated_gradients(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor,
                         steps: int = 16, batch_size: int = 8) -> torch.Tensor:
    """(x - b) * the midpoint-rule mean of the gradient of ``function`` along b -> x: the shape of ``x``.

    ``function`` maps a batch [B, *x.shape] to B outputs; gradients are taken through a fresh leaf.
    """
    if steps < 1:
        raise ValueError("integrated gradients needs steps >= 1")
    alphas = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
    total = torch.zeros_like(x, dtype=torch.float64)
    with torch.enable_grad():
        for first in range(0, steps, batch_size):
            a = alphas[first:first + batch_size].to(x.dtype).to(x.device).view(-1, *([1] * x.ndim))
            path = (baseline[None] + a * (x - baseline)[None]).detach().requires_grad_()
            (grad,) = torch.autograd.grad(function(path).sum(), path)
            total += grad.double().sum(dim=0)
    return ((x - baseline).double() * total / steps).to(x.dtype)


def baseline_image(image: Image.Image, kind: str, tokens_per_side: int) -> Image.Image:
    """The IG baseline as an image of the film's size."""
    if kind == "black":
        return Image.new(image.mode, image.size)
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(radius=max(image.size) / tokens_per_side))
    raise ValueError(f"unknown integrated-gradients baseline {kind!r} (known: {', '.join(IG_BASELINES)})")


def pixel_function(loaded: LoadedModel, image: Image.Image, record: AttentionRecord):
    """(f over a batch of pixel_values -> p(target), the film's pixel_values [3, H, W], its inputs)."""
    model = loaded.model
    position, token = answer_target(record)
    inputs = teacher_forced_inputs(loaded, image, record, position)

    def probability(pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        batch = {k: v.expand(b, *v.shape[1:]) for k, v in inputs.items() if k != "pixel_values"}
        logits = model(**batch, pixel_values=pixels.to(model.dtype), use_cache=False, logits_to_keep=1).logits
        return torch.softmax(logits[:, -1].float(), dim=-1)[:, token]

    return probability, inputs["pixel_values"][0], inputs


def sum_pool_to_tokens(pixel_map: np.ndarray, tokens_per_side: int) -> np.ndarray:
    """[H, W] -> [tokens] row-major, each token the sum of its square of pixels."""
    h, w = pixel_map.shape
    kh, kw = h // tokens_per_side, w // tokens_per_side
    cut = pixel_map[:kh * tokens_per_side, :kw * tokens_per_side]
    return cut.reshape(tokens_per_side, kh, tokens_per_side, kw).sum(axis=(1, 3)).ravel()


def ig_map(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, steps: int = 16,
           baseline: str = "black", batch_size: int = 8) -> tuple[np.ndarray, dict[str, float]]:
    """Signed token attributions [N] float32 and the completeness check {sum, f_x, f_baseline, gap}."""
    from medgemma_tui.engine.extract import model_inputs
    from medgemma_tui.engine.prompt import build_prompt

    side = int(round(loaded.config.mm_tokens_per_image ** 0.5))
    probability, x, _ = pixel_function(loaded, image, record)
    base_img = baseline_image(image, baseline, side)
    prompt = build_prompt(loaded.processor, loaded.config, base_img, record.question)
    b = model_inputs(loaded, prompt)["pixel_values"][0]
    with frozen_for_gradients(loaded.model):
        attributions = integrated_gradients(probability, x.float(), b.to(x.device).float(), steps, batch_size)
        with torch.no_grad():
            ends = probability(torch.stack([x, b.to(x.device)]).float()).double().cpu().numpy()
    pixel_map = attributions.sum(dim=0).double().cpu().numpy()  # [H, W], channels summed
    tokens = sum_pool_to_tokens(pixel_map, side)
    check = {"sum": float(tokens.sum()), "f_x": float(ends[0]), "f_baseline": float(ends[1]),
             "gap": float(tokens.sum() - (ends[0] - ends[1])), "steps": steps, "baseline": baseline}
    return tokens.astype(np.float32), check
