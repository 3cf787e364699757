"""``--graphics``: the X-ray through sixel or kitty graphics, the same pixels as the half-block picture.

The protocols themselves are textual-image's; what is tested here is the choice of renderer (an option,
half-blocks by default, ``auto`` falling back with a note where the terminal answers nothing) and that
the sharp pane shows exactly the picture the half-blocks are cut from, following layer and head keys.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from textual_image.widget import SixelImage, TGPImage

from cli.main import main
from medgemma_tui.app.app import MedtuiApp
from medgemma_tui.app.graphics import HALF_BLOCKS, PICTURE_SIDE, Graphics, prepare
from medgemma_tui.app.picture import compose
from medgemma_tui.app.widgets.xray import SharpXrayView, XrayView
from medgemma_tui.config import ConfigError, load_config
from tests.support import wait_for
from tests.test_app_ui import analyses, make_session, synchronously  # noqa: F401 (fixtures)


def test_off_is_half_blocks_and_named_protocols_are_taken_as_asked():
    assert prepare("off") == Graphics(HALF_BLOCKS, None)
    assert not prepare("off").sharp
    assert prepare("sixel") == Graphics("sixel", None) and prepare("sixel").sharp
    assert prepare("kitty").renderer == "kitty"


def test_auto_without_a_terminal_falls_back_to_half_blocks_and_says_so():
    chosen = prepare("auto")  # pytest's stdout is no terminal: nothing answers the queries
    assert chosen.renderer == HALF_BLOCKS
    assert "half-blocks" in chosen.note


def test_unknown_modes_are_refused_by_prepare_the_config_and_the_cli(tmp_path):
    with pytest.raises(ValueError, match="graphics 'png'"):
        prepare("png")
    config = tmp_path / "medtui.toml"
    config.write_text('[app]\ngraphics = "png"\n')
    with pytest.raises(ConfigError, match="graphics"):
        load_config(config)
    result = CliRunner().invoke(main, ["--graphics", "png"])
    assert result.exit_code == 2 and "'png' is not one of" in result.output


def picture_of(app) -> np.ndarray:
    frame = app.current_frame()
    return compose(frame.record.xray, frame.grid, app.paint(), PICTURE_SIDE, app.picture_masks())


@pytest.mark.parametrize("renderer", ["sixel", "kitty"])
@synchronously
async def test_the_sharp_pane_shows_the_composed_picture_and_follows_the_keys(dataset, analyses, renderer):  # noqa: F811
    app = MedtuiApp(make_session(dataset, analyses), graphics=Graphics(renderer))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_frame() is not None)
        pane = app.screen.query_one(XrayView)
        assert isinstance(pane, SharpXrayView)
        widget = pane.query_one(".xray-image")
        assert type(widget) is (SixelImage if renderer == "sixel" else TGPImage)
        shown = np.asarray(widget.image)
        assert shown.shape == (PICTURE_SIDE, PICTURE_SIDE, 3)
        np.testing.assert_array_equal(shown, picture_of(app))
        await pilot.press("]")  # the next layer: another map, another picture
        await pilot.pause()
        after = np.asarray(widget.image)
        np.testing.assert_array_equal(after, picture_of(app))
        assert not np.array_equal(after, shown)
        assert widget.size.height > 0 and widget.size.width > 0


@synchronously
async def test_half_blocks_stay_the_default(dataset, analyses):  # noqa: F811
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_frame() is not None)
        assert type(app.screen.query_one(XrayView)) is XrayView
