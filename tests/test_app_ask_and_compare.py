"""The original system's app tabs in medtui's app, at 80x24 and 160x48: a question of one's own about the film on
screen (typed in, answered by the model in a worker, shown as a new row, kept in an export), and two prompts
about the same film side by side (both maps, their difference map and JS, both answers)."""

from __future__ import annotations

import asyncio
import csv

import numpy as np
import pytest

from medgemma_tui.app.app import MedtuiApp
from medgemma_tui.app.session import DONE, Session, export_keys
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.resources import demo_dataset_csv
from tests.support import wait_for

QUESTION = "Is there a pleural effusion in the left lung?"


@pytest.fixture
def live_session(demo_model):
    """The demo dataset's first film, live: the session's model is the demo model (loaded once per test run)."""
    if not demo_dataset_csv().exists():
        pytest.skip("the demo dataset CSV is not in this checkout")
    dataset = load_dataset(demo_dataset_csv())
    session = Session.from_dataset(dataset, model_source=None)
    session.items = session.items[:3]
    session.loaded = demo_model
    return session


def test_asking_adds_a_row_on_the_same_film_after_the_row_and_never_reuses_a_key(live_session):
    first = live_session.items[0]
    one = live_session.ask(first.key, "  Is the heart   enlarged? ")
    two = live_session.ask(first.key, "Is there a pneumothorax?")
    keys = [item.key for item in live_session.items]
    assert keys[:3] == [first.key, one, two] and len(set(keys)) == len(keys)
    asked = live_session.item(one)
    assert asked.question == "Is the heart enlarged?" and asked.sample.image == first.sample.image
    assert asked.truth == "" and not asked.sample.is_scored and asked.sample.bbox == ()
    with pytest.raises(ValueError, match="empty"):
        live_session.ask(first.key, "   ")


async def ask_with_k(pilot, app, film_key: str) -> None:
    """Ask QUESTION about the film on screen through `k`, and wait until the app shows its new row."""
    await pilot.press("k")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "AskScreen")
    await pilot.press(*QUESTION)
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.current_key not in (None, film_key))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_k_asks_about_the_film_on_screen_and_the_answer_is_a_new_row_kept_in_an_export(live_session, size,
                                                                                       tmp_path):
    async def body():
        app = MedtuiApp(live_session)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.current_key is not None)
            film_key = app.current_key
            await ask_with_k(pilot, app, film_key)
            key = app.current_key
            assert key.startswith(film_key + "_ask")
            entry = live_session.entries[key]
            assert entry.status == DONE and entry.analysis.record.question == QUESTION
            assert entry.analysis.record.answer.strip()  # the model's own answer, whatever its length
            status = str(app.screen.query_one("#status").render())
            assert status.startswith("layer ")
            return key

    key = asyncio.run(body())
    out = tmp_path / "tree"
    written = export_keys(live_session, [key], out, lambda: False, lambda *a: None)
    assert written == 1
    rows = list(csv.DictReader((out / "evaluation_results.csv").open(encoding="utf-8")))
    assert [(r["key"], r["question"], r["ground_truth"]) for r in rows] == [(key, QUESTION, "")]


def shown_text(static) -> str:
    """What a Static shows, as plain text (a rich Group included)."""
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(static.content)
    return console.export_text()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_C_shows_two_prompts_of_one_film_their_difference_map_js_and_answers(live_session, size):
    from medgemma_tui.analysis.metrics import js_divergence
    from medgemma_tui.app.screens.compare import CompareScreen, same_film_keys
    from medgemma_tui.app.screens.variants import js_text
    from medgemma_tui.app.widgets.tiles import TileGrid

    async def body():
        app = MedtuiApp(live_session)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.current_key is not None)
            film_key = app.current_key
            await pilot.press("C")  # nothing else about this film has run yet: it says how to get one
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
            assert "k to ask one" in shown_text(app.screen.query_one("#compare-text"))
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen))
            await ask_with_k(pilot, app, film_key)
            asked = app.current_key
            assert same_film_keys(live_session, asked) == [film_key]
            await pilot.press("C")
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
            await pilot.pause(0.2)
            tiles = app.screen.query_one(TileGrid).tiles
            grid_a = live_session.entries[asked].summary.grid
            grid_b = live_session.entries[film_key].summary.grid
            assert [t.key for t in tiles] == ["A", "B", "A-B"]
            np.testing.assert_allclose(tiles[2].grid, np.asarray(grid_a, float) - np.asarray(grid_b, float))
            text = " ".join(shown_text(app.screen.query_one("#compare-text")).split())
            js = js_divergence(np.asarray(grid_a, float), np.asarray(grid_b, float))
            assert f"JS divergence {js_text(js)} nats" in text
            assert QUESTION[:20] in text and live_session.item(film_key).question[:20] in text
            assert live_session.entries[asked].analysis.record.answer.strip()[:15] in text
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen))

    asyncio.run(body())
