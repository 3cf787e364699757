"""Metrics of one attention map, on hand-made grids whose values are known."""

import math

import numpy as np
import pytest

from medgemma_tui.analysis.metrics import (
    BOX_METRIC_NAMES,
    METRIC_NAMES,
    js_divergence,
    map_metrics,
    pearson,
    top_iou,
)

N = 16


def one_hot(r, c, shape=(N, N)):
    g = np.zeros(shape)
    g[r, c] = 1.0
    return g


def box_cells(r0, r1, c0, c1, shape=(N, N)):
    b = np.zeros(shape)
    b[r0:r1, c0:c1] = 1.0
    return b


def test_metric_names_are_the_interface():
    m = map_metrics(np.ones((N, N)))
    assert tuple(m) == METRIC_NAMES
    assert set(map_metrics(np.ones((N, N)), box=box_cells(0, 2, 0, 2))) == set(METRIC_NAMES + BOX_METRIC_NAMES)


def test_one_hot_map_has_zero_entropy_and_full_focus():
    m = map_metrics(one_hot(3, 12))
    assert m["entropy"] == 0.0
    assert m["entropy_norm"] == 0.0
    assert m["focus"] == 1.0
    assert m["top10_mass"] == 1.0
    assert m["gini"] == pytest.approx((N * N - 1) / (N * N))
    assert m["spread"] == 0.0
    assert (m["com_row"], m["com_col"]) == (3.5, 12.5)  # cell centres at index + 0.5
    assert m["right_fraction"] == 1.0 and m["apical_fraction"] == 1.0


def test_uniform_map_has_maximal_entropy_and_no_inequality():
    m = map_metrics(np.full((N, N), 7.0))  # any scale: normalised inside
    assert m["entropy"] == pytest.approx(math.log(N * N))
    assert m["entropy_norm"] == pytest.approx(1.0)
    assert m["focus"] == pytest.approx(1 / 256)
    assert m["top10_mass"] == pytest.approx(26 / 256)  # ceil(25.6) cells
    assert m["gini"] == pytest.approx(0.0, abs=1e-12)
    assert m["border_fraction"] == pytest.approx(60 / 256)  # 4*16 - 4 ring cells, corners once
    assert m["left_fraction"] == pytest.approx(0.5)
    for k in ("apical_fraction", "middle_fraction", "basal_fraction"):
        assert m[k] == pytest.approx(1 / 3)
    assert (m["com_row"], m["com_col"]) == (pytest.approx(8.0), pytest.approx(8.0))
    assert m["spread"] == pytest.approx(math.sqrt(2 * (N * N - 1) / 12))


def test_corner_map_is_all_border_left_and_apical():
    m = map_metrics(one_hot(0, 0))
    assert m["border_fraction"] == 1.0
    assert m["left_fraction"] == 1.0 and m["right_fraction"] == 0.0
    assert m["apical_fraction"] == 1.0 and m["basal_fraction"] == 0.0


def test_border_fraction_counts_each_ring_cell_once_and_never_exceeds_one():
    ring = np.zeros((N, N))
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = 1.0
    assert map_metrics(ring)["border_fraction"] == pytest.approx(1.0)
    corners = np.zeros((N, N))
    corners[[0, 0, -1, -1], [0, -1, 0, -1]] = 1.0
    assert map_metrics(corners)["border_fraction"] == pytest.approx(1.0)
    assert map_metrics(one_hot(5, 5))["border_fraction"] == 0.0


def test_halves_and_thirds_sum_to_one_on_random_maps():
    rng = np.random.default_rng(0)
    for shape in ((16, 16), (7, 9), (3, 5)):
        m = map_metrics(rng.random(shape) ** 4)
        assert m["left_fraction"] + m["right_fraction"] == pytest.approx(1.0)
        assert m["apical_fraction"] + m["middle_fraction"] + m["basal_fraction"] == pytest.approx(1.0)


def test_row_cut_by_a_third_boundary_is_split_by_area():
    # 16 rows: the apical third ends at 5.33, so row 5 gives 1/3 to apical and 2/3 to middle
    m = map_metrics(one_hot(5, 3))
    assert m["apical_fraction"] == pytest.approx(1 / 3)
    assert m["middle_fraction"] == pytest.approx(2 / 3)
    m = map_metrics(one_hot(10, 3))  # the basal third starts at 10.67
    assert m["middle_fraction"] == pytest.approx(2 / 3)
    assert m["basal_fraction"] == pytest.approx(1 / 3)


def test_odd_column_count_splits_the_middle_column_between_halves():
    m = map_metrics(one_hot(0, 2, shape=(3, 5)))
    assert m["left_fraction"] == pytest.approx(0.5)


