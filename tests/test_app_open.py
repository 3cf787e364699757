"""``medtui open OUT``: the app on a results tree (no model), the app's export, and the launcher's hygiene."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from medgemma_tui.data.schema import load_dataset
from medgemma_tui.resources import demo_dataset_csv

KEYS = 2


@pytest.fixture(scope="module")
def results(demo_model):
    """Two demo samples answered for real, as the app's worker leaves them (shared with test_app_ui)."""
    if not demo_dataset_csv().exists():
        pytest.skip("the demo dataset CSV is not in this checkout")
    from test_app_ui import demo_results

    return load_dataset(demo_dataset_csv()), list(demo_results(demo_model)[:KEYS])


@pytest.fixture(scope="module")
def tree(results, tmp_path_factory):
    """A results tree written by the same writer ``medtui eval`` uses."""
    from medgemma_tui.config import Config
    from medgemma_tui.export.tree import ResultsTree

    out = tmp_path_factory.mktemp("tree")
    quick = Config().with_overrides({"visualization.save_full": False, "visualization.save_overlays": False})
    with ResultsTree(out).locked() as writer:
        for result in results[1]:
            writer.write_sample(result, quick)
    return out


def test_open_shows_a_tree_without_a_model(tree, results):
    from medgemma_tui.app.app import MedtuiApp
    from medgemma_tui.app.session import Session

    session = Session.from_tree(tree)
    assert not session.needs_model and [i.key for i in session.items] == [r.sample.key for r in results[1]]
    app = MedtuiApp(session)

    async def drive():
        async with app.run_test(size=(100, 30)) as pilot:
            while app.current_key is None:
                await pilot.pause(0.05)
            shown = app.current_analysis()
            fresh = results[1][0].analysis
            np.testing.assert_allclose(shown.record.image_attn, fresh.record.image_attn)
            np.testing.assert_allclose(shown.grid, fresh.grid, atol=1e-6)
            assert shown.masks is not None and shown.correct == fresh.correct
            assert app.session.item(app.current_key).truth == results[1][0].sample.answer
            await pilot.press("right_square_bracket", "full_stop")
            assert str(app.screen.query_one("#status").render()).startswith("layer 0/")
            await pilot.press("e")  # a tree is not exported again
            assert app.screen.__class__.__name__ == "InspectScreen"
            assert any("already live in the results tree" in n.message for n in app._notifications)

    asyncio.run(drive())


def test_open_reads_the_variants_from_the_tree_instead_of_asking_to_run_them(tree, results):
    from medgemma_tui.app.app import MedtuiApp
    from medgemma_tui.app.screens.variants import consistency_text
    from medgemma_tui.app.session import DONE, Session

    session = Session.from_tree(tree)
    app = MedtuiApp(session)

    async def drive():
        async with app.run_test(size=(120, 40)) as pilot:
            while app.current_key is None:
                await pilot.pause(0.05)
            await pilot.press("V")
            keys = app.screen.keys
            assert len(keys) == KEYS  # the tree's two variants of one group
            for _ in range(200):
                if all(session.entries[k].status == DONE for k in keys):
                    break
                await pilot.pause(0.05)
            await pilot.pause(0.1)
            plain = consistency_text(session, keys).plain
            assert f"/{KEYS} say" in plain and "not run" not in plain and "r runs" not in plain
            assert "mean pairwise JS divergence" in plain
            assert "r read from the tree" in str(app.screen.query_one("#variants-title").render())

    asyncio.run(drive())


def test_a_trees_rows_say_they_are_in_the_tree_not_that_they_were_not_run(tree):
    from medgemma_tui.app.screens.variants import variant_tiles
    from medgemma_tui.app.session import Session
    from medgemma_tui.app.widgets.samples import COLUMNS, matches, row_cells

    session = Session.from_tree(tree)
    keys = [item.key for item in session.items]
    statuses = [str(row_cells(session, key)[COLUMNS.index("status")]) for key in keys]
    assert statuses and set(statuses) == {"in tree"}  # none of them shown yet, every one finished
    assert not any(matches(session, key, "not run") for key in keys)
    tiles = variant_tiles(session, [item.key for item in session.group_of(keys[0])])
    assert tiles and all(tile.label.endswith(" in tree") for tile in tiles)  # the variants screen says it too


def test_export_writes_a_tree_that_open_reads_back(results, tmp_path):
    from medgemma_tui.app.session import Session, export_keys

    dataset, done = results
    session = Session.from_dataset(dataset, model_source=None)
    for result in done:
        session.finish(result.sample.key, result.analysis)
    reports = []
    written = export_keys(session, session.done(), tmp_path / "out", lambda: False,
                          lambda d, t, k: reports.append((d, t)))
    assert written == KEYS and reports[-1] == (KEYS, KEYS)
    reopened = Session.from_tree(tmp_path / "out")
    assert [i.key for i in reopened.items] == session.done()
    entry = reopened.run(reopened.items[0].key)
    np.testing.assert_allclose(entry.analysis.grid, done[0].analysis.grid, atol=1e-6)


