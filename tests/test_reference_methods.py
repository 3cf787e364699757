"""Integrated gradients and occlusion on the demo model, held to Captum's (Kokhlikyan et al. 2020,
"Captum: A unified and generic model interpretability library for PyTorch") on the same inputs: the same
answer-token probability as the function, the same baseline, the same midpoints, the same windows.

The target is the record's first answer token that is not an end token, whatever the answer says (a
word or the first piece of a sentence), so these hold for any answer the demo model gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

captum_attr = pytest.importorskip("captum.attr")


@pytest.fixture(scope="module")
def nodule_case(demo_model):
    """A phantom film, its record for a question the demo model answers with some confidence."""
    from PIL import Image

    from medgemma_tui.engine.extract import extract_record
    from medgemma_tui.resources import fixtures_dir

    film = Image.open(fixtures_dir() / "phantoms" / "p0002.png").convert("RGB")
    return film, extract_record(demo_model, film, "Is there a nodule?", max_new_tokens=8)


def pooled(pixel_map: torch.Tensor, side: int) -> np.ndarray:
    """[3, H, W] attributions -> [side * side]: channels and each token's square of pixels summed, row-major."""
    summed = pixel_map.double().sum(dim=0).cpu().numpy()
    h, w = summed.shape
    return summed.reshape(side, h // side, side, w // side).sum(axis=(1, 3)).ravel()


def test_integrated_gradients_equal_captums_with_the_same_baseline_target_and_midpoints(demo_model, nodule_case):
    from medgemma_tui.engine.attribution.integrated_gradients import ig_map
    from medgemma_tui.engine.attribution.probe import blurred, pixel_function, processed_pixels
    from medgemma_tui.engine.gradients import frozen_for_gradients

    film, record = nodule_case
    side = int(round(demo_model.config.mm_tokens_per_image ** 0.5))
    steps = 6
    ours, check = ig_map(demo_model, film, record, steps=steps, baseline="blur", batch_size=steps, max_steps=steps)
    probability, x = pixel_function(demo_model, film, record)
    baseline = processed_pixels(demo_model, blurred(film, side), record)
    with frozen_for_gradients(demo_model.model):
        reference = captum_attr.IntegratedGradients(probability).attribute(
            x[None].float(), baselines=baseline[None].float(), n_steps=steps, method="riemann_middle",
            internal_batch_size=steps)
    expected = pooled(reference[0], side)
    assert np.abs(expected).max() > 1e-4  # a map with something in it, not two arrays of zeros
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-5 * np.abs(expected).max())
    assert check["steps"] == steps


def test_occlusion_equals_captums_over_the_same_windows(demo_model, nodule_case):
    from medgemma_tui.engine.attribution.occlusion import occlusion_map
    from medgemma_tui.engine.attribution.probe import pixel_probe

    film, record = nodule_case
    probe = pixel_probe(demo_model, film, record, baseline="mean", batch_size=32)
    side = probe.side
    cell = probe.pixels.shape[-1] // side
    window = side - 2  # 9 windows of 14 x 14 cells: each border row and column covered by 1 or 2, the middle by 3
    ours = occlusion_map(probe, (side, side), window).astype(np.float64)
    with torch.no_grad():
        reference = captum_attr.Occlusion(probe.function).attribute(
            probe.pixels[None], sliding_window_shapes=(3, window * cell, window * cell), strides=(3, cell, cell),
            baselines=probe.baseline[None], perturbations_per_eval=32)
    expected = reference[0, 0, ::cell, ::cell].double().cpu().numpy().ravel()  # every pixel of a cell alike
    assert np.abs(expected).max() > 1e-4
    # Captum averages a pixel's windows; the map divides their sum by window^2 (README, Occlusion): the same
    # inside, where window^2 windows cover a cell, and scaled by (windows covering the cell) / window^2 at
    # the border. Windows covering row r: those starting at max(0, r - window + 1) .. min(r, side - window).
    covering = np.array([min(r, side - window) - max(0, r - window + 1) + 1 for r in range(side)])
    share = np.outer(covering, covering).ravel() / window**2
    np.testing.assert_allclose(ours, expected * share, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
