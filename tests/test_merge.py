"""`medtui merge`: trees of different models or configs are refused in one line, bad parts exit 2, and a key
that several parts hold is taken once, finished over failed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.export.reader import read_results
from tests.support import finished_run

ROWS = (0, 4)  # two films


def merge(*args: str):
    return CliRunner().invoke(main, ["merge", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def part(tmp_path_factory, demo_model) -> Path:
    return finished_run(demo_model, tmp_path_factory.mktemp("part"), ROWS)[2]


def copy_with(part: Path, folder: Path, edit=None) -> Path:
    """A copy of ``part`` whose run.json ``edit`` changed."""
    target = folder / f"copy{len(list(folder.glob('copy*')))}"
    shutil.copytree(part, target)
    if edit is not None:
        run = json.loads((target / "run.json").read_text())
        edit(run)
        (target / "run.json").write_text(json.dumps(run))
    return target


@pytest.mark.parametrize(("edit", "says"), [
    (lambda run: run["model"].update(name_or_path="google/medgemma-4b-it"), "a different model wrote it"),
    (lambda run: run.update(dtype="bfloat16"), "a different model wrote it"),
    (lambda run: run["config"]["decoding"].update(max_new_tokens=8),
     "a different config wrote it (config.decoding.max_new_tokens: 8 there, 2 in"),
    (lambda run: run["config"]["analysis"].update(map_view="rollout"),
     "a different config wrote it (config.analysis.map_view"),
])
def test_trees_of_other_models_or_configs_are_refused_in_one_line(tmp_path, part, edit, says):
    other = copy_with(part, tmp_path, edit)
    result = merge(str(part), str(other), "--into", str(tmp_path / "m"))
    assert result.exit_code == 2, result.output
    assert says in result.stderr and result.stderr.startswith("medtui: error: cannot merge ")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert not (tmp_path / "m").exists()


def test_the_device_timings_and_shard_block_do_not_stop_a_merge(tmp_path, part):
    def elsewhere(run):
        run["device"] = "cuda:0"
        run["model"]["device"] = "cuda:0"
        run["timings_s"] = {"run": 99.0}
        run["dataset"] = {"shard": {"index": 1, "count": 2}}

    other = copy_with(part, tmp_path, elsewhere)
    result = merge(str(part), str(other), "--into", str(tmp_path / "m"), "--no-plots", "--json")
    payload = json.loads(result.stdout)
    # the same rows twice: each key once, the copy's counted as duplicates
    assert (payload["rows"], payload["done"], payload["duplicates"]) == (2, 2, 2)
    assert payload["missing_shards"] == ["0/2"] and result.exit_code == 1  # the copy says it is shard 1 of 2


@pytest.mark.parametrize("case", ["missing", "not a tree", "a file", "into a part", "twice"])
def test_bad_parts_exit_2_in_one_line(tmp_path, part, case):
    into = str(tmp_path / "m")
    args = {
        "missing": [str(part), str(tmp_path / "nope"), "--into", into],
        "not a tree": [str(part), str(tmp_path), "--into", into],
        "a file": [str(part), str(part / "run.json"), "--into", into],
        "into a part": [str(part), "--into", str(part)],
        "twice": [str(part), str(part), "--into", into],
    }[case]
    says = {"missing": "results tree not found", "not a tree": "is not a results tree (no run.json)",
            "a file": "is not a folder", "into a part": "is one of the trees to merge",
            "twice": "given twice"}[case]
    result = merge(*args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_a_finished_row_wins_over_the_same_row_failed_in_another_part(tmp_path, part):
    broken = copy_with(part, tmp_path)
    table = pd.read_csv(broken / "evaluation_results.csv", keep_default_na=False, dtype=str)
    table.loc[0, "error"] = "image: broken"  # answers are sentences with commas: edit the CSV as a CSV
    table.to_csv(broken / "evaluation_results.csv", index=False)
    out = tmp_path / "m"
    result = merge(str(broken), str(part), "--into", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    reader = read_results(out)
    assert (reader.rows["error"] == "").all() and len(reader.keys) == len(ROWS)
    # the failed row alone: merged as failed, the merge exits 1
    alone = merge(str(broken), "--into", str(tmp_path / "alone"), "--no-plots", "--json")
    assert alone.exit_code == 1 and json.loads(alone.stdout)["failed"] == 1
