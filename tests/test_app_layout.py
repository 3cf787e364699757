"""The app at 80x24 and 160x48: every screen's text whole (wrapped, scrolled or left out, never cut),
the samples table's columns whole, tiles that use the space.

The screens are read as the terminal would show them (the compositor's full frame), so a line cut by a
widget's edge or with an ellipsis is seen as the user sees it.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from test_app_ui import demo_results, make_session, synchronously
from textual.widgets import DataTable

from medgemma_tui.app.app import MedtuiApp
from medgemma_tui.app.screens.robustness import study_view
from medgemma_tui.app.widgets.metrics import headline_table
from medgemma_tui.app.widgets.samples import fitting_columns
from medgemma_tui.app.widgets.tiles import TileGrid, fitted_side
from tests.support import wait_for

SIZES = ((80, 24), (160, 48))


@pytest.fixture(scope="module")
def analyses(demo_model, dataset):
    return {r.sample.key: r.analysis for r in demo_results(demo_model)}


def screen_lines(app) -> list[str]:
    """The screen's text as the terminal shows it, one string per row."""
    update = app.screen._compositor.render_full_update()
    return ["".join(strip.text for strip in line) for line in update.strips]


def printed(renderable, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


# ---- the samples table -------------------------------------------------------------------------------
def test_the_table_keeps_the_first_columns_that_fit_whole_and_the_key_always():
    widths = {"key": 32, "answer": 6, "ok": 2, "status": 7, "truth": 5, "var": 3, "study": 8, "strategy": 29}
    # each column takes its width and one blank cell either side
    assert fitting_columns(widths, 77) == ("key", "answer", "ok", "status", "truth", "var", "study")
    assert fitting_columns(widths, 55) == ("key", "answer", "ok", "status")  # 34 + 8 + 4 + 9
    assert fitting_columns(widths, 54) == ("key", "answer", "ok")
    assert fitting_columns(widths, 20) == ("key",)


@synchronously
async def test_at_80x24_and_160x48_the_samples_table_shows_its_columns_whole_with_the_answer_and_its_verdict(
        dataset, analyses):
    for width, height in SIZES:
        app = MedtuiApp(make_session(dataset, analyses))
        async with app.run_test(size=(width, height)) as pilot:
            await wait_for(pilot, lambda app=app: app.current_key is not None)
            if not app.screen.samples_shown():
                await pilot.press("s")
            await pilot.pause(0.3)
            table = app.screen.query_one(DataTable)
            names = [str(column.label) for column in table.ordered_columns]
            # (at 160 the status too where the answers are short; these are "uncertain" from 6 tokens)
            wanted = {"key", "answer", "ok"} | ({"status", "truth"} if width < 140 else set())
            assert wanted <= set(names), (width, names)
            # nothing runs past the table's right edge (the columns were cut there: "key ... va")
            assert table.virtual_size.width <= table.scrollable_content_region.width, (width, names)
            header = next(line for line in screen_lines(app) if re.search(r"\bkey\b", line) and "answer" in line)
            assert all(re.search(rf"(^|\s){re.escape(name)}(\s|$)", header) for name in names), header
            first = app.session.items[0].key
            assert any(first in line for line in screen_lines(app))  # a key is never cut either


@synchronously
async def test_at_80x24_the_table_takes_the_screen_and_enter_goes_back_to_the_picture_with_its_room(
        dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        xray = app.screen.query_one("#xray")
        alone = xray.region
        await pilot.press("s")
        await pilot.pause(0.2)
        assert app.screen.query_one("#samples").region.width >= 76
        second = app.session.items[1].key
        await pilot.press("down", "enter")
        await pilot.pause(0.3)
        assert app.current_key == second and not app.screen.samples_shown()
        assert app.focused is xray and xray.region == alone


# ---- every screen, nothing cut -------------------------------------------------------------------------
# each screen's way in from the inspector, and the way back
BACK = ("escape",)
SCREENS = (("main", (), ()), ("samples", ("s",), ("s",)), ("filter", ("slash", "v", "2"), ("escape", "s")),
           ("variants", ("V",), BACK), ("robustness", ("R",), BACK), ("methods", ("M",), BACK),
           ("gallery", ("G",), BACK), ("dataset", ("D",), BACK), ("help", ("question_mark",), BACK),
           ("export", ("e",), BACK))


@pytest.mark.parametrize(("width", "height"), SIZES)
@synchronously
async def test_no_screen_cuts_a_line_at_80x24_or_160x48_and_the_tiles_grow_with_the_space(
        dataset, analyses, width, height):
    sides = {}
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(width, height)) as pilot:
        await wait_for(pilot, lambda app=app: app.current_key is not None)
        inspector = app.screen
        for name, way_in, way_back in SCREENS:
            await pilot.press(*way_in)
            await pilot.pause(0.3)
            lines = screen_lines(app)
            cut = [line.rstrip() for line in lines if "…" in line]
            assert not cut, (width, name, cut)
            if name == "main":  # the colour bar ends with its numbers or the colormap's whole name
                colormap = app.state.colormap
                bar = next(line for line in lines if " max" in line).split("▏")[0].rstrip()
                assert bar.endswith(")") or bar.endswith(f"  {colormap}"), (width, bar)
                assert any(app.current_key in line for line in lines), (width, "the key")
            if name in ("methods", "gallery"):
                grid = app.screen.query_one(TileGrid)
                sides[width, name] = grid.side
                assert grid.per_row * grid.tile_width <= grid.size.width
            await pilot.press(*way_back)
            await pilot.pause(0.1)
            assert app.screen is inspector and not (name != "main" and inspector.has_class("samples-shown")
                                                    and width < 140), (width, name)
    # the tiles' smallest side is 16 columns; at 160 x 48 the demo's 4 views and 16 heads take more
    assert sides[width, "methods"] >= 16 and sides[width, "gallery"] >= 16
    if width >= 160:
        assert sides[width, "methods"] >= 32 and sides[width, "gallery"] >= 20, sides


def test_the_dataset_figures_fit_80_columns_with_the_chance_on_its_own_row():
    summary = {"accuracy": 0.964, "scored": 416, "pointing_game": 0.5, "pointing_game_chance": 0.0156,
               "pointing_game_n": 28, "pointing_game_mass_in_box_lift": 12.25,
               "hard_positive_answer_consistency": 0.99, "hard_positive_groups": 104,
               "intervals": {"accuracy": [0.916, 1.0]}, "interval_studies": {"accuracy": 104, "pointing_game": 1}}
    narrow = [line.rstrip() for line in printed(headline_table(summary, 78), 78)]
    assert not any("…" in line for line in narrow), narrow
    assert any(re.fullmatch(r"\s+chance \(same rule\)\s+0\.016", line) for line in narrow), narrow
    assert any("hard-positive consistency" in line and "0.990" in line for line in narrow), narrow
    wide = printed(headline_table(summary, 156), 156)
    pointing = next(line for line in wide if line.startswith("pointing game  "))
    assert "chance 0.016 (same rule)" in pointing and len(wide) == len(narrow) - 1


def test_the_robustness_table_wraps_the_strength_at_80_columns_and_cuts_no_name():
    names = ("noise", "contrast", "brightness", "rotation", "pixels", "pad")
    parameters = ("sigma (0-255)", "factor about the mean", "offset (0-255)", "degrees counter-clockwise",
                  "pixels changed inside the body", "preprocessing to square")
    study = {"question": "Is there a pneumothorax?", "reference": {"answer_label": "no"},
             "perturbations": [{"name": n, "strength": 1.5, "parameter": p, "answer_label": "no", "js": 0.0123,
                                "pearson": 0.97, "top_iou": 0.7, "metric_deltas": {"inside_lungs_ratio": -0.025}}
                               for n, p in zip(names, parameters, strict=True)]}
    lines = printed(study_view(study), 76)
    assert not any("…" in line for line in lines) and all(len(line) <= 76 for line in lines), lines
    assert all(any(re.match(rf"{name}\s", line) for line in lines) for name in names)
    text = " ".join(" ".join(lines).split())
    assert "0.0123" in text and "-0.025" in text


# ---- tiles ---------------------------------------------------------------------------------------------
def test_tiles_take_the_largest_side_at_which_all_are_in_view():
    # a tile of side s is s+2 columns by s/2+3 rows
    assert fitted_side(16, 160, 46, limit=8) == 24  # 6 a row (26 columns each), 3 rows of 15 = 45 rows
    assert fitted_side(4, 160, 46) == 40  # the largest: 3 a row, 2 rows of 23
    # where not all fit even at 16: the side that fills the width with as many a row as 16 gives
    assert fitted_side(16, 80, 20, limit=8) == 18  # 4 a row of 20 columns
    assert fitted_side(272, 160, 44, limit=8) == 18  # 34 layers x 8 heads: a layer a row, 20 columns each


def test_each_help_note_is_one_line_the_screen_wraps_at_its_width():
    from medgemma_tui.app.screens.help import NOTES

    # a line break inside a note was wrapped again at 80 columns into ragged half-lines
    assert all(line.endswith(".") for line in NOTES.splitlines()), NOTES.splitlines()
