"""Integrated gradients on the pixels (Sundararajan, Taly and Yan, 2017, "Axiomatic Attribution for
Deep Networks"), pooled to the image-token grid.

The path runs from a baseline image b to the film x; with n points a_k = (k + 1/2) / n (the midpoint
rule) the attribution of pixel i is (x_i - b_i) * mean_k df/dx_i(b + a_k (x - b)), f the answer
token's probability at the target row (``gradients.answer_target``). Completeness: the attributions
sum to f(x) - f(b) up to the rule's error.

That error is not small at a fixed n on a trained model: along the straight path f can jump from 0.09
to 0.93 within 4% of the path (measured on the demo model), and 32 midpoints then see the jump at one
or two points, so the sum misses f(x) - f(b) by more than the difference itself. The paper's remedy is
to check completeness and take more steps ("between 20 and 300 steps are enough ... within 5%"):
``refined_integrated_gradients`` starts at ``steps`` and triples n until the gap is within
``tolerance`` of |f(x) - f(b)| (or 1e-3 in probability, whichever is larger) or ``max_steps`` is
reached. Tripling nests the midpoint rule (the midpoints of n intervals are among those of 3n), so
every gradient already taken is kept.

Baselines (both through the processor, so the normalisation is the model's own): ``blur`` (the film
blurred with a Gaussian of one token cell's width: the film's brightness without its detail; the
default, since the demo model answers "yes" to a black film with p = 0.75, so black is not a neutral
input for it) or ``black`` (a film of zeros). Channels are summed and the pixel map sum-pooled over
each token's square of pixels (patches per side over tokens per side, as
``Gemma3MultiModalProjector`` pools), so the token attributions keep the sum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from medgemma_tui.engine.attribution.probe import blurred, pixel_function, processed_pixels
from medgemma_tui.engine.gradients import frozen_for_gradients
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.model.loading import LoadedModel

IG_BASELINES = ("blur", "black")
ABSOLUTE_TOLERANCE = 1e-3  # in the function's units (a probability here): the floor of the allowed gap


def _gradient_sum(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor,
                  alphas: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The sum over ``alphas`` of the gradient of ``function`` at b + a (x - b): the shape of ``x``, float64."""
    total = torch.zeros_like(x, dtype=torch.float64)
    with torch.enable_grad():
        for first in range(0, len(alphas), batch_size):
            a = alphas[first:first + batch_size].to(x.dtype).to(x.device).view(-1, *([1] * x.ndim))
            path = (baseline[None] + a * (x - baseline)[None]).detach().requires_grad_()
            (grad,) = torch.autograd.grad(function(path).sum(), path)
            total += grad.double().sum(dim=0)
    return total


def midpoints(steps: int) -> torch.Tensor:
    """The midpoint rule's points (k + 1/2) / steps on [0, 1]: [steps] float64."""
    return (torch.arange(steps, dtype=torch.float64) + 0.5) / steps


def integrated_gradients(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor,
                         steps: int = 16, batch_size: int = 8) -> torch.Tensor:
    """(x - b) * the midpoint-rule mean of the gradient of ``function`` along b -> x: the shape of ``x``.

    ``function`` maps a batch [B, *x.shape] to B outputs; gradients are taken through a fresh leaf.
    """
    if steps < 1:
        raise ValueError("integrated gradients needs steps >= 1")
    total = _gradient_sum(function, x, baseline, midpoints(steps), batch_size)
    return ((x - baseline).double() * total / steps).to(x.dtype)


def refined_integrated_gradients(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                                 baseline: torch.Tensor, steps: int = 32, batch_size: int = 8,
                                 tolerance: float = 0.05, max_steps: int = 864
                                 ) -> tuple[torch.Tensor, dict[str, object]]:
    """Integrated gradients with steps tripled until complete: (attributions, check).

    ``check``: ``f_x``, ``f_baseline``, ``sum`` (of the attributions), ``gap`` (sum - (f_x - f_baseline)),
    ``steps`` (the last n), ``converged`` (|gap| <= max(tolerance |f_x - f_baseline|, 1e-3)) and
    ``history`` ([n, gap] at every n tried).
    """
    if steps < 1 or max_steps < steps:
        raise ValueError("integrated gradients needs 1 <= steps <= max_steps")
    with torch.no_grad():
        ends = function(torch.stack([x, baseline])).double()
    f_x, f_b = float(ends[0]), float(ends[1])
    allowed = max(tolerance * abs(f_x - f_b), ABSOLUTE_TOLERANCE)
    difference = (x - baseline).double()
    n = steps
    total = _gradient_sum(function, x, baseline, midpoints(n), batch_size)
    history = []
    while True:
        attributions = difference * total / n
        gap = float(attributions.sum()) - (f_x - f_b)
        history.append([n, gap])
        if abs(gap) <= allowed or 3 * n > max_steps:
            break
        fresh = midpoints(3 * n)
        fresh = fresh[torch.arange(3 * n) % 3 != 1]  # every third point is an old midpoint, already summed
        total = total + _gradient_sum(function, x, baseline, fresh, batch_size)
        n *= 3
    check = {"sum": float(attributions.sum()), "f_x": f_x, "f_baseline": f_b, "gap": gap, "steps": n,
             "converged": abs(gap) <= allowed, "tolerance": tolerance, "history": history}
    return attributions.to(x.dtype), check


def sum_pool_to_tokens(pixel_map: np.ndarray, tokens_per_side: int) -> np.ndarray:
    """[H, W] -> [tokens] row-major, each token the sum of its square of pixels."""
    h, w = pixel_map.shape
    kh, kw = h // tokens_per_side, w // tokens_per_side
    cut = pixel_map[:kh * tokens_per_side, :kw * tokens_per_side]
    return cut.reshape(tokens_per_side, kh, tokens_per_side, kw).sum(axis=(1, 3)).ravel()


def ig_map(loaded: LoadedModel, image: Image.Image, record: AttentionRecord, steps: int = 32,
           baseline: str = "blur", batch_size: int = 8, tolerance: float = 0.05, max_steps: int = 864
           ) -> tuple[np.ndarray, dict[str, object]]:
    """Signed token attributions [N] float32 and the completeness check of ``refined_integrated_gradients``."""
    if baseline not in IG_BASELINES:
        raise ValueError(f"unknown integrated-gradients baseline {baseline!r} (known: {', '.join(IG_BASELINES)})")
    side = int(round(loaded.config.mm_tokens_per_image ** 0.5))
    probability, x = pixel_function(loaded, image, record)
    start = blurred(image, side) if baseline == "blur" else Image.new(image.mode, image.size)
    b = processed_pixels(loaded, start, record).to(x.device)
    with frozen_for_gradients(loaded.model):
        attributions, check = refined_integrated_gradients(probability, x.float(), b.float(), steps, batch_size,
                                                           tolerance, max_steps)
    pixel_map = attributions.sum(dim=0).double().cpu().numpy()  # [H, W], channels summed
    tokens = sum_pool_to_tokens(pixel_map, side)
    check.update(sum=float(tokens.sum()), gap=float(tokens.sum() - (check["f_x"] - check["f_baseline"])),
                 baseline=baseline)
    return tokens.astype(np.float32), check
