"""`medtui eval --shard I/N`: shards split by film, cover every row once, follow Slurm's array variables,
and merged back (`medtui merge`) give the tree one run gives."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.pipeline.shards import (
    Shard,
    ShardError,
    assign_films,
    parse_shard,
    shard_from_env,
    shard_info,
    shard_samples,
)
from medgemma_tui.resources import demo_dataset_csv, fixtures_dir
from tests.support import demo_subset_csv, eval_config, run_tree
from tests.test_eval import same_csv

# five films: p0000 (rows 0, 1: a hard-positive pair), p0001 (4, 5), p0002 (16), p0003 (24, 25), p0004 (32)
MERGE_ROWS = (0, 1, 4, 5, 16, 24, 25, 32)


def demo_samples():
    return list(load_dataset(demo_dataset_csv(), fixtures_dir()).samples)


def tree_files(root: Path) -> set[str]:
    """Every file of the rows (run.json, analysis/ and the lock aside), relative to the tree."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
            and p.parts[len(root.parts)] != "analysis" and p.name not in ("run.json", ".medtui.lock")}


# ---- reading a shard ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [("0/1", (0, 1)), ("2/4", (2, 4)), (" 3 / 4 ", (3, 4))])
def test_shard_is_read_as_index_of_count_from_zero(text, expected):
    shard = parse_shard(text)
    assert (shard.index, shard.count) == expected


@pytest.mark.parametrize(("text", "says"), [
    ("3/2", "must be 0..1"), ("2/2", "must be 0..1"), ("-1/2", "must be 0..1"), ("0/0", "at least 1"),
    ("abc", "wants I/N"), ("1", "wants I/N"), ("1/2/3", "wants I/N"),
])
def test_a_bad_shard_is_one_clear_error(text, says):
    with pytest.raises(ShardError, match=says):
        parse_shard(text)


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, (3, 4)),
    # --array=1-4
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, (0, 4)),
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, (3, 4)),
    # --array=0-6:2 (0, 2, 4, 6)
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0",
      "SLURM_ARRAY_TASK_STEP": "2"}, (2, 4)),
])
def test_slurm_array_variables_name_the_shard(env, expected):
    shard = shard_from_env(env)
    assert (None if shard is None else (shard.index, shard.count)) == expected
    if shard is not None:
        assert shard.source == "slurm"


