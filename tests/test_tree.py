"""The standard results tree: every file of every key, atomic rows, the lock, and reading it all back."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from medgemma_tui.resources import fixtures_dir
from tests.support import ANSWER_TOKENS, demo_subset_csv, eval_config, run_tree

# demo.csv data rows: two variants of one nodule film (with a box), and a question about another film
FULL_ROWS = (5, 6, 60)


@pytest.fixture(scope="module")
def full_tree(tmp_path_factory, demo_model):
    folder = tmp_path_factory.mktemp("tree")
    csv = demo_subset_csv(folder, FULL_ROWS)
    counts, samples = run_tree(demo_model, csv, folder / "out", eval_config(folder), plots=True)
    return folder / "out", counts, samples


def test_full_tree_has_every_file_for_every_key(full_tree):
    from medgemma_tui.export.tree import ResultsTree

    out, counts, samples = full_tree
    assert (counts.done, counts.failed, counts.skipped, counts.exit_code) == (3, 0, 0, 0)
    tree = ResultsTree(out)
    for sample in samples:
        key = sample.key
        for path in (tree.grid_path(key), tree.meta_path(key), tree.record_path(key), tree.body_mask_path(key),
                     tree.lungs_mask_path(key), tree.overlay_path(key), tree.full_path(key)):
            assert path.is_file() and path.stat().st_size > 0, path
    for name in ("evaluation_results.csv", "run.json", "analysis/summary.json", "analysis/hard_positives.csv",
                 "analysis/by_strategy.csv", "analysis/metric_distributions.png",
                 "analysis/accuracy_by_strategy.png", "analysis/layer_profile.png"):
        assert (out / name).is_file(), name
    assert not [p for p in out.rglob("*.tmp")]


def test_variants_do_not_overwrite_each_other(full_tree):
    from medgemma_tui.export.reader import read_results

    out, _, samples = full_tree
    reader = read_results(out)
    keys = reader.rows["key"].tolist()
    assert len(keys) == len(set(keys)) == len(samples)
    nodule = [s for s in samples if s.image_path.endswith("p0001.png")]
    assert len(nodule) == 2 and len({s.key for s in nodule}) == 2
    for sample in nodule:
        meta = reader.load_meta(sample.key)
        assert meta["question"] == sample.question and meta["key"] == sample.key
        assert reader.load_record(sample.key).question == sample.question
    assert len(list((out / "grids").glob("*_grid.npy"))) == len(samples)


def test_grid_files_are_16x16_float32_summing_to_one_and_match_the_record(full_tree):
    from medgemma_tui.analysis.views import compute_view
    from medgemma_tui.export.reader import read_results
    from medgemma_tui.pipeline.rows import RowSettings

    out, _, _ = full_tree
    reader = read_results(out)
    for key in reader.keys:
        grid = reader.load_grid(key)
        assert grid.shape == (16, 16) and grid.dtype == np.float32
        assert float(grid.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-6)
        row = reader.row(key)
        assert row["focus"] == pytest.approx(float(grid.max()), rel=1e-5)
        # the record on disk gives back the same map without the model
        again = compute_view(reader.load_record(key), RowSettings.from_config(reader.config).spec).grid
        np.testing.assert_allclose(again, grid, atol=1e-6)


def test_csv_rows_hold_inputs_answers_metrics_and_no_error(full_tree):
    from medgemma_tui.analysis.metrics import BOX_METRIC_NAMES, METRIC_NAMES
    from medgemma_tui.export.reader import read_results

    out, _, samples = full_tree
    rows = read_results(out).rows
    assert rows["row"].tolist() == [s.row for s in samples]
    for name in ("key", "question", "ground_truth", "answer", "answer_label", "correct", "map_view", "gated_count",
                 "error", *METRIC_NAMES, *BOX_METRIC_NAMES, "bos_share", "image_share", "text_share"):
        assert name in rows.columns, name
    assert (rows["error"] == "").all()
    assert set(rows["answer_label"]) <= {"yes", "no", "uncertain"}
    boxed = rows[rows["bbox"] != ""]
    assert len(boxed) == 2 and boxed["pointing_hit"].notna().all() and (boxed["box_area_fraction"] > 0).all()
    np.testing.assert_allclose(rows["left_fraction"] + rows["right_fraction"], 1.0, atol=1e-6)


def test_masks_and_overlay_have_the_films_resolution(full_tree):
    from medgemma_tui.export.reader import read_results
    from medgemma_tui.export.tree import ResultsTree

    out, _, samples = full_tree
    tree = ResultsTree(out)
    for sample in samples:
        with Image.open(sample.image) as film:
            size = film.size
        for path in (tree.body_mask_path(sample.key), tree.lungs_mask_path(sample.key)):
            with Image.open(path) as mask:
                assert mask.size == size and set(np.unique(np.asarray(mask))) <= {0, 255}
        with Image.open(tree.overlay_path(sample.key)) as overlay:
            assert overlay.size == size and overlay.mode == "RGB"
        meta = read_results(out).load_meta(sample.key)
        assert meta["image_size"] == list(size)
        assert meta["files"]["overlay"] == f"overlays/{sample.key}_overlay.png"


def test_meta_holds_tokens_gating_span_and_layer_summary(full_tree):
    from medgemma_tui.export.reader import read_results

    out, _, samples = full_tree
    reader = read_results(out)
    meta = reader.load_meta(samples[0].key)
    start, end = meta["image_token_span"]
    assert end - start == 256
    assert meta["gating"]["terms"] == ["nodule"]
    assert len(meta["tokens"]) >= meta["prompt_length"] and meta["answer_token_list"]
    assert len(meta["layer_summary"]["image_share"]) == meta["model"]["layers"]
    assert "renormalised" in meta["map"]["description"]


def test_summary_and_run_json(full_tree):
    from medgemma_tui.export.reader import read_results

    out, _, _ = full_tree
    reader = read_results(out)
    summary = reader.summary()
    assert (summary["rows"], summary["done"], summary["failed"], summary["skipped"]) == (3, 3, 0, 0)
    assert summary["accuracy"] is None or 0 <= summary["accuracy"] <= 1
    assert "entropy_norm" in summary["metrics"] and "inside_lungs_ratio" in summary["metrics"]
    # the nodule rows are focal and boxed; cardiomegaly is not boxed
    assert summary["pointing_game_n"] == 2 and summary["pointing_game"] in (0.0, 0.5, 1.0)
    assert 0 < summary["pointing_game_chance"] < 0.05
    assert summary["hard_positive_groups"] == 1
    assert summary["hard_positive_answer_consistency"] in (0.0, 1.0)
    assert summary["mean_js_variants"] >= 0
    run = reader.run
    assert run["status"] == "done" and run["started"] and run["finished"]
    assert run["model"]["name_or_path"] == "demo" and run["device"] == "cpu" and run["dtype"] == "float32"
    for name in ("python", "torch", "transformers", "medgemma_tui"):
        assert run["versions"][name]
    assert run["config"]["decoding"]["max_new_tokens"] == ANSWER_TOKENS
    assert run["timings_s"]["run"] > 0
    # analysis/ (plots included in this tree) timed, inside the run's time
    assert 0 < run["timings_s"]["analysis"] < run["timings_s"]["run"]
    assert (out / "evaluation_rows.jsonl").stat().st_size == 0  # every row is in the CSV once the run ends
    assert reader.config.visualization.colormap == "viridis"


def test_a_row_enters_the_csv_only_after_all_its_files(tmp_path, demo_model, monkeypatch):
    from medgemma_tui.config import load_config
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.export import sample_sheet
    from medgemma_tui.export.tree import ResultsTree
    from tests.support import run_sample

    sample = load_dataset(demo_subset_csv(tmp_path, (5,)), fixtures_dir())[0]
    result = run_sample(demo_model, sample, max_new_tokens=2)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sample_sheet, "save_full_figure", broken)
    tree = ResultsTree(tmp_path / "out")
    with tree.locked(), pytest.raises(OSError, match="disk full"):
        tree.write_sample(result, load_config(eval_config(tmp_path)))
    assert sample.key not in ResultsTree(tmp_path / "out").rows
    assert not list((tmp_path / "out").rglob("*.tmp"))
    monkeypatch.undo()
    with tree.locked():
        tree.write_sample(result, load_config(eval_config(tmp_path, full=False)))
    assert ResultsTree(tmp_path / "out").finished_keys() == {sample.key}


def test_the_lock_refuses_a_second_writer_and_clears_stale_temporaries(tmp_path):
    from medgemma_tui.export.tree import ResultsTree, TreeBusyError

    (tmp_path / "grids").mkdir()
    stale = tmp_path / "grids" / ".k_grid.npy.abc123.tmp"
    stale.write_bytes(b"half")
    keep = tmp_path / "grids" / "k_grid.npy"
    keep.write_bytes(b"whole")
    tree = ResultsTree(tmp_path)
    with tree.locked():
        assert not stale.exists() and keep.exists()
        with pytest.raises(TreeBusyError), ResultsTree(tmp_path).locked():
            pass
    with ResultsTree(tmp_path).locked():  # released
        pass


def test_reader_of_a_missing_tree_says_so(tmp_path):
    from medgemma_tui.export.reader import read_results

    with pytest.raises(FileNotFoundError, match="not a results tree"):
        read_results(tmp_path)


def test_check_export_writes_one_sample_as_a_tree(tmp_path, demo_model, monkeypatch):
    from click.testing import CliRunner

    import medgemma_tui.engine.loading as loading
    from cli.main import main
    from medgemma_tui.export.reader import read_results

    monkeypatch.setattr(loading, "load_for_capture", lambda *a, **k: demo_model)
    film = fixtures_dir() / "phantoms" / "p0001.png"
    out = tmp_path / "one"
    result = CliRunner().invoke(main, ["check", str(film), "-q", "Is there a nodule?", "--max-new-tokens", "3",
                                       "--json", "--export", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["export"] == str(out)
    reader = read_results(out)
    (key,) = reader.keys
    assert key.startswith("p0001_q")
    for name in ("overlays", "visualizations", "masks", "attention"):
        assert list((out / name).iterdir()), name
    assert reader.run["command"] == "medtui check" and reader.summary()["done"] == 1
    assert os.path.getsize(out / "grids" / f"{key}_grid.npy") > 0
