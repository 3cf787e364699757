"""The per-row figure drawn with Pillow: its layout against matplotlib's, and pixels where they must be."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from medgemma_tui.colormaps import get_colormap
from medgemma_tui.export import figures, sample_sheet
from tests.test_figures import one_hot, phantom, stand_in_analysis


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def stand_in_result(grid: np.ndarray, boxes=None):
    from medgemma_tui.analysis.masks import AnatomyMasks

    p = phantom(3, "nodule")
    masks = AnatomyMasks(body=p.masks["body"], lung_right=p.masks["lung_right"], lung_left=p.masks["lung_left"])
    return SimpleNamespace(film=SimpleNamespace(pixels=p.image), analysis=stand_in_analysis(masks, grid),
                           sample=SimpleNamespace(bbox=tuple(boxes if boxes is not None else (p.box,)),
                                                  answer="yes", key="s1_d_v0"))


@pytest.mark.parametrize("dpi", [100, 150])
def test_panels_sit_where_matplotlibs_gridspec_puts_them(dpi):
    from matplotlib.figure import Figure
    from matplotlib.gridspec import GridSpec

    size = sample_sheet.sheet_size(dpi)
    figure = Figure(figsize=figures.SHEET_INCHES, dpi=dpi)
    bottoms, tops, lefts, rights = GridSpec(2, 3, **figures.SHEET_GRID).get_grid_positions(figure)
    boxes = sample_sheet.panel_boxes(size)
    for r in range(2):
        for c in range(3):
            box = boxes[r][c]
            assert box.x0 == pytest.approx(lefts[c] * size[0], abs=1)
            assert box.x1 == pytest.approx(rights[c] * size[0], abs=1)
            assert box.y0 == pytest.approx((1 - tops[r]) * size[1], abs=1)
            assert box.y1 == pytest.approx((1 - bottoms[r]) * size[1], abs=1)


def test_fit_keeps_the_aspect_and_centres():
    box = sample_sheet.Box(0, 0, 400, 200).fit(1.0)
    assert (box.x0, box.y0, box.x1, box.y1) == (100, 0, 300, 200)
    tall = sample_sheet.Box(10, 10, 110, 410).fit(2.0)
    assert (tall.width, tall.height) == (100, 50) and tall.y0 == 10 + 175


def test_the_hottest_cell_has_the_colour_maps_top_colour_at_its_place():
    sheet = sample_sheet.Sheet((800, 600), 100)
    cell = sample_sheet.Box(100, 100, 700, 550)
    grid = one_hot(4, 11) * 0.9 + 0.1 / 256
    box = sample_sheet.grid_panel(sheet, cell, grid, "magma", "t", "l")
    pixels = np.asarray(sheet.image)
    x = round(box.x0 + (11 + 0.5) * box.width / 16)
    y = round(box.y0 + (4 + 0.5) * box.height / 16)
    top = get_colormap("magma").table[255]
    assert tuple(pixels[y, x]) == tuple(top)
    # a cell away from it has the colour of its own value, a small fraction of the top
    x2 = round(box.x0 + 0.5 * box.width / 16)
    assert tuple(pixels[y, x2]) == tuple(get_colormap("magma")(grid[4, 0] / grid.max()))


def test_the_ground_truth_box_is_outlined_on_the_film_in_its_colour():
    film = np.full((200, 400), 90, dtype=np.uint8)  # wide, so the picture is fitted by its width
    sheet = sample_sheet.Sheet((1000, 800), 100)
    box = sample_sheet.Box(0, 0, 400, 400).fit(2.0)  # 400 x 200: one film pixel a canvas pixel
    sheet.picture(box, np.repeat(sample_sheet.gray_film(film, box)[..., None], 3, axis=-1))
    sheet.boxes(box, [(100, 50, 60, 40)], 1.0, 1.0)
    pixels = np.asarray(sheet.image)
    blue = hex_rgb(figures.BOX_COLOR)
    assert tuple(pixels[box.y0 + 50, box.x0 + 130]) == blue  # on the top edge
    assert tuple(pixels[box.y0 + 70, box.x0 + 100]) == blue  # on the left edge
    assert tuple(pixels[box.y0 + 70, box.x0 + 130]) == (90, 90, 90)  # inside: the film


def test_lungs_are_tinted_and_the_body_outlined():
    gray = np.full((100, 100), 100, dtype=np.uint8)
    body = np.zeros((100, 100), dtype=bool)
    body[10:90, 10:90] = True
    right = np.zeros_like(body)
    right[30:70, 20:45] = True
    masks = SimpleNamespace(body=body, lung_right=right, lung_left=np.zeros_like(body))
    out = sample_sheet.tinted_masks(gray, masks, sample_sheet.Box(0, 0, 100, 100), line_px=3)
    expected = np.round(0.62 * 100 + 0.38 * np.array(hex_rgb(figures.LUNG_RIGHT_COLOR)))
    assert np.allclose(out[50, 30], expected, atol=1)
    assert tuple(out[50, 80]) == (100, 100, 100)  # body, not lung, away from the edge
    assert tuple(out[50, 10]) == hex_rgb(figures.BODY_COLOR)  # the body's edge
    assert tuple(out[50, 2]) == (100, 100, 100)


@pytest.mark.parametrize(("value", "step", "text"), [(0.025, 0.005, "0.025"), (0.0075, 0.0025, "0.0075"),
                                                      (40.0, 10.0, "40"), (0.5, 0.1, "0.5")])
def test_colour_bar_tick_labels_carry_the_digits_of_their_step(value, step, text):
    assert sample_sheet.tick_text(value, step) == text


def test_bar_ticks_are_round_and_inside_the_range():
    ticks = sample_sheet.bar_ticks(0.043)
    assert ticks[0] == 0.0 and ticks[-1] <= 0.043 and len(ticks) >= 4
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])


def test_save_full_figure_writes_the_png_with_pillow_and_vectors_with_matplotlib(tmp_path):
    result = stand_in_result(one_hot(4, 3))
    first = sample_sheet.save_full_figure(tmp_path / "s1_d_v0_full.png", result, formats=("png", "pdf"), dpi=100)
    assert first.name == "s1_d_v0_full.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1_d_v0_full.pdf", "s1_d_v0_full.png"]
    with Image.open(first) as image:
        assert image.size == (1550, 1020)  # the figure's 15.5 x 10.2 inches at 100 dpi
        assert image.mode == "RGB"
        assert np.asarray(image.convert("L")).std() > 10
    assert (tmp_path / "s1_d_v0_full.pdf").read_bytes()[:5] == b"%PDF-"


def test_a_failing_vector_format_leaves_no_png_either(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(figures, "save_figure", broken)
    with pytest.raises(OSError):
        sample_sheet.save_full_figure(tmp_path / "k_full.png", stand_in_result(one_hot(1, 1)), formats=("png", "svg"))
    assert list(tmp_path.iterdir()) == []
