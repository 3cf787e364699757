"""The head gallery sorted by the dataset's heads table: from a tree's analysis/heads.csv, or from the
boxed rows run in the session; ``d`` switches between it and this row's own box. Scores are injected
into the session's summaries (as finished rows leave them), so no model runs for them."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from medgemma_tui.app.session import DONE
from medgemma_tui.export.method_tables import heads_table, read_head_table
from tests.support import wait_for
from tests.test_app_ui import analyses, make_session, synchronously  # noqa: F401 (fixtures)

ROWS = 8  # the first eight demo rows: two studies of four


def scores(row: int, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Head (1, 3) points into the box on every row, head (0, 6) on the even rows, no other head ever."""
    pointing = np.zeros(shape)
    lift = np.ones(shape)
    pointing[1, 3], lift[1, 3] = 1.0, 5.0
    pointing[0, 6], lift[0, 6] = float(row % 2 == 0), 3.0
    return {"pointing_hit": pointing, "mass_in_box_lift": lift}


def session_with_head_scores(dataset, analyses):  # noqa: F811 (fixtures)
    session = make_session(dataset, analyses)
    first = session.entries[session.items[0].key].summary
    shape = first.grid.shape[:0] + (first.heads["pointing_hit"].shape if first.heads else None or (2, 8))
    for row, item in enumerate(session.items[:ROWS]):
        entry = session.entries[item.key]
        entry.status, entry.summary = DONE, replace(first, heads=scores(row, shape))
    return session, shape


def test_the_dataset_table_of_the_rows_run_ranks_the_head_that_always_points_first(dataset, analyses):  # noqa: F811
    from medgemma_tui.app.screens.gallery import dataset_heads

    session, shape = session_with_head_scores(dataset, analyses)
    heads = dataset_heads(session, shape)
    assert heads.rows == ROWS and heads.source == "the rows run here"
    assert heads.order()[:2] == [(1, 3), (0, 6)]
    assert heads.grids["pointing_game"][0, 6] == pytest.approx(0.5)
    assert heads.grids["mass_in_box_lift"][1, 3] == pytest.approx(5.0)
    low, high = heads.grids["pointing_game_low"][0, 6], heads.grids["pointing_game_high"][0, 6]
    assert 0 <= low <= 0.5 <= high <= 1
    assert dataset_heads(session, (3, 8)) is None  # another model's heads: nothing at hand


def test_a_trees_heads_csv_is_read_back_as_the_table_it_was_written_from(tmp_path):
    from medgemma_tui.app.screens.gallery import dataset_heads

    shape = (2, 8)
    table = heads_table(["a", "b", "c"], np.stack([scores(r, shape)["pointing_hit"] for r in range(3)]),
                        np.stack([scores(r, shape)["mass_in_box_lift"] for r in range(3)]), n_boot=200)
    table.to_csv(tmp_path / "heads.csv", index=False)
    grids = read_head_table(tmp_path / "heads.csv", shape)
    for _, row in table.iterrows():
        layer, head = int(row["layer"]), int(row["head"])
        assert grids["pointing_game"][layer, head] == pytest.approx(row["pointing_game"])
        assert grids["rank"][layer, head] == row["rank"]
    assert read_head_table(tmp_path / "heads.csv", (34, 8)) is None
    tree_session = SimpleNamespace(tree=SimpleNamespace(paths=SimpleNamespace(analysis_dir=tmp_path)), items=[],
                                   entries={})
    heads = dataset_heads(tree_session, shape)
    assert heads.source == "analysis/heads.csv" and heads.rows == 3
    assert heads.grids["pointing_game"][0, 6] == pytest.approx(2 / 3)


@synchronously
async def test_d_sorts_the_gallery_by_the_dataset_and_back_and_says_so_when_there_is_no_table(dataset, analyses):  # noqa: F811
    from medgemma_tui.app.app import MedtuiApp
    from medgemma_tui.app.screens.gallery import DATASET_SORT, ROW_SORT, SORTS

    session, _ = session_with_head_scores(dataset, analyses)
    app = MedtuiApp(session)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        await pilot.press("G", "d")
        gallery = app.screen
        tiles = gallery.query_one("#gallery").tiles
        assert gallery.sort == DATASET_SORT
        assert [t.key for t in tiles[:2]] == [(1, 3), (0, 6)] and tiles[0].note == "pg 1.00 lift 5.0"
        title = str(gallery.query_one("#gallery-title").render())
        assert f"{ROWS} boxed rows" in title and "L1 h3 pointing 1.00" in title
        await pilot.press("d")
        assert gallery.sort == ROW_SORT
        await pilot.press("s")  # from this row's box, the next order is the dataset's
        assert gallery.sort == DATASET_SORT
        await pilot.press("escape")
        for item in session.items:  # no boxed row has run: no table at hand
            entry = session.entries[item.key]
            if entry.summary is not None:
                entry.summary = replace(entry.summary, heads=None)
        await pilot.press("G", "d")
        assert app.screen is not gallery and app.screen.sort == 0
        await pilot.press(*["s"] * (len(SORTS) - 1))
        assert app.screen.sort == 0  # every other order once, then back to layer order