def test_inside_ratios_use_half_coverage_and_are_nan_without_a_mask():
    g = np.zeros((N, N))
    g[4, 4] = g[4, 5] = 1.0
    cov = np.zeros((N, N))
    cov[4, 4] = 0.5  # counts as inside
    cov[4, 5] = 0.49  # does not
    m = map_metrics(g, body=cov, lungs=cov)
    assert m["inside_body_ratio"] == pytest.approx(0.5)
    assert m["inside_lungs_ratio"] == pytest.approx(0.5)
    m = map_metrics(g)
    assert math.isnan(m["inside_body_ratio"]) and math.isnan(m["inside_lungs_ratio"])


def test_map_concentrated_on_a_known_box():
    box = box_cells(2, 4, 2, 4)  # 4 cells
    g = box.copy()
    m = map_metrics(g, box=box, pointing=box > 0)
    assert m["pointing_hit"] == 1.0
    assert m["mass_in_box"] == pytest.approx(1.0)
    assert m["mass_in_box_lift"] == pytest.approx(64.0)  # 1 / (4 / 256)
    assert m["iou_top10"] == pytest.approx(4 / 26)
    assert m["auroc"] == pytest.approx(1.0)
    assert math.isnan(m["cnr"])  # constant background: no noise to compare with


def test_cnr_against_a_checkerboard_background():
    box = box_cells(2, 4, 2, 4)
    rr, cc = np.indices((N, N))
    g = np.where((rr + cc) % 2 == 0, 0.0, 2.0)  # outside: mean 1, std 1
    g[box > 0] = 5.0
    assert map_metrics(g, box=box)["cnr"] == pytest.approx(4.0)


def test_uniform_map_scores_chance_on_a_box():
    m = map_metrics(np.ones((N, N)), box=box_cells(6, 10, 6, 10))
    assert m["auroc"] == pytest.approx(0.5)  # all ties count one half
    assert m["mass_in_box_lift"] == pytest.approx(1.0)


def test_pointing_misses_when_the_peak_is_outside_the_box():
    m = map_metrics(one_hot(15, 15) + 0.01, box=box_cells(0, 3, 0, 3), pointing=box_cells(0, 3, 0, 3) > 0)
    assert m["pointing_hit"] == 0.0
    assert m["auroc"] < 0.5


def test_box_smaller_than_a_cell_still_has_cells_and_weights_mass_by_coverage():
    box = np.zeros((N, N))
    box[7, 7] = 0.3
    m = map_metrics(one_hot(7, 7), box=box, pointing=box > 0)
    assert m["pointing_hit"] == 1.0
    assert m["mass_in_box"] == pytest.approx(0.3)
    assert m["mass_in_box_lift"] == pytest.approx(0.3 / (0.3 / 256))
    assert m["auroc"] == pytest.approx(1.0)


def test_invalid_maps_are_rejected():
    with pytest.raises(ValueError):
        map_metrics(-one_hot(1, 1))
    with pytest.raises(ValueError):
        map_metrics(np.zeros((N, N)))
    with pytest.raises(ValueError):
        map_metrics(np.ones((N, N)), body=np.ones((8, 8)))


def test_js_divergence_is_zero_for_equal_maps_and_ln2_for_disjoint():
    p, q = one_hot(0, 0), one_hot(9, 9)
    assert js_divergence(p, 3 * p) == pytest.approx(0.0)
    assert js_divergence(p, q) == pytest.approx(math.log(2))
    rng = np.random.default_rng(1)
    a, b = rng.random((N, N)), rng.random((N, N))
    assert js_divergence(a, b) == pytest.approx(js_divergence(b, a))


def test_pearson_and_top_iou_of_related_maps():
    rng = np.random.default_rng(2)
    a = rng.random((N, N))
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert math.isnan(pearson(a, np.ones((N, N))))
    assert top_iou(a, 5 * a) == pytest.approx(1.0)
    left, right = np.zeros((N, N)), np.zeros((N, N))
    left[:, :4], right[:, -4:] = 1.0, 1.0
    assert top_iou(left + 1e-3 * a, right + 1e-3 * a) == 0.0


# ---- the pointing game with a tolerance in film pixels (Zhang et al. 2016) -----------------------------
def test_pointing_hit_is_the_top_cell_centre_within_the_tolerance_of_a_box():
    from medgemma_tui.analysis.grounding import boxes_to_grid, pointing_cells

    size = (1600, 1600)  # one cell is 100 x 100 film pixels; cell (0, 2) has its centre at (250, 50)
    far = [(310, 0, 100, 100)]  # 60 px right of that centre, inside cell (0, 3) only
    cover = boxes_to_grid(far, size)
    peak = one_hot(0, 2)
    assert map_metrics(peak, box=cover, pointing=pointing_cells(far, size))["pointing_hit"] == 0.0
    assert map_metrics(peak, box=cover, pointing=pointing_cells(far, size, tolerance=59.9))["pointing_hit"] == 0.0
    assert map_metrics(peak, box=cover, pointing=pointing_cells(far, size, tolerance=60))["pointing_hit"] == 1.0


