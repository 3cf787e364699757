"""Figures: the overlay puts each cell where it lies on the film; figures and dataset plots are written whole."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medgemma_tui.analysis import strategy_accuracy
from medgemma_tui.colormaps import get_colormap
from medgemma_tui.export import dataset_figures, figures, overlay


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
    out = overlay.overlay_image(film, one_hot(*cell), "magma", alpha)
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
    out = overlay.overlay_image(film, grid, "gray", 1.0)
    assert out[5, 155].mean() > 200  # top right is bright
    assert out[155, 5].mean() < 5 and out[5, 5].mean() < 5 and out[155, 155].mean() < 5


def test_save_overlay_writes_the_films_own_resolution(tmp_path):
    film = (np.arange(240 * 180) % 251).astype(np.uint8).reshape(180, 240)
    path = overlay.save_overlay(tmp_path / "o.png", film, np.random.default_rng(0).random((16, 16)), "viridis", 0.3)
    with Image.open(path) as image:
        assert image.size == (240, 180) and image.mode == "RGB"
    assert not list(tmp_path.glob(".*.tmp"))


def phantom(seed: int, finding: str | None):
    from tests.support import builder

    return builder("phantoms").make_phantom(seed, finding, size=256)


def test_wilson_interval_known_values():
    lo, hi = strategy_accuracy.wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    lo, hi = strategy_accuracy.wilson_interval(0, 4)
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
    assert dataset_figures.plot_metric_distributions(rows, tmp_path / "m.png").exists()
    table = pd.DataFrame({"strategy": ["original", "voice_change"], "scored": [6, 4], "accuracy": [0.5, 0.75]})
    assert dataset_figures.plot_accuracy_by_strategy(table, tmp_path / "a.png").exists()
    summaries = [{"image_share": rng.random(6).tolist(), "bos_share": rng.random(6).tolist(),
                  "entropy": (5 + rng.random(6)).tolist()} for _ in range(5)]
    types = ["sliding_attention"] * 5 + ["full_attention"]
    assert dataset_figures.plot_layer_profile(summaries, tmp_path / "l.png", types, 256).exists()
    assert dataset_figures.plot_layer_profile([], tmp_path / "none.png") is None


# ---- formats and resolution -------------------------------------------------------------------------------
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<?xml"}


def small_figure():
    figure = figures.new_figure(4.0, 3.0)
    ax = figure.subplots()
    ax.imshow(np.arange(64, dtype=float).reshape(8, 8), cmap="gray")
    ax.set_title("t")
    return figure


def test_save_figure_writes_every_format_asked_for_beside_the_png(tmp_path):
    first = figures.save_figure(small_figure(), tmp_path / "k_full.png", formats=["png", "pdf", "svg"], dpi=300)
    assert first == tmp_path / "k_full.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k_full.pdf", "k_full.png", "k_full.svg"]
    for fmt, magic in MAGIC.items():
        assert (tmp_path / f"k_full.{fmt}").read_bytes().startswith(magic)
    with Image.open(first) as image:
        assert image.size == (1200, 900)  # 4 x 3 inches at 300 dpi
        assert image.mode == "RGB"
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_figure_format_and_dpi_defaults_and_names():
    assert figures.check_formats(None) == ("png",)
    assert figures.check_formats(["SVG", ".pdf", "svg"]) == ("svg", "pdf")
    assert figures.check_dpi(None) == 150
    assert figures.figure_paths(Path("v/k_full.png"), ["png", "pdf"]) == [Path("v/k_full.png"), Path("v/k_full.pdf")]


def test_a_figure_saved_at_the_default_dpi_has_its_inches_times_150_pixels(tmp_path):
    path = figures.save_figure(small_figure(), tmp_path / "d.png")
    with Image.open(path) as image:
        assert image.size == (600, 450)
    assert [p.name for p in tmp_path.iterdir()] == ["d.png"]


@pytest.mark.parametrize(("formats", "dpi"), [(["png", "eps"], 150), ([], 150), (["png"], 0), (["png"], math.nan)])
def test_unknown_formats_and_impossible_dpi_are_refused_before_any_file(tmp_path, formats, dpi):
    with pytest.raises(ValueError):
        figures.save_figure(small_figure(), tmp_path / "x.png", formats=formats, dpi=dpi)
    assert list(tmp_path.iterdir()) == []


def test_a_format_that_fails_leaves_no_file_of_that_figure(tmp_path, monkeypatch):
    figure = small_figure()
    real = figure.savefig

    def savefig(target, **kwargs):
        if kwargs.get("format") == "svg":
            raise OSError("disk full")
        return real(target, **kwargs)

    monkeypatch.setattr(figure, "savefig", savefig)
    with pytest.raises(OSError):
        figures.save_figure(figure, tmp_path / "x.png", formats=["png", "pdf", "svg"])
    assert list(tmp_path.iterdir()) == []


# ---- dataset plots: what they count ------------------------------------------------------------------------
def scored_rows(n: int, wrong: int, boxed: int) -> pd.DataFrame:
    correct = np.ones(n, dtype=bool)
    correct[:wrong] = False
    auroc = np.full(n, math.nan)
    auroc[n - boxed:] = 0.7  # box metrics only on boxed rows, the last ones
    return pd.DataFrame({"key": [f"k{i}" for i in range(n)], "error": [""] * n,
                         "correct": pd.array(correct, dtype="boolean"),
                         "entropy_norm": np.linspace(0, 1, n), "auroc": auroc})


def test_each_distribution_panel_counts_its_own_rows():
    rows = scored_rows(416, wrong=15, boxed=256)
    rows.loc[0, "error"] = "image not found"  # a failed row counts nowhere
    done, panels = dataset_figures.distribution_panels(rows)
    assert len(done) == 415
    counts = {p.name: (len(p.values), len(p.correct), len(p.wrong)) for p in panels}
    assert counts == {"entropy_norm": (415, 401, 14), "auroc": (256, 256, 0)}


def test_rows_not_scored_are_in_no_group_of_a_panel():
    rows = scored_rows(6, wrong=2, boxed=0)
    rows["correct"] = pd.array([False, True, pd.NA, True, pd.NA, True], dtype="boolean")
    _, panels = dataset_figures.distribution_panels(rows)
    assert [(len(p.values), len(p.correct), len(p.wrong)) for p in panels] == [(6, 3, 1)]


def by_strategy(kinds, scored, accuracy, raw=None):
    table = pd.DataFrame({"strategy": kinds, "rows": scored, "scored": scored, "accuracy": accuracy})
    if raw is not None:
        table["raw_strategies"] = raw
    return table


def test_the_original_is_the_first_bar_labelled_baseline_and_the_kinds_follow_best_first():
    table = by_strategy(["original", "phrasing_variation", "synonym_replacement", "voice_change"],
                        [10, 8, 6, 4], [0.8, 0.5, 1.0, 0.75])
    bars = strategy_accuracy.strategy_bars(table)
    assert list(bars["label"]) == ["original (baseline)", "synonym replacement", "voice change", "phrasing variation"]
    assert list(bars["scored"]) == [10, 6, 4, 8]


@pytest.mark.parametrize(("accuracy", "n", "low", "high"), [(1.0, 6, 0.6097, 1.0), (0.0, 11, 0.0, 0.2588),
                                                            (1.0, 31, 0.8897, 1.0), (0.0, 31, 0.0, 0.1103)])
def test_intervals_of_all_correct_and_all_wrong_groups_never_cross_the_point(accuracy, n, low, high):
    errors = strategy_accuracy.interval_errors(np.array([accuracy]), np.array([n]))
    assert (errors >= 0).all()
    assert accuracy - errors[0, 0] == pytest.approx(low, abs=1e-4)
    assert accuracy + errors[1, 0] == pytest.approx(high, abs=1e-4)


def test_accuracy_plot_draws_all_correct_and_all_wrong_groups(tmp_path):
    # n = 6 all correct and n = 11 all wrong are the sizes where the Wilson bound misses the point by 1e-16
    table = by_strategy(["original", "voice_change", "register_shift"], [6, 6, 11], [1.0, 1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = dataset_figures.plot_accuracy_by_strategy(table, tmp_path / "a.png")
    assert path == tmp_path / "a.png" and path.stat().st_size > 0


def test_variants_naming_several_kinds_are_counted_once():
    table = by_strategy(
        ["original", "phrasing_variation", "synonym_replacement", "clause_reordering", "voice_change"],
        [10, 80, 70, 60, 40], [0.9, 0.9, 0.9, 0.9, 0.9],
        raw=["", "phrasing variation (60) | phrasing variation + voice change (20)",
             "synonym replacement (40) | synonym replacement + clause reordering (30)",
             "clause reordering (30) | synonym replacement + clause reordering (30)",
             "voice change (20) | phrasing variation + voice change (20)"])
    # 80 + 70 + 60 + 40 = 250 bar rows; 20 + 30 variants are in two bars each: 200 variants, 50 in several
    assert strategy_accuracy.multi_kind_variants(table) == (50, 200)


# ---- dataset plots: degenerate inputs ------------------------------------------------------------------------
def all_nan_rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"key": [f"k{i}" for i in range(n)], "error": [""] * n,
                         "correct": pd.array([pd.NA] * n, dtype="boolean"),
                         "entropy_norm": [math.nan] * n, "auroc": [math.inf] * n})


@pytest.mark.parametrize("case", ["empty", "no columns", "all nan", "all failed"])
def test_metric_distributions_of_nothing_to_draw_is_none_and_no_file(tmp_path, case):
    rows = {"empty": pd.DataFrame({"key": [], "error": []}), "no columns": pd.DataFrame(),
            "all nan": all_nan_rows(4), "all failed": scored_rows(3, 1, 0).assign(error="boom")}[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dataset_figures.plot_metric_distributions(rows, tmp_path / "m.png") is None
    assert list(tmp_path.iterdir()) == []


def test_metric_distributions_of_one_row_is_drawn_whole(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = dataset_figures.plot_metric_distributions(scored_rows(1, 0, 1), tmp_path / "m.png")
    with Image.open(path) as image:
        image.load()
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]


@pytest.mark.parametrize("table", [
    pd.DataFrame(), by_strategy([], [], []), by_strategy(["original"], [0], [math.nan]),
    by_strategy(["voice_change"], [3], [math.nan]),
])
def test_accuracy_plot_of_nothing_scored_is_none_and_no_file(tmp_path, table):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dataset_figures.plot_accuracy_by_strategy(table, tmp_path / "a.png") is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("summaries", [
    [], [None, {}], [{"image_share": [], "entropy": []}],
    [{"image_share": [math.nan] * 4, "entropy": [math.nan] * 4}], [{"image_share": [0.5, 0.4]}],
])
def test_layer_profile_of_nothing_to_draw_is_none_and_no_file(tmp_path, summaries):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dataset_figures.plot_layer_profile(summaries, tmp_path / "l.png") is None
    assert list(tmp_path.iterdir()) == []


def test_layer_profile_of_one_layer_and_one_sample_is_drawn(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = dataset_figures.plot_layer_profile([{"image_share": [0.3], "entropy": [4.0]}], tmp_path / "l.png")
    assert path is not None and path.exists()


def test_a_plot_that_fails_raises_without_a_warning_and_leaves_no_file(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no font")

    monkeypatch.setattr(dataset_figures, "new_figure", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="no font"):
            dataset_figures.plot_metric_distributions(scored_rows(5, 1, 0), tmp_path / "m.png")
    assert list(tmp_path.iterdir()) == []


def test_every_drawing_of_the_masks_takes_its_colours_from_one_table():
    from cli.masks import OUTLINES
    from medgemma_tui.app.picture import MASK_COLOURS
    from medgemma_tui.colormaps import MASK_COLORS, hex_rgb

    assert hex_rgb("#F0E442") == (240, 228, 66)
    expected = {name: hex_rgb(color) for name, color in MASK_COLORS.items()}
    assert dict(OUTLINES) == expected == MASK_COLOURS  # the contact sheet and the app's picture
    from medgemma_tui.colormaps import OUTLINE_COLOURS

    assert {name: OUTLINE_COLOURS[name] for name in MASK_COLORS} == MASK_COLORS  # the per-row figure's outlines


def test_the_app_and_the_tree_blend_alike_and_differ_only_between_cell_centres():
    """One compositor: at each cell's centre the app's picture (cells) and the tree's overlay (bilinear)
    give the same colour; between centres only the tree's ramps."""
    from medgemma_tui.app.picture import Paint, compose
    from medgemma_tui.export.overlay import overlay_image

    side, step = 80, 5  # 16 cells of 5 px: a cell's centre falls on pixel 5 i + 2
    rng = np.random.default_rng(3)
    film = np.full((side, side), 90, dtype=np.uint8)
    grid = rng.random((16, 16))
    app = compose(film, grid, Paint(colormap="magma", alpha=0.45), side)
    tree = overlay_image(film, grid, "magma", 0.45)
    centres = np.arange(16) * step + 2
    at = np.ix_(centres, centres)
    assert np.abs(app[at].astype(int) - tree[at].astype(int)).max() <= 1
    # between centres the app keeps the cell's colour and the tree does not
    assert (app[at] == app[np.ix_(centres + 2, centres + 2)]).all()
    assert not (tree[at] == tree[np.ix_(centres + 2, centres + 2)]).all()
