"""Boxes on the model's grid: several boxes cover a cell by their union, checked against the boxes
painted pixel by pixel onto the film."""

from __future__ import annotations

import numpy as np
import pytest

from medgemma_tui.analysis.grounding import box_area_fraction, boxes_to_grid


def painted_coverage(boxes, size, grid=(16, 16)) -> np.ndarray:
    """Reference: paint every box onto a width x height pixel raster, then average the raster per cell."""
    width, height = size
    raster = np.zeros((height, width), dtype=bool)
    for x, y, w, h in boxes:
        raster[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = True
    rows, cols = grid
    return raster.reshape(rows, height // rows, cols, width // cols).mean(axis=(1, 3))


def test_two_boxes_that_together_fill_a_cell_cover_it_fully():
    boxes = [(0, 0, 10, 20), (10, 0, 10, 20)]  # a 320 px film: cell (0, 0) is 20 x 20 px
    cover = boxes_to_grid(boxes, (320, 320))
    assert cover[0, 0] == pytest.approx(1.0)
    assert cover.sum() == pytest.approx(1.0)
    assert box_area_fraction(boxes, (320, 320)) == pytest.approx(400 / 320**2)


def test_overlapping_boxes_count_their_shared_area_once():
    boxes = [(0, 0, 90, 90), (80, 0, 30, 90)]  # 8,100 + 2,700 - the shared 10 x 90 = 9,900 px^2
    assert box_area_fraction(boxes, (400, 400)) == pytest.approx(9_900 / 400**2)
    assert boxes_to_grid(boxes, (400, 400))[0, 3] == pytest.approx(1.0)  # 75..100: 75..90 and 80..100


def test_union_coverage_equals_the_painted_boxes_on_random_films():
    rng = np.random.default_rng(3)
    for _ in range(20):
        size = (16 * int(rng.integers(5, 40)), 16 * int(rng.integers(5, 40)))  # non-square films too
        boxes = []
        for _ in range(int(rng.integers(1, 5))):
            x, y = int(rng.integers(-20, size[0])), int(rng.integers(-20, size[1]))
            boxes.append((x, y, int(rng.integers(1, size[0] // 2)), int(rng.integers(1, size[1] // 2))))
        reference = painted_coverage(boxes, size)
        np.testing.assert_allclose(boxes_to_grid(boxes, size), reference, atol=1e-9)
        assert box_area_fraction(boxes, size) == pytest.approx(reference.mean())


def test_one_box_keeps_its_fractional_coverage_and_no_box_gives_none():
    cover = boxes_to_grid([(5, 0, 10, 20)], (320, 320))
    assert cover[0, 0] == pytest.approx(0.5) and cover.sum() == pytest.approx(0.5)
    assert boxes_to_grid([], (320, 320)) is None and box_area_fraction([], (320, 320)) == 0.0


# ---- one pointing rule: the row metrics and the robustness study's map comparison ----------------------
def test_a_small_box_inside_the_top_cell_of_a_large_film_is_a_hit_with_chance_one_cell():
    from medgemma_tui.analysis.grounding import pointing_cells, pointing_chance

    size = (2048, 2048)  # 128 px cells: cell (1, 1) spans 128..256 and is centred at 192
    box = [(130, 130, 40, 40)]  # inside cell (1, 1), 22 px from its centre in x and in y
    hits = pointing_cells(box, size)
    assert hits[1, 1] and hits.sum() == 1
    assert pointing_chance(box, size) == pytest.approx(1 / 256)


def test_the_row_metrics_and_the_robustness_comparison_score_the_same_map_alike():
    from medgemma_tui.analysis.compare import compare_maps
    from medgemma_tui.analysis.grounding import pointing_cells
    from medgemma_tui.analysis.metrics import map_metrics

    rng = np.random.default_rng(5)
    for size, boxes in (((2048, 2048), [(130, 130, 40, 40)]), ((1600, 1200), [(290, 0, 100, 100)]),
                        ((512, 512), [(381.8, 126.9, 40.2, 44.6), (100, 300, 20, 20)])):
        for _ in range(5):
            grid = rng.random((16, 16)) ** 8
            row = map_metrics(grid, box=boxes_to_grid(boxes, size), pointing=pointing_cells(boxes, size))
            robust = compare_maps(grid, grid, (0, 0, *size), size, boxes=boxes)["metrics"]
            for name in ("pointing_hit", "pointing_chance", "mass_in_box", "auroc"):
                assert robust[name] == pytest.approx(row[name]), (size, name)
