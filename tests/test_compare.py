"""``medtui compare A B --into C``: rows joined on key (the unpaired listed), each row's shift against reference
formulas (scipy), paired study-bootstrap intervals, and the tree of its own kind that ``medtui open C`` reads."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.analysis.comparison import flip_counts, pair_rows, paired_differences, row_shifts, top_shift
from medgemma_tui.resources import fixtures_dir
from tests.support import demo_subset_csv, eval_config, make_lora_adapter

# a "no" study, two boxed nodule rows, an unboxed nodule row, two boxed mass rows and a consolidation row:
# four studies, three of them boxed (the pointing game's paired interval needs two)
ROWS = (0, 4, 5, 8, 16, 17, 24)


def _map(peak: tuple[int, int], rng, size: int = 16) -> np.ndarray:
    grid = rng.random((size, size)) * 0.1
    grid[peak] = 5.0
    return grid / grid.sum()


def test_top_shift_in_cells_and_film_pixels():
    rng = np.random.default_rng(0)
    a, b = _map((2, 3), rng), _map((5, 7), rng)
    cells, px = top_shift(a, b, (320, 160))  # cells 20 px wide, 10 px high
    assert cells == pytest.approx(5.0)
    assert px == pytest.approx(math.hypot(4 * 20, 3 * 10))


def _rows(keys, labels, extra=None):
    frame = pd.DataFrame({
        "key": keys, "study_id": [k.split("_")[0] for k in keys],
        "image_path": [f"{k.split('_')[0]}.png" for k in keys],
        "question": "Is there a nodule?", "baseline_question": "", "finding": "nodule", "bbox": "1,1,4,4",
        "ground_truth": "yes", "answer": [f"Based on the image, the answer is {x}." for x in labels],
        "answer_label": labels, "correct": [x == "yes" for x in labels], "image_width": 64, "image_height": 64,
        "error": "",
    })
    for name, values in (extra or {}).items():
        frame[name] = values
    return frame


def test_shifts_match_scipy_and_flips_are_counted_by_direction():
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    keys = ["s1_a", "s2_b", "s3_c"]
    maps_a = {k: _map((i, i), rng) for i, k in enumerate(keys)}
    maps_b = {k: _map((i + 2, i), rng) for i, k in enumerate(keys)}
    a = _rows(keys, ["yes", "yes", "no"])
    b = _rows(keys, ["no", "yes", "uncertain"])
    both, unpaired = pair_rows(a, b)
    assert unpaired.empty
    table = row_shifts(both, maps_a.__getitem__, maps_b.__getitem__).set_index("key")
    for k in keys:
        assert table.loc[k, "js"] == pytest.approx(jensenshannon(maps_a[k].ravel(), maps_b[k].ravel()) ** 2, abs=1e-12)
        assert table.loc[k, "spearman"] == pytest.approx(spearmanr(maps_a[k].ravel(), maps_b[k].ravel())[0])
        assert table.loc[k, "top_shift_cells"] == pytest.approx(2.0)
    assert table.loc["s1_a", "flip"] == "yes->no" and table.loc["s2_b", "flip"] == ""
    counts = flip_counts(table.reset_index())
    assert counts["flipped"] == 2
    assert counts["by_direction"] == {"no->uncertain": 1, "yes->no": 1}
    assert counts["by_finding"] == {"nodule": {"yes->no": 1, "no->uncertain": 1}}


def test_rows_in_one_tree_only_are_listed_with_the_reason():
    a = _rows(["s1_a", "s2_b", "s3_c", "s5_e"], ["yes"] * 4)
    b = _rows(["s1_a", "s2_b", "s4_d"], ["yes"] * 3)
    b.loc[1, "error"] = "image: file not found"
    a.loc[3, "error"] = "image: file not found"
    both, unpaired = pair_rows(a, b)
    assert both["key"].tolist() == ["s1_a"]
    reasons = dict(zip(unpaired["key"], unpaired["reason"], strict=True))
    assert reasons == {"s2_b": "failed in b", "s3_c": "not in b", "s4_d": "not in a", "s5_e": "failed in a, not in b"}
    assert dict(zip(unpaired["key"], unpaired["in"], strict=True))["s4_d"] == "b"


def test_a_constant_shift_has_a_zero_width_paired_interval():
    """The same studies are resampled on both sides: B = A + 2 in every row leaves no spread in B - A, although
    A itself varies widely (an unpaired bootstrap would give an interval about as wide as A's)."""
    keys = [f"s{i}_r{j}" for i in range(6) for j in range(2)]
    lift = np.linspace(1.0, 60.0, len(keys))
    a = _rows(keys, ["yes"] * len(keys), {"mass_in_box_lift": lift, "pointing_hit": 1.0})
    b = _rows(keys, ["yes"] * len(keys), {"mass_in_box_lift": lift + 2.0, "pointing_hit": 1.0})
    figures = paired_differences(pair_rows(a, b)[0])
    assert figures["mass_in_box_lift"]["difference"] == pytest.approx(2.0)
    assert figures["mass_in_box_lift"]["interval"] == pytest.approx([2.0, 2.0])
    assert figures["mass_in_box_lift"]["studies"] == 6


def test_accuracy_difference_counts_the_flipped_rows_and_one_study_has_no_interval():
    keys = ["s1_a", "s1_b", "s1_c", "s1_d"]
    a = _rows(keys, ["yes", "yes", "yes", "yes"])
    b = _rows(keys, ["yes", "no", "no", "uncertain"])
    accuracy = paired_differences(pair_rows(a, b)[0])["accuracy"]
    assert (accuracy["a"], accuracy["b"], accuracy["difference"]) == (1.0, 0.25, -0.75)
    assert accuracy["interval"] is None and accuracy["studies"] == 1


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """The demo without and with a LoRA adapter that changes it, over the same rows (B one row short)."""
    folder = tmp_path_factory.mktemp("compare")
    adapter = make_lora_adapter(folder / "adapter")
    csv = demo_subset_csv(folder, ROWS)
    config = eval_config(folder, full=False, tokens=12)
    out = {}
    for name, extra in (("a", []), ("b", ["--adapter", str(adapter), "--limit", str(len(ROWS) - 1)])):
        out[name] = folder / name
        result = CliRunner().invoke(main, ["eval", "--export", str(out[name]), "--data", str(csv), "--images",
                                           str(fixtures_dir()), "--config", str(config), "--heads", *extra],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return folder, out["a"], out["b"]


def test_compare_writes_rows_heads_intervals_and_figures(trees):
    folder, a, b = trees
    c = folder / "c"
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--into", str(c)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(c / "rows.csv", keep_default_na=False)
    assert len(rows) == len(ROWS) - 1
    assert {"flipped", "flip", "js", "spearman", "top_shift_cells", "top_shift_px", "lungs_shift",
            "mediastinum_shift", "box_shift", "pointing_a", "pointing_b"} <= set(rows.columns)
    assert rows["js"].max() > 1e-4  # the adapter moved the maps
    assert list(rows["js"]) == sorted(rows["js"], reverse=True)
    for _, row in rows.iterrows():  # each JS from the two trees' own grids
        from scipy.spatial.distance import jensenshannon

        ga, gb = np.load(a / "grids" / f"{row['key']}_grid.npy"), np.load(b / "grids" / f"{row['key']}_grid.npy")
        assert row["js"] == pytest.approx(jensenshannon(ga.ravel(), gb.ravel()) ** 2, abs=1e-6)
    unpaired = pd.read_csv(c / "unpaired.csv")
    assert unpaired["reason"].tolist() == ["not in b"]
    header = json.loads((c / "comparison.json").read_text())
    assert "model.adapter.sha256" in header["differences"] and header["differences"]["model.adapter.sha256"][0] is None
    pointing = header["dataset"]["pointing_game"]
    assert pointing["studies"] == 2 and pointing["interval"] is not None
    assert set(header["dataset"]) == {"accuracy", "pointing_game", "mass_in_box_lift",
                                      "hard_positive_answer_consistency"}
    heads = pd.read_csv(c / "heads.csv")
    assert {"pointing_game_a", "pointing_game_b", "pointing_game_change"} <= set(heads.columns)
    assert (c / "figures" / "most_moved.png").stat().st_size > 0 and (c / "figures" / "shifts.png").exists()
    assert header["plot_errors"] == {}


def test_compare_json_prints_the_dataset_figures(trees):
    folder, a, b = trees
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--into", str(folder / "cj"), "--json",
                                       "--no-plots"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["paired_rows"] == len(ROWS) - 1 and payload["unpaired_rows"] == 1
    assert "accuracy" in payload["dataset"] and "by_direction" in payload["flips"]


def test_compare_refuses_a_folder_that_is_not_a_tree(tmp_path, trees):
    _, a, _ = trees
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["compare", str(a), str(tmp_path / "empty"), "--into", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "is not a results tree" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_open_shows_the_comparison_most_moved_first_with_both_maps(trees):
    import asyncio

    from medgemma_tui.app.comparison import ComparisonApp
    from medgemma_tui.export.comparison_tree import ComparisonReader, is_comparison

    folder, a, b = trees
    c = folder / "c_open"
    CliRunner().invoke(main, ["compare", str(a), str(b), "--into", str(c), "--no-plots"], catch_exceptions=False)
    assert is_comparison(c) and not is_comparison(a)
    reader = ComparisonReader(c)
    order = reader.rows["key"].tolist()
    app = ComparisonApp(reader)

    async def drive():
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            assert app.current_key == order[0]
            maps = str(app.query_one("#maps").render())
            assert "B - A" in maps
            await pilot.press("j")
            await pilot.pause()
            assert app.current_key == order[1]
            answers = str(app.query_one("#answers").render())
            row = reader.rows.iloc[1]
            assert row["answer_a"] in answers and row["answer_b"] in answers
            header = str(app.query_one("#header").render())
            assert "model.adapter" in header and "accuracy" in header

    asyncio.run(drive())


def _hand_tree(root, grid):
    (root / "grids").mkdir(parents=True)
    _rows(["s1_a", "s2_b"], ["yes", "no"]).to_csv(root / "evaluation_results.csv", index=False)
    for key in ("s1_a", "s2_b"):
        np.save(root / "grids" / f"{key}_grid.npy", grid)
    return root


def test_maps_of_different_grids_are_one_line_not_a_traceback(tmp_path):
    a = _hand_tree(tmp_path / "a", np.full((16, 16), 1 / 256, np.float32))
    b = _hand_tree(tmp_path / "b", np.full((8, 8), 1 / 64, np.float32))
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--into", str(tmp_path / "c"), "--no-plots"])
    assert result.exit_code == 2
    assert "maps differ in shape" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_compare_reads_trees_without_run_json_or_box_columns(tmp_path):
    """Trees from other code versions: what a tree lacks is empty in the comparison, not an error."""
    a = _hand_tree(tmp_path / "a", np.full((16, 16), 1 / 256, np.float32))
    peaked = np.full((16, 16), 0.5 / 255, np.float32)
    peaked[3, 4] = 0.5
    b = _hand_tree(tmp_path / "b", peaked)
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--into", str(tmp_path / "c"), "--no-plots"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "c" / "rows.csv").set_index("key")
    assert rows.loc["s1_a", "top_b"] == "3,4" and rows.loc["s2_b", "top_shift_cells"] == pytest.approx(5.0)
    assert math.isnan(rows.loc["s1_a", "lungs_shift"])


def test_the_open_command_launches_the_comparison_app_on_a_comparison(trees, monkeypatch):
    from medgemma_tui.app.comparison import ComparisonApp

    folder, a, b = trees
    c = folder / "c_cli_open"
    CliRunner().invoke(main, ["compare", str(a), str(b), "--into", str(c), "--no-plots"], catch_exceptions=False)
    shown = []
    monkeypatch.setattr(ComparisonApp, "run", lambda self, *args, **kwargs: shown.append(self.reader.root))
    result = CliRunner().invoke(main, ["open", str(c)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert shown == [c]
