"""Bootstrap intervals that resample studies: known cases."""

import math

import numpy as np
import pytest

from medgemma_tui.analysis.intervals import bootstrap_ci, paired_difference_ci, ratio_ci


def test_a_constant_column_has_a_zero_width_interval():
    assert bootstrap_ci(np.full(40, 0.75)) == (0.75, 0.75)
    assert bootstrap_ci(np.full(40, 1.0), groups=np.repeat(np.arange(8), 5)) == (1.0, 1.0)


def test_nan_rows_are_left_out_and_nothing_usable_gives_nan():
    values = np.array([1.0, np.nan, 1.0, 1.0, np.nan])
    assert bootstrap_ci(values, groups=["a", "a", "b", "c", "d"]) == (1.0, 1.0)
    low, high = bootstrap_ci([np.nan, np.nan])
    assert math.isnan(low) and math.isnan(high)
    low, high = bootstrap_ci([])
    assert math.isnan(low) and math.isnan(high)


def test_the_interval_is_seeded():
    rng = np.random.default_rng(3)
    values = rng.random(60)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)


def test_the_mean_of_a_normal_sample_is_covered_about_as_often_as_the_level_says():
    rng = np.random.default_rng(0)
    trials, covered = 120, 0
    for t in range(trials):
        low, high = bootstrap_ci(rng.normal(0.0, 1.0, 60), n=400, seed=t)
        covered += low <= 0.0 <= high
    # the percentile bootstrap of a mean undercovers slightly at n = 60; binomial sd at 120 trials ~ 0.02
    assert 0.87 <= covered / trials <= 1.0


def test_the_width_matches_the_normal_theory_interval_on_a_large_sample():
    rng = np.random.default_rng(1)
    values = rng.normal(5.0, 2.0, 900)
    low, high = bootstrap_ci(values, n=2000)
    expected = 2 * 1.959964 * values.std(ddof=1) / math.sqrt(len(values))
    assert high - low == pytest.approx(expected, rel=0.1)
    assert low < values.mean() < high


def test_resampling_by_study_widens_the_interval_when_rows_of_a_study_are_identical():
    rng = np.random.default_rng(2)
    per_study = rng.random(20)
    rows = np.repeat(per_study, 10)  # ten identical rows per study (paraphrases answered alike)
    studies = np.repeat(np.arange(20), 10)
    by_row = bootstrap_ci(rows)
    by_study = bootstrap_ci(rows, groups=studies)
    assert (by_study[1] - by_study[0]) > 2.0 * (by_row[1] - by_row[0])  # about sqrt(10) = 3.2
    # with equal-sized studies the cluster bootstrap of the mean is the bootstrap of the study means
    assert by_study == pytest.approx(bootstrap_ci(per_study))


def test_ratio_of_proportional_columns_is_exact():
    rng = np.random.default_rng(4)
    chance = rng.random(50) * 0.1 + 0.01
    assert ratio_ci(3.0 * chance, chance, groups=np.arange(50) // 5) == pytest.approx((3.0, 3.0))


def test_a_paired_difference_of_a_column_with_itself_is_zero_and_a_shift_is_exact():
    rng = np.random.default_rng(5)
    before = rng.random(30)
    assert paired_difference_ci(before, before) == (0.0, 0.0)
    assert paired_difference_ci(before + 0.2, before) == pytest.approx((0.2, 0.2))
    # unpaired, the same shift would carry the sampling spread of both columns
    low, high = bootstrap_ci(before + 0.2)
    assert high - low > 0.05


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], groups=["a"])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], level=1.5)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], n=0)


def test_one_study_gives_no_interval_when_the_study_bootstrap_asks_for_two():
    values = np.array([1.0, 0.0, 1.0, 1.0])
    assert bootstrap_ci(values, groups=["a"] * 4) == (0.75, 0.75)  # the default: every replicate is the one study
    low, high = bootstrap_ci(values, groups=["a"] * 4, min_groups=2)
    assert math.isnan(low) and math.isnan(high)
    low, high = ratio_ci(values, values, groups=["a"] * 4, min_groups=2)
    assert math.isnan(low) and math.isnan(high)
    # two studies, means 0.5 and 1.0: the replicates are 0.5, 0.75 and 1.0
    assert bootstrap_ci(values, groups=["a", "a", "b", "b"], min_groups=2) == (0.5, 1.0)


def test_the_dataset_screens_values_line_up_on_their_decimal_points():
    import io

    from rich.console import Console

    from medgemma_tui.app.widgets.metrics import headline_table

    summary = {"accuracy": 0.964, "scored": 416, "pointing_game": 0.5, "pointing_game_chance": 0.06,
               "pointing_game_n": 28, "pointing_game_mass_in_box_lift": 12.25,
               "hard_positive_answer_consistency": 0.99, "hard_positive_groups": 104,
               "intervals": {"accuracy": [0.916, 1.0], "pointing_game": [0.3, 0.7], "mass_in_box_lift": [9.5, 15.0]},
               "interval_studies": {"accuracy": 104, "pointing_game": 1}}
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(headline_table(summary))
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    points = {line.split("  ")[0]: line.index(".", len(line.split("  ")[0])) for line in lines}
    assert len(lines) == 5 and len(set(points.values())) == 1, lines  # 0.964, 8.333 and 12.250 alike