@pytest.mark.parametrize("env", [
    {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"},  # --array=1,3,7
    {"SLURM_ARRAY_TASK_ID": "3"},
    {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"},
])
def test_slurm_variables_that_name_no_shard_ask_for_the_flag(env):
    with pytest.raises(ShardError, match="--shard I/N"):
        shard_from_env(env)


# ---- the split -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 2, 3, 7, 56, 60])
def test_shards_split_by_film_and_cover_every_row_exactly_once(count):
    samples = demo_samples()
    shards = [shard_samples(samples, Shard(i, count)) for i in range(count)]
    keys = [s.key for shard in shards for s in shard]
    assert sorted(keys) == sorted(s.key for s in samples) and len(keys) == len(set(keys)) == 416
    owners: dict[str, set[int]] = {}
    for index, shard in enumerate(shards):
        for sample in shard:
            owners.setdefault(sample.image_path, set()).add(index)
        assert [s.row for s in shard] == sorted(s.row for s in shard)  # dataset order within a shard
    assert len(owners) == 56 and all(len(o) == 1 for o in owners.values())
    # balanced by rows: the demo's films hold 4, 8 or 12 rows, so shards differ by at most one film
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 12
    if count == 2:
        assert sizes == [208, 208]
    if count > 56:
        assert sizes.count(0) == count - 56


def test_the_split_depends_on_the_rows_not_their_order():
    samples = demo_samples()
    shuffled = samples[:]
    random.Random(0).shuffle(shuffled)
    assert assign_films(samples, 5) == assign_films(shuffled, 5)


# ---- shards + merge = one run ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_run(tmp_path_factory, demo_model):
    folder = tmp_path_factory.mktemp("one-run")
    csv = demo_subset_csv(folder, MERGE_ROWS)
    config = eval_config(folder, full=False, tokens=2, plots=True)
    counts, samples = run_tree(demo_model, csv, folder / "whole", config, plots=True)
    assert counts.done == len(MERGE_ROWS)
    return csv, config, folder / "whole", samples


def run_shards(demo_model, csv: Path, config: Path, folder: Path, samples, count: int) -> list[Path]:
    """Each shard run into its own tree, as the tasks of a job array would, with its shard in run.json."""
    from medgemma_tui.config import load_config
    from medgemma_tui.export.tree import ResultsTree
    from medgemma_tui.pipeline.evaluation import run_evaluation

    outs = []
    for index in range(count):
        shard = Shard(index, count)
        chosen = shard_samples(samples, shard)
        tree = ResultsTree(folder / f"shard{index}")
        with tree.locked():
            counts = run_evaluation(demo_model, chosen, tree, load_config(config), analysis_plots=False,
                                    run_info={"dataset": {"csv": str(csv),
                                                          "shard": shard_info(samples, chosen, shard)}})
        assert counts.done == len(chosen)
        outs.append(tree.root)
    return outs


def test_shards_merged_give_the_csv_grids_and_files_of_one_run(tmp_path, demo_model, one_run):
    csv, config, whole, samples = one_run
    parts = run_shards(demo_model, csv, config, tmp_path, samples, 2)
    sizes = [json.loads((p / "run.json").read_text())["dataset"]["shard"]["rows"] for p in parts]
    assert sizes == [4, 4]  # films of 2, 2, 1, 2 and 1 rows, balanced
    merged = tmp_path / "merged"
    result = CliRunner().invoke(main, ["merge", *map(str, parts), "--into", str(merged), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["rows"], payload["done"], payload["failed"], payload["duplicates"]) == (8, 8, 0, 0)
    assert payload["missing_shards"] == []

    same_csv(merged / "evaluation_results.csv", whole / "evaluation_results.csv")
    for sample in samples:
        np.testing.assert_array_equal(np.load(merged / "grids" / f"{sample.key}_grid.npy"),
                                      np.load(whole / "grids" / f"{sample.key}_grid.npy"))
    assert tree_files(merged) == tree_files(whole)
    assert not list(merged.rglob("*.tmp"))

    mine = json.loads((merged / "analysis" / "summary.json").read_text())
    theirs = json.loads((whole / "analysis" / "summary.json").read_text())
    for name in ("rows", "done", "accuracy", "scored", "hard_positive_groups"):
        assert mine.get(name) == theirs.get(name), name
    assert theirs["hard_positive_groups"] >= 1
    for name in ("hard_positive_answer_consistency", "mean_js_variants"):
        assert mine[name] == pytest.approx(theirs[name], rel=1e-6, abs=1e-9), name
    for name, value in theirs["metrics"].items():
        assert mine["metrics"][name] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), name
    assert (merged / "analysis" / "hard_positives.csv").read_text() == \
        (whole / "analysis" / "hard_positives.csv").read_text()

    run = json.loads((merged / "run.json").read_text())
    assert run["command"] == "medtui merge" and run["status"] == "done"
    assert [p["path"] for p in run["parts"]] == [str(p) for p in parts]
    assert sorted(p["shard"]["index"] for p in run["parts"]) == [0, 1]
    assert run["config"] == json.loads((whole / "run.json").read_text())["config"]
    assert "shard" not in run["dataset"]


def test_a_missing_shard_is_named_and_the_merge_exits_1(tmp_path, demo_model, one_run):
    csv, config, _, samples = one_run
    parts = run_shards(demo_model, csv, config, tmp_path, samples, 3)
    result = CliRunner().invoke(main, ["merge", str(parts[0]), str(parts[2]), "--into", str(tmp_path / "m"),
                                       "--no-plots"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "shards missing: 1/3" in result.stderr


def test_eval_reads_the_slurm_array_task_and_records_its_shard(tmp_path, demo_model, monkeypatch):
    import medgemma_tui.engine.loading as loading

    monkeypatch.setattr(loading, "load_for_capture", lambda *a, **k: demo_model)
    csv = demo_subset_csv(tmp_path, MERGE_ROWS)
    samples = list(load_dataset(csv, fixtures_dir()).samples)
    expected = {s.key for s in shard_samples(samples, Shard(1, 2))}
    out = tmp_path / "out"
    env = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1"}
    result = CliRunner(env=env).invoke(main, ["eval", "--export", str(out), "--data", str(csv), "--images",
                                              str(fixtures_dir()), "--config",
                                              str(eval_config(tmp_path, full=False, tokens=2)), "--json"],
                                       catch_exceptions=False)
    assert result.exit_code == 0, result.output
    from medgemma_tui.export.reader import read_results

    reader = read_results(out)
    assert set(reader.rows["key"]) == expected
    shard = reader.run["dataset"]["shard"]
    assert (shard["index"], shard["count"], shard["source"], shard["rows"], shard["of_rows"]) == \
        (1, 2, "slurm", len(expected), len(MERGE_ROWS))


@pytest.mark.parametrize(("args", "says"), [
    (["--shard", "3/2"], "must be 0..1"),
    (["--shard", "half"], "wants I/N"),
    (["--workers", "2"], "give --ray"),
])
def test_bad_shard_flags_exit_2_in_one_line_before_anything_runs(tmp_path, args, says):
    result = CliRunner().invoke(main, ["eval", "--export", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert says in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
