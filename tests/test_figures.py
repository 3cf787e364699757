"""Figures: the overlay puts each cell where it lies on the film; figures and dataset plots are written whole."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medgemma_tui.colormaps import get_colormap
from medgemma_tui.export import figures


def one_hot(row: int, col: int, shape=(16, 16)) -> np.ndarray:
    grid = np.zeros(shape, dtype=np.float32)
    grid[row, col] = 1.0
    return grid


def cell_centre(row: int, col: int, size: tuple[int, int], shape=(16, 16)) -> tuple[int, int]:
    """(y, x) pixel of a cell's centre on a film of size (width, height), stretched like the processor does."""
    width, height = size
    return int((row + 0.5) * height / shape[0]), int((col + 0.5) * width / shape[1])


@pytest.mark.parametrize("cell", [(2, 12), (13, 1), (0, 0), (15, 15)])
def test_overlay_puts_a_one_hot_cell_at_its_place_on_a_non_square_film(cell):
    width, height = 300, 200
    film = np.full((height, width), 100, dtype=np.uint8)
    alpha = 0.5
    out = figures.overlay_image(film, one_hot(*cell), "magma", alpha)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8

    hot = (1 - alpha) * 100 + alpha * get_colormap("magma")(1.0).astype(float)
    cold = (1 - alpha) * 100 + alpha * get_colormap("magma")(0.0).astype(float)
    cell_h, cell_w = height / 16, width / 16
    # the hottest pixel has the colour map's top colour and lies inside the cell
    distance = np.abs(out.astype(float) - hot).max(axis=-1)
    y, x = np.unravel_index(int(np.argmin(distance)), distance.shape)
    assert distance[y, x] <= 2
    assert cell[0] * cell_h <= y < (cell[0] + 1) * cell_h and cell[1] * cell_w <= x < (cell[1] + 1) * cell_w
    # the far corner of the film is cold
    cy, cx = cell_centre(*cell, (width, height))
    assert np.abs(out[height - 1 - cy, width - 1 - cx].astype(float) - cold).max() <= 2
    # every pixel that carries any heat lies within one cell of the hot cell (bilinear between centres)
    heat = np.abs(out.astype(float) - cold).sum(axis=-1) > 3
    ys, xs = np.nonzero(heat)
    assert ys.min() >= (cell[0] - 0.5) * cell_h - 1 and ys.max() <= (cell[0] + 1.5) * cell_h + 1
    assert xs.min() >= (cell[1] - 0.5) * cell_w - 1 and xs.max() <= (cell[1] + 1.5) * cell_w + 1


def test_overlay_row_zero_is_the_top_and_column_zero_the_left():
    film = np.zeros((160, 160), dtype=np.uint8)
    grid = np.zeros((16, 16))
    grid[0, 15] = 1.0  # top right of the image: the patient's left apex
    out = figures.overlay_image(film, grid, "gray", 1.0)
    assert out[5, 155].mean() > 200  # top right is bright
    assert out[155, 5].mean() < 5 and out[5, 5].mean() < 5 and out[155, 155].mean() < 5


def test_save_overlay_writes_the_films_own_resolution(tmp_path):
    film = (np.arange(240 * 180) % 251).astype(np.uint8).reshape(180, 240)
    path = figures.save_overlay(tmp_path / "o.png", film, np.random.default_rng(0).random((16, 16)), "viridis", 0.3)
    with Image.open(path) as image:
        assert image.size == (240, 180) and image.mode == "RGB"
    assert not list(tmp_path.glob(".*.tmp"))


def phantom(seed: int, finding: str | None):
    from tests.support import builder

    return builder("phantoms").make_phantom(seed, finding, size=256)


def stand_in_analysis(masks, grid: np.ndarray):
    """What full_figure reads of a SampleAnalysis, without running the model."""
    from types import SimpleNamespace

    from medgemma_tui.analysis.metrics import map_metrics

    record = SimpleNamespace(question="Is there a nodule in the $right$ lung?", answer="Yes, 50% sure.",
                             image_path="p.png")
    return SimpleNamespace(record=record, grid=grid, view=SimpleNamespace(description="head mean, all layers"),
                           metrics=map_metrics(grid), masks=masks, gating=SimpleNamespace(tokens=[1]),
                           answer_label="yes", correct=True)


def test_full_figure_is_written_whole_with_masks_boxes_and_text_with_dollars(tmp_path):
    from medgemma_tui.analysis.masks import AnatomyMasks

    p = phantom(3, "nodule")
    masks = AnatomyMasks(body=p.masks["body"], lung_right=p.masks["lung_right"], lung_left=p.masks["lung_left"])
    grid = np.random.default_rng(0).random((16, 16)) + one_hot(4, 3) * 5
    figure = figures.full_figure(p.image, stand_in_analysis(masks, grid), boxes=[p.box], ground_truth="yes",
                                 title="demo $x$ 50%")
    path = figures.save_figure(figure, tmp_path / "full.png")
    with Image.open(path) as image:
        image.load()
        assert image.size[0] > 1200 and image.size[1] > 800
        assert np.asarray(image.convert("L")).std() > 10  # drawn, not blank
    assert not list(tmp_path.glob(".*.tmp"))


def test_metric_lines_say_na_for_undefined_metrics():
    lines = figures.metrics_lines({"entropy": 1.23456, "inside_lungs_ratio": math.nan, "auroc": 0.5})
    assert any("entropy" in line and "1.235" in line for line in lines)
    assert any("inside_lungs_ratio" in line and "n/a" in line for line in lines)


def test_wilson_interval_known_values():
    lo, hi = figures.wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    lo, hi = figures.wilson_interval(0, 4)
    assert lo == pytest.approx(0.0, abs=1e-9) and hi == pytest.approx(0.4899, abs=1e-3)


def test_dataset_plots_are_written(tmp_path):
    rng = np.random.default_rng(1)
    n = 12
    rows = pd.DataFrame({
        "key": [f"k{i}" for i in range(n)],
        "error": [""] * n,
        "correct": pd.array([bool(i % 3) for i in range(n)], dtype="boolean"),
        "entropy_norm": rng.random(n),
        "focus": rng.random(n) / 10,
        "inside_lungs_ratio": rng.random(n),
        "auroc": [math.nan] * n,
    })
    assert figures.plot_metric_distributions(rows, tmp_path / "m.png").exists()
    table = pd.DataFrame({"strategy": ["original", "voice_change"], "scored": [6, 4], "accuracy": [0.5, 0.75]})
    assert figures.plot_accuracy_by_strategy(table, tmp_path / "a.png").exists()
    summaries = [{"image_share": rng.random(6).tolist(), "bos_share": rng.random(6).tolist(),
                  "entropy": (5 + rng.random(6)).tolist()} for _ in range(5)]
    types = ["sliding_attention"] * 5 + ["full_attention"]
    assert figures.plot_layer_profile(summaries, tmp_path / "l.png", types, 256).exists()
    assert figures.plot_layer_profile([], tmp_path / "none.png") is None
