"""One row through ``check``, ``eval`` and the app gives the same map and metrics under a config that
changes the map view, the layers and the gating terms: the three front ends run one pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.app.session import Session
from medgemma_tui.config import load_config
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.export.reader import read_results
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.pipeline.evaluation import run_evaluation
from medgemma_tui.resources import fixtures_dir
from tests.support import demo_subset_csv, run_sample

# not the defaults: the gated view, the last layer only, a term list of one finding
CONFIG = """
[model]
name_or_path = "demo"
device = "cpu"
dtype = "fp32"
[decoding]
max_new_tokens = 3
[analysis]
map_view = "gated"
layers = [1, 2]
terms = ["pneumothorax"]
[visualization]
save_full = false
"""
COMPARED = ("entropy", "focus", "top10_mass", "gini", "inside_body_ratio", "inside_lungs_ratio", "left_fraction",
            "com_row", "com_col", "bos_share", "image_share", "text_share")


def one_row_three_ways(loaded, folder: Path, config_text: str, rows: tuple[int, ...]):
    """The first of the demo CSV's ``rows`` under the config ``config_text``, run by eval (its tree read back),
    by ``medtui check --json`` and by the app's session: (the sample, the tree's reader, check's payload, the
    app's result)."""
    import medgemma_tui.engine.loading as loading

    config_path = folder / "medtui.toml"
    config_path.write_text(config_text, encoding="utf-8")
    config = load_config(config_path)
    csv = demo_subset_csv(folder, rows)
    sample = load_dataset(csv, fixtures_dir()).samples[0]
    tree = ResultsTree(folder / "out")
    with tree.locked():
        run_evaluation(loaded, [sample], tree, config, analysis_plots=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "load_for_capture", lambda *a, **k: loaded)
        out = CliRunner().invoke(main, ["check", str(sample.image), "-q", sample.question, "--config",
                                        str(config_path), "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    session = Session.from_dataset(load_dataset(csv, fixtures_dir()), model_source=None, config=config)
    session.loaded = loaded
    return sample, read_results(folder / "out"), json.loads(out.output), session.run(sample.key)


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory, demo_model):
    sample, reader, payload, by_session = one_row_three_ways(demo_model, tmp_path_factory.mktemp("one-pipeline"),
                                                             CONFIG, (0, 1))
    row = reader.row(sample.key)
    by_eval = (reader.load_grid(sample.key), {name: float(row[name]) for name in COMPARED}, row["map_view"])
    by_check = (np.asarray(payload["grid"]), payload["metrics"], payload["map"])
    analysis = by_session.analysis
    by_app = (analysis.grid, analysis.metrics, analysis.view.spec.view)
    return by_eval, by_check, by_app


def test_check_eval_and_the_app_give_the_same_map_under_a_config(three_ways):
    (eval_grid, _, eval_view), (check_grid, _, check_map), (app_grid, _, app_view) = three_ways
    assert eval_view == app_view == "gated" and "gated" in check_map and "layer 1," in check_map
    assert "no gated term" not in check_map
    np.testing.assert_allclose(check_grid, eval_grid, atol=1e-6)
    np.testing.assert_allclose(app_grid, eval_grid, atol=1e-6)


def test_check_eval_and_the_app_give_the_same_metrics_under_a_config(three_ways):
    (_, eval_metrics, _), (_, check_metrics, _), (_, app_metrics, _) = three_ways
    for name in COMPARED:
        assert check_metrics[name] == pytest.approx(eval_metrics[name], rel=1e-5, abs=1e-7), name
        assert app_metrics[name] == pytest.approx(eval_metrics[name], rel=1e-5, abs=1e-7), name


def test_the_config_changes_the_map(three_ways, demo_model, tmp_path):
    """The agreement means something only because the configured map differs from the default one."""
    (eval_grid, _, _), _, _ = three_ways
    sample = load_dataset(demo_subset_csv(tmp_path, (0, 1)), fixtures_dir()).samples[0]
    default = run_sample(demo_model, sample, max_new_tokens=3)
    assert default.analysis.view.spec.view == "answer"
    assert np.abs(default.analysis.grid - eval_grid).max() > 1e-3


PROMPT_CONFIG = """
[model]
name_or_path = "demo"
device = "cpu"
dtype = "fp32"
[decoding]
max_new_tokens = 2
[prompt]
system = "You are an expert radiologist."
instruction = "Answer yes or no."
order = "image_first"
[visualization]
save_full = false
"""


def test_the_prompt_config_reaches_eval_check_and_the_app_and_is_recorded(tmp_path, demo_model):
    sample, reader, payload, by_session = one_row_three_ways(demo_model, tmp_path, PROMPT_CONFIG, (0,))
    meta = reader.load_meta(sample.key)
    expected = {"system": "You are an expert radiologist.", "instruction": "Answer yes or no.",
                "order": "image_first", "generic_question": "Describe the image."}
    assert {k: meta["prompt"][k] for k in expected} == expected
    assert meta["prompt"]["text"].index("expert radiologist") < meta["prompt"]["text"].index("<start_of_image>")
    assert f"{sample.question} Answer yes or no." in meta["prompt"]["text"]
    run = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert run["config"]["prompt"] == expected
    eval_ids = reader.load_record(sample.key).input_ids
    np.testing.assert_array_equal(by_session.record.input_ids, eval_ids)
    np.testing.assert_allclose(np.asarray(payload["grid"]), reader.load_grid(sample.key), atol=1e-6)
    # the default prompt is a different sequence: the settings really were applied
    default = run_sample(demo_model, sample, max_new_tokens=2)
    assert len(default.record.input_ids) != len(eval_ids) or (default.record.input_ids != eval_ids).any()
