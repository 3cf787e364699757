"""Attribution methods beside attention: occlusion, RISE, integrated gradients, Grad-CAM++, and the
sanity-check maths, on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgemma_tui.engine.attribution.grad_cam_pp import grad_cam_pp
from medgemma_tui.engine.attribution.integrated_gradients import (
    integrated_gradients,
    refined_integrated_gradients,
    sum_pool_to_tokens,
)
from medgemma_tui.engine.attribution.occlusion import occlusion_map, occlusion_masks, occlusion_scores
from medgemma_tui.engine.attribution.probe import PixelProbe, cell_weights_to_pixels
from medgemma_tui.engine.attribution.rise import rise_masks, rise_scores

SHAPE = (16, 16)
CELL = 37  # row 2, column 5


def depends_on_one_cell(masks: np.ndarray) -> np.ndarray:
    """An 'answer probability' that is 0.9 with cell 37 kept and 0.1 without, whatever else is kept."""
    return 0.1 + 0.8 * np.asarray(masks, dtype=np.float64)[:, CELL]


def test_occlusion_gives_the_one_cell_the_answer_depends_on_the_whole_drop():
    scores = occlusion_scores(depends_on_one_cell, SHAPE, window=1)
    expected = np.zeros(256)
    expected[CELL] = 0.8
    np.testing.assert_allclose(scores, expected, atol=1e-12)


def test_occlusion_with_a_wider_window_still_peaks_at_that_cell():
    scores = occlusion_scores(depends_on_one_cell, SHAPE, window=3)
    assert int(np.argmax(scores)) == CELL
    assert scores[CELL] == pytest.approx(0.8)  # every window covering it removes it
    assert occlusion_masks(SHAPE, 3).shape == (14 * 14, 256)


def test_rise_gives_the_one_cell_the_answer_depends_on_the_top_score():
    scores = rise_scores(depends_on_one_cell, SHAPE, masks=1000, cells=8, keep=0.5, seed=1)
    assert int(np.argmax(scores)) == CELL


def test_rise_masks_are_seeded_smooth_and_in_range():
    a, b = rise_masks(SHAPE, 8, 4, 0.5, seed=3), rise_masks(SHAPE, 8, 4, 0.5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rise_masks(SHAPE, 8, 4, 0.5, seed=4))
    assert a.shape == (8, 256) and a.min() >= 0 and a.max() <= 1
    assert len(np.unique(a)) > 2  # upsampled bilinearly, not binary


def test_integrated_gradients_of_a_linear_function_are_weight_times_difference():
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    x, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.zeros(2, 2)
    att = integrated_gradients(lambda batch: (batch * w).sum(dim=(1, 2)), x, b, steps=3)
    torch.testing.assert_close(att, w * x)


def test_integrated_gradients_are_complete_for_a_smooth_nonlinear_function():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, 4, generator=gen)
    x, b = torch.rand(3, 4, 4, generator=gen), torch.zeros(3, 4, 4)

    def f(batch):
        return torch.sigmoid((torch.sin(batch * 2) * w).sum(dim=(1, 2, 3)))

    att = integrated_gradients(f, x, b, steps=64, batch_size=16)
    gap = float(att.sum() - (f(x[None]) - f(b[None]))[0])
    assert abs(gap) < 1e-4


def test_refined_integrated_gradients_triple_the_steps_until_complete_and_reuse_every_gradient():
    # along the path b -> x the function jumps (a steep sigmoid at a quarter of the way): the midpoint
    # rule at 2 points misses the jump, as 32 points missed the demo model's
    x, b = torch.ones(2, 3), torch.zeros(2, 3)
    seen = []

    def f(batch):
        seen.append(batch.shape[0])
        return torch.sigmoid(40 * (batch.mean(dim=(1, 2)) - 0.27))

    att, check = refined_integrated_gradients(f, x, b, steps=2, batch_size=64, tolerance=0.01, max_steps=2 * 3**6)
    calls = list(seen)
    difference = float(f(x[None]) - f(b[None]))
    gaps = [abs(gap) for _, gap in check["history"]]
    assert gaps[0] > 0.2 * difference  # 2 midpoints are far off
    assert check["converged"] and abs(check["gap"]) <= 0.01 * difference
    assert float(att.sum()) == pytest.approx(difference, abs=0.01 * difference)
    assert [n for n, _ in check["history"]] == [2 * 3**k for k in range(len(gaps))]
    assert check["steps"] == 2 * 3 ** (len(gaps) - 1) > 2
    assert calls[0] == 2 and sum(calls[1:]) == check["steps"]  # after the two ends, each midpoint's gradient taken once


def test_refined_integrated_gradients_stop_at_max_steps_and_say_so():
    x, b = torch.ones(4), torch.zeros(4)
    _, check = refined_integrated_gradients(lambda t: torch.sigmoid(200 * (t.mean(dim=1) - 0.31)), x, b,
                                            steps=1, tolerance=1e-6, max_steps=9)
    assert check["steps"] == 9 and not check["converged"]


def test_pixel_occlusion_finds_the_one_patch_the_answer_depends_on():
    side, size = 4, 8  # 2 x 2 pixels per cell
    cell = 2 * side + 1  # row 2, column 1
    film = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0)) + 1

    def answer(films):  # reads only the pixels of cell (2, 1)
        return torch.sigmoid(films[:, :, 4:6, 2:4].sum(dim=(1, 2, 3)) - 12)

    probe = PixelProbe(function=answer, pixels=film, baseline=torch.zeros_like(film), side=side, batch_size=5)
    expected = np.zeros(side * side)
    expected[cell] = float(answer(film[None]) - answer(torch.zeros(1, 3, size, size)))
    np.testing.assert_allclose(occlusion_map(probe, (side, side)), expected, atol=1e-6)
    wide = occlusion_map(probe, (side, side), window=2)  # every 2 x 2 window over the cell removes it
    assert int(np.argmax(wide)) == cell and wide[cell] == pytest.approx(expected[cell], rel=1e-5)


def test_cell_weights_reach_their_own_square_of_pixels_row_major():
    keep = torch.ones(1, 16)
    keep[0, 3] = 0  # row 0, column 3: the top-right cell of a 4 x 4 grid
    pixels = cell_weights_to_pixels(keep, 4, 8)[0, 0]
    assert pixels.shape == (8, 8) and (pixels[:2, 6:] == 0).all() and pixels.sum() == 60


def test_sum_pooling_keeps_the_total_and_is_row_major():
    pixels = np.zeros((8, 8))
    pixels[0, 6] = 2.0  # top row, right half -> token (0, 1) of a 2x2 grid... of 4x4 pixel squares
    pooled = sum_pool_to_tokens(pixels, 2)
    np.testing.assert_array_equal(pooled, [0.0, 2.0, 0.0, 0.0])


def test_grad_cam_pp_follows_the_closed_form_on_known_values():
    # one channel, two patches: alpha = g^2 / (2 g^2 + sum A g^3) = 1 / (2 + 3) = 0.2 each,
    # w = sum alpha relu(g) = 0.4, map = relu(A w) = [0.4, 0.8]
    np.testing.assert_allclose(grad_cam_pp(np.array([[1.0], [2.0]]), np.array([[1.0], [1.0]])), [0.4, 0.8],
                               rtol=1e-6)


def test_grad_cam_pp_cubes_the_gradient_at_each_position_as_eq_19_does():
    # Chattopadhay et al. 2018, eq. 19: alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab(A_ab) g_ij^3), worked by hand.
    # channel 0: A = [1, 2] (sum 3), g = [1, 2]: alpha = 1 / (2 + 3) = 0.2 and 4 / (8 + 3 * 8) = 0.125,
    #   w0 = 0.2 * 1 + 0.125 * 2 = 0.45
    # channel 1: A = [2, 0] (sum 2), g = [0.5, -1]: alpha = 0.25 / (0.5 + 2 * 0.125) = 1/3 at patch 0;
    #   patch 1's gradient is negative (ReLU 0), so w1 = 1/3 * 0.5 = 1/6
    # map = [1 * 0.45 + 2 / 6, 2 * 0.45 + 0] = [0.78333, 0.9]. (With sum_p A_p g_p^3 in the denominator
    # instead, the map would be [0.706, 0.745]: another shape, not only another scale.)
    activations = np.array([[1.0, 2.0], [2.0, 0.0]])
    gradients = np.array([[1.0, 0.5], [2.0, -1.0]])
    np.testing.assert_allclose(grad_cam_pp(activations, gradients), [0.45 + 1 / 3, 0.9], rtol=1e-6)


def eq19_by_the_letter(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Eq. 19 and eq. 10 of Chattopadhay et al. (2018) position by position, as loops over i, j and a, b."""
    patches, channels = activations.shape
    weights = np.zeros(channels)
    for k in range(channels):
        total = sum(activations[ab, k] for ab in range(patches))  # sum_ab A^k_ab
        for ij in range(patches):
            g = gradients[ij, k]
            if g > 0:  # alpha is multiplied by ReLU(g): only positive gradients count
                weights[k] += g**2 / (2 * g**2 + total * g**3) * g
    return np.maximum(activations @ weights, 0)


def test_grad_cam_pp_equals_eq_19_on_random_activations_and_gradients():
    rng = np.random.default_rng(0)
    for _ in range(10):
        activations = rng.uniform(0.05, 3.0, (64, 8))  # post-ReLU-like activations, varied gradients
        gradients = rng.normal(0.0, 1.0, (64, 8))
        np.testing.assert_allclose(grad_cam_pp(activations, gradients), eq19_by_the_letter(activations, gradients),
                                   rtol=1e-6, atol=1e-6)


def test_grad_cam_pp_ignores_channels_with_only_negative_gradients():
    activations = np.array([[1.0, 5.0], [0.0, 5.0]])
    gradients = np.array([[1.0, -1.0], [1.0, -1.0]])
    out = grad_cam_pp(activations, gradients)
    assert out[0] > 0 and out[1] == 0  # the second channel's weight is 0 although its activations are large


def test_an_unknown_method_on_the_command_line_exits_2_before_anything_runs(tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    result = CliRunner().invoke(main, ["eval", "--export", str(tmp_path / "out"), "--methods", "occlusion,lime"],
                                catch_exceptions=False)
    assert result.exit_code == 2 and "--methods" in result.stderr and "lime" in result.stderr
    assert not (tmp_path / "out").exists()