def test_only_the_most_recent_records_stay_in_memory_and_summaries_stay_for_all(results):
    from medgemma_tui.app.session import DONE, Session

    dataset, done = results
    session = Session.from_dataset(dataset, model_source=None, keep=1)
    first, second = (r.sample.key for r in done)
    session.pinned = first  # on screen
    session.finish(first, done[0].analysis)
    session.finish(second, done[1].analysis)
    assert session.entries[first].analysis is not None  # pinned, so the other one went
    session.pinned = second
    session.finish(second, done[1].analysis)
    session.finish(first, done[0].analysis)
    assert session.entries[second].analysis is not None and session.entries[first].analysis is None
    assert session.entries[first].status == DONE
    assert session.entries[first].summary.answer_label == done[0].analysis.answer_label
    assert len(session.dataset_values("entropy")) == 2


def test_open_on_a_missing_tree_fails_in_one_line(tmp_path):
    from cli.main import main

    result = CliRunner().invoke(main, ["open", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"medtui: error: results tree not found: {tmp_path / 'nowhere'}"]


def test_the_launcher_imports_textual_only_inside_the_app_commands():
    code = "import sys, cli.main, cli.app; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_color_flag_is_applied_before_textual_starts(monkeypatch):
    from cli.app import apply_color

    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.delenv("TEXTUAL_COLOR_SYSTEM", raising=False)
    apply_color("256")
    import os

    assert os.environ["TEXTUAL_COLOR_SYSTEM"] == "256" and "COLORTERM" not in os.environ
    apply_color("truecolor")
    assert os.environ["TEXTUAL_COLOR_SYSTEM"] == "truecolor" and os.environ["COLORTERM"] == "truecolor"


def test_robustness_screen_tables_a_tree_study_with_its_flips(tree, results):
    import json

    from rich.console import Console

    from medgemma_tui.app.screens.robustness import RobustnessScreen

    key = results[1][0].sample.key
    study = {"robustness": {"question": "Is there an effusion?", "reference": {"answer_label": "yes"},
                            "flip_rate": 0.5, "mean_js": 0.01, "max_js": 0.02,
                            "perturbations": [
                                {"name": "noise", "strength": 8.0, "parameter": "sigma", "answer_label": "yes",
                                 "flip": False, "js": 0.0, "pearson": 1.0, "top_iou": 1.0},
                                {"name": "rotation", "strength": 3.0, "parameter": "degrees", "answer_label": "no",
                                 "flip": True, "js": 0.02, "pearson": 0.8, "top_iou": 0.5,
                                 "metric_deltas": {"inside_lungs_ratio": -0.1}}]}}
    (tree / "robustness").mkdir(exist_ok=True)
    (tree / "robustness" / f"{key}.json").write_text(json.dumps(study))
    console = Console(record=True, width=120)
    console.print(RobustnessScreen(key, tree).body())
    text = console.export_text()
    assert "flip rate 0.50" in text
    rotation = next(line for line in text.splitlines() if line.strip().startswith("rotation"))
    assert "FLIP" in rotation and "-0.100" in rotation
    missing = RobustnessScreen(results[1][1].sample.key, tree).body()
    assert "not available" in missing.plain


def test_a_reopened_tree_shows_the_values_its_csv_holds_and_analyses_anew_what_the_user_changes(tree, tmp_path):
    import csv
    import shutil

    from medgemma_tui.analysis.views import DECISION_INDEX
    from medgemma_tui.app.session import Session
    from medgemma_tui.config import Config
    from medgemma_tui.export.tree import ResultsTree

    copy = shutil.copytree(tree, tmp_path / "tree")
    with ResultsTree(copy).locked() as writer:  # the rows from the journal into the CSV, as a finished run leaves them
        writer.write_csv()
    path = copy / "evaluation_results.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    key, decision = rows[0]["key"], int(rows[0]["decision_index"])
    rows[0]["entropy"] = "0.125"  # the tree's value, as a run with other code wrote it
    rows[0]["top10_mass"] = ""  # a value the tree lacks
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    session = Session.from_tree(copy)
    shown = session.entries[key].analysis if session.run(key) else None
    assert shown.metrics["entropy"] == 0.125 and np.isfinite(shown.metrics["top10_mass"])
    assert session.entries[key].summary.metrics["entropy"] == 0.125  # the table's numbers too
    assert shown.decision_index == decision and shown.record.extra[DECISION_INDEX] == decision
    item = session.item(key)
    assert (shown.answer_label, shown.correct) == (item.answer_label, item.correct)
    other = Session.from_tree(copy, Config().with_overrides({"analysis.map_view": "gated"}))
    other.run(key)
    assert other.entries[key].analysis.metrics["entropy"] != 0.125  # another map: analysed now