def test_a_top_cell_holding_part_of_the_box_is_a_hit_whatever_the_distance_to_its_centre():
    from medgemma_tui.analysis.grounding import boxes_to_grid, pointing_cells

    size = (1600, 1600)
    near = [(290, 0, 100, 100)]  # reaches 10 px into cell (0, 2), 40 px from its centre
    cover = boxes_to_grid(near, size)
    peak = one_hot(0, 2)
    assert map_metrics(peak, box=cover, pointing=pointing_cells(near, size, tolerance=0))["pointing_hit"] == 1.0
    assert map_metrics(one_hot(0, 1), box=cover, pointing=pointing_cells(near, size))["pointing_hit"] == 0.0


def test_without_the_hit_cells_the_pointing_game_is_not_scored_by_another_rule():
    m = map_metrics(one_hot(2, 2), box=box_cells(2, 4, 2, 4))
    assert math.isnan(m["pointing_hit"]) and math.isnan(m["pointing_chance"])
    assert m["mass_in_box"] == pytest.approx(1.0)  # the other box metrics need only the coverage


def test_distance_to_a_box_corner_is_euclidean():
    from medgemma_tui.analysis.grounding import pointing_cells

    size = (160, 160)  # 10 px cells: cell (0, 0) has its centre at (5, 5)
    box = [(17, 17, 10, 10)]  # corner 12 px right and 12 px down: 16.97 px away
    assert not pointing_cells(box, size, tolerance=15)[0, 0]
    assert pointing_cells(box, size, tolerance=17)[0, 0]


def test_pointing_chance_is_the_fraction_of_hit_cells():
    from medgemma_tui.analysis.grounding import pointing_cells, pointing_chance

    size = (1600, 1600)
    box = [(400, 400, 400, 400)]  # cells 4..7 x 4..7 exactly: 16 centres inside, no others within 15 px
    assert pointing_chance(box, size) == pytest.approx(16 / 256)
    assert pointing_cells(box, size).sum() == 16
    # a wide tolerance takes in the ring of centres 50 px outside the box's edges, but not its corners
    assert pointing_chance(box, size, tolerance=50) == pytest.approx((16 + 16) / 256)
    assert pointing_chance(box, size, tolerance=50 * math.sqrt(2)) == pytest.approx(36 / 256)
    assert math.isnan(pointing_chance([], size))
    m = map_metrics(np.ones((N, N)), box=np.ones((N, N)), pointing=pointing_cells(box, size))
    assert m["pointing_chance"] == pytest.approx(16 / 256)


def test_a_non_square_film_maps_cells_through_its_own_width_and_height():
    from medgemma_tui.analysis.grounding import cell_centres, pointing_cells

    xs, ys = cell_centres((3200, 800))  # 200 px wide, 50 px tall cells
    assert (xs[0], ys[0]) == (100.0, 25.0)
    hits = pointing_cells([(0, 0, 10, 10)], (3200, 800), tolerance=15)
    assert hits.sum() == 1 and hits[0, 0]  # no centre within 15 px (the nearest is 90 px away): the cell holds it
    assert pointing_cells([(95, 20, 10, 10)], (3200, 800))[0, 0]


def test_negative_tolerance_is_rejected():
    from medgemma_tui.analysis.grounding import pointing_cells

    with pytest.raises(ValueError):
        pointing_cells([(0, 0, 1, 1)], (16, 16), tolerance=-1)


def test_zone_fractions_weight_each_cell_by_its_coverage_and_mediastinum_ratio_counts_half_covered_cells():
    from medgemma_tui.analysis.metrics import ZONE_FRACTION_NAMES, ZONES

    grid = np.zeros((N, N))
    grid[0, 0], grid[0, 1], grid[8, 8] = 0.5, 0.25, 0.25
    zones = {z: np.zeros((N, N)) for z in ZONES}
    zones["right_upper"][0, 0] = 1.0
    zones["right_upper"][0, 1] = 0.4  # cell (0, 1) is 40% right upper, 60% right middle
    zones["right_middle"][0, 1] = 0.6
    med = np.zeros((N, N))
    med[8, 8] = 0.5
    m = map_metrics(grid, mediastinum=med, zones=zones)
    assert m["right_upper_fraction"] == pytest.approx(0.5 + 0.1)
    assert m["right_middle_fraction"] == pytest.approx(0.15)
    assert m["left_lower_fraction"] == 0.0
    assert m["inside_mediastinum_ratio"] == pytest.approx(0.25)
    plain = map_metrics(grid)
    assert math.isnan(plain["inside_mediastinum_ratio"]) and all(math.isnan(plain[n]) for n in ZONE_FRACTION_NAMES)
