"""`medtui eval`: resume, failures recorded row by row, interrupted runs that resume to the same CSV, exit codes."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.export.reader import read_results
from medgemma_tui.resources import fixtures_dir
from tests.support import demo_subset_csv, eval_config, finished_run, run_tree

KILL_ROWS = (0, 5, 20, 41)


def invoke(*args: str):
    return CliRunner().invoke(main, ["eval", *args], catch_exceptions=False)


@pytest.fixture
def demo_loader(demo_model, monkeypatch):
    """The CLI's model load returns the session's demo model (the load is tested elsewhere)."""
    import medgemma_tui.engine.loading as loading

    monkeypatch.setattr(loading, "load_for_capture", lambda *a, **k: demo_model)
    return demo_model


def same_csv(a: Path, b: Path) -> None:
    """Equal text cells, and numbers equal to float precision, row by row."""
    from medgemma_tui.export.columns import TEXT_COLUMNS, read_rows

    left, right = read_rows(a), read_rows(b)
    assert list(left.columns) == list(right.columns)
    assert left["key"].tolist() == right["key"].tolist()
    for name in left.columns:
        if name in TEXT_COLUMNS or name == "correct":
            assert left[name].astype(str).tolist() == right[name].astype(str).tolist(), name
        else:
            np.testing.assert_allclose(left[name].astype(float), right[name].astype(float), rtol=1e-4, atol=1e-6,
                                       equal_nan=True, err_msg=name)


# ---- resume ------------------------------------------------------------------------------------------
def test_resume_skips_finished_keys_and_says_how_many(tmp_path, demo_model):
    csv = demo_subset_csv(tmp_path, (0, 5))
    config = eval_config(tmp_path, full=False, tokens=2)
    first, _ = run_tree(demo_model, csv, tmp_path / "out", config, limit=1)
    assert (first.done, first.skipped) == (1, 0)
    events = []
    second, samples = run_tree(demo_model, csv, tmp_path / "out", config, progress=events.append)
    assert (second.done, second.skipped, second.failed, second.exit_code) == (1, 1, 0, 0)
    assert events[0].event == "start" and events[0].skipped == 1 and events[0].total == 1
    assert [e.key for e in events if e.event == "sample"] == [samples[1].key]
    assert events[-1].event == "finish"
    third, _ = run_tree(demo_model, csv, tmp_path / "out", config, limit=1, resume=False)
    assert (third.done, third.skipped) == (1, 0)


def test_cuda_out_of_memory_is_recorded_the_cache_freed_and_the_run_goes_on(tmp_path, demo_model, monkeypatch):
    import torch

    import medgemma_tui.pipeline.batch as batch

    real = batch.answer_row
    freed = []

    def flaky(loaded, sample, *args, **kwargs):
        if sample.row == 0:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(loaded, sample, *args, **kwargs)

    monkeypatch.setattr(batch, "answer_row", flaky)
    monkeypatch.setattr(batch, "free_accelerator_memory", lambda: freed.append(1))
    counts, samples = run_tree(demo_model, demo_subset_csv(tmp_path, (1, 5)), tmp_path / "out",
                               eval_config(tmp_path, full=False, tokens=2))
    assert (counts.done, counts.failed, counts.exit_code) == (1, 1, 1) and freed == [1]
    from medgemma_tui.export.reader import read_results

    rows = read_results(tmp_path / "out").rows.set_index("key")
    assert rows.at[samples[0].key, "error"].startswith("CUDA out of memory")
    assert rows.at[samples[1].key, "error"] == ""
    # the failed row is tried again by the next run
    monkeypatch.setattr(batch, "answer_row", real)
    again, _ = run_tree(demo_model, demo_subset_csv(tmp_path, (1, 5)), tmp_path / "out",
                        eval_config(tmp_path, full=False, tokens=2))
    assert (again.done, again.skipped, again.retried, again.failed) == (1, 1, 1, 0)


def test_views_that_need_the_model_again_get_their_maps(tmp_path, demo_model):
    from medgemma_tui.export.reader import read_results

    config = eval_config(tmp_path, full=False, tokens=2, extra="[analysis]\nmap_view = \"relative\"\n")
    counts, samples = run_tree(demo_model, demo_subset_csv(tmp_path, (5,)), tmp_path / "out", config)
    assert (counts.done, counts.failed) == (1, 0), counts.failures
    reader = read_results(tmp_path / "out")
    assert reader.row(samples[0].key)["map_view"] == "relative"
    assert "generic" in reader.load_record(samples[0].key).maps
    assert reader.load_meta(samples[0].key)["map"]["description"].startswith("relative")


# ---- bad inputs --------------------------------------------------------------------------------------
def test_missing_and_corrupt_images_are_recorded_and_the_others_done(tmp_path, demo_loader):
    images = tmp_path / "images"
    (images / "phantoms").mkdir(parents=True)
    shutil.copy(fixtures_dir() / "phantoms" / "p0001.png", images / "phantoms" / "p0001.png")
    (images / "phantoms" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)

    def edit(lines):
        return [lines[0], lines[1].replace("p0000.png", "nope.png"), lines[2],
                lines[3].replace("p0001.png", "corrupt.png")]

    csv = demo_subset_csv(tmp_path, (0, 5, 6), edit=edit)
    out = tmp_path / "out"
    result = invoke("--export", str(out), "--data", str(csv), "--images", str(images),
                    "--config", str(eval_config(tmp_path, full=False, tokens=2)), "--json")
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    assert (payload["done"], payload["failed"], payload["skipped"]) == (1, 2, 0)
    assert payload["out"] == str(out) and payload["wall_s"] > 0 and "accuracy" in payload
    from medgemma_tui.export.reader import read_results

    rows = read_results(out).rows
    errors = dict(zip(rows["image_path"], rows["error"], strict=True))
    assert "nope.png" in errors["phantoms/nope.png"] and "not found" in errors["phantoms/nope.png"]
    assert errors["phantoms/corrupt.png"].startswith("image:")
    assert errors["phantoms/p0001.png"] == ""
    assert "FAILED" in result.stderr  # plain progress lines when stderr is not a terminal


def test_missing_column_exits_2_naming_the_column_and_its_aliases(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("study_id,image_path,question\n1,phantoms/p0000.png,Is there a mass?\n")
    result = invoke("--export", str(tmp_path / "out"), "--data", str(csv))
    assert result.exit_code == 2
    assert "'answer'" in result.stderr and "ground_truth, label, correct_answer" in result.stderr
    assert result.stdout == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[decoding]\nmax_new_tokenz = 3\n", "decoding.max_new_tokenz"),
        ("[decoding\n", "invalid TOML"),
        ("[analysis]\nmap_view = \"nonsense\"\n", "map_view"),
        ("[visualization]\ncolormap = \"rainbowz\"\n", "rainbowz"),
    ],
)
def test_config_errors_exit_2_before_anything_runs(tmp_path, text, expected):
    config = tmp_path / "c.toml"
    config.write_text(text)
    result = invoke("--export", str(tmp_path / "out"), "--config", str(config))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_missing_config_file_exits_2(tmp_path):
    result = invoke("--export", str(tmp_path / "out"), "--config", str(tmp_path / "none.toml"))
    assert result.exit_code == 2 and "config file not found" in result.stderr


def test_robustness_and_faithfulness_write_their_files_and_summaries(tmp_path, demo_loader, monkeypatch):
    out = tmp_path / "out"
    result = invoke("--export", str(out), "--limit", "1", "--robustness", "--faithfulness", "--json")
    assert result.exit_code == 0, result.output
    key = read_results(out).keys[0]
    study = json.loads((out / "robustness" / f"{key}.json").read_text())
    assert "perturbations" in json.dumps(study) and "faithfulness" in json.dumps(study)
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert "robustness" in json.dumps(summary) and "faithfulness" in json.dumps(summary)
    # analysis/ again: each row's study file read once, the faithfulness figure drawn from that one read
    from medgemma_tui.export.summary import write_analysis
    from medgemma_tui.export.tree import ResultsTree

    reads = []
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: reads.append(self.name) or real(self, *a, **k))
    again = write_analysis(ResultsTree(out), plots=True)
    assert reads.count(f"{key}.json") == 1
    assert "faithfulness.png" in again["plots"] and "robustness" in json.dumps(again)


# ---- interrupted runs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory, demo_model):
    """An uninterrupted run of the rows the kill tests use."""
    csv, config, out, _ = finished_run(demo_model, tmp_path_factory.mktemp("reference"), KILL_ROWS)
    return csv, config, out / "evaluation_results.csv"


def recorded_rows(out: Path) -> int:
    """Rows the tree holds so far: its CSV's and its journal's (a running tree records rows in the journal)."""
    from medgemma_tui.export.tree import ResultsTree

    try:
        return len(ResultsTree(out).rows)
    except (FileNotFoundError, ValueError):
        return 0


def start_eval(out: Path, csv: Path, config: Path) -> subprocess.Popen:
    code = "import sys; from cli.main import main; sys.argv[0] = 'medtui'; main()"
    args = [sys.executable, "-c", code, "eval", "--export", str(out), "--data", str(csv),
            "--images", str(fixtures_dir()), "--config", str(config), "--json"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})


def kill_after_first_row(process: subprocess.Popen, out: Path, sig: int) -> tuple[int, str, str]:
    deadline = time.monotonic() + 90
    while recorded_rows(out) < 1:
        if process.poll() is not None or time.monotonic() > deadline:
            stdout, stderr = process.communicate()
            pytest.fail(f"eval ended before its first row (rc {process.returncode}): {stderr[-2000:]}")
        time.sleep(0.02)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_run_resumes_to_the_same_csv_as_an_uninterrupted_one(tmp_path, demo_model, reference, sig):
    from medgemma_tui.export.reader import read_results
    from medgemma_tui.export.tree import ResultsTree

    csv, config, expected = reference
    out = tmp_path / "out"
    rc, stdout, stderr = kill_after_first_row(start_eval(out, csv, config), out, sig)
    kept = recorded_rows(out)
    assert 1 <= kept < len(KILL_ROWS), "the kill came too late to interrupt anything"
    if sig == signal.SIGINT:
        assert rc == 130, stderr
        assert json.loads(stdout)["interrupted"] is True and "interrupted" in stderr
        assert read_results(out).run["status"] == "interrupted"
    else:
        assert rc == -signal.SIGKILL
    # every row in the CSV is a whole sample
    tree = ResultsTree(out)
    assert tree.finished_keys() == set(tree.rows)

    counts, _ = run_tree(demo_model, csv, out, config)
    assert counts.skipped == kept and counts.done == len(KILL_ROWS) - kept and counts.failed == 0
    same_csv(out / "evaluation_results.csv", expected)
    assert not list(out.rglob("*.tmp"))
    summary = read_results(out).summary()
    assert summary["done"] == len(KILL_ROWS) and not math.isnan(summary["metrics"]["entropy"])


def test_a_finished_tree_is_resummarised_without_loading_the_model(tmp_path, reference, monkeypatch):
    import medgemma_tui.engine.loading as loading

    csv, config, expected = reference
    out = tmp_path / "out"
    shutil.copytree(expected.parent, out)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded with nothing to run")

    monkeypatch.setattr(loading, "load_for_capture", no_model)
    result = invoke("--export", str(out), "--data", str(csv), "--images", str(fixtures_dir()), "--config",
                    str(config), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["done"], payload["skipped"], payload["failed"]) == (0, len(KILL_ROWS), 0)
    assert "0 to run" in result.stderr
    same_csv(out / "evaluation_results.csv", expected)
