"""Attribution methods beside attention: occlusion, RISE, integrated gradients, Grad-CAM++, and the
sanity-check maths, on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgemma_tui.engine.attribution.grad_cam_pp import grad_cam_pp
from medgemma_tui.engine.attribution.integrated_gradients import integrated_gradients, sum_pool_to_tokens
from medgemma_tui.engine.attribution.occlusion import occlusion_masks, occlusion_scores
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
