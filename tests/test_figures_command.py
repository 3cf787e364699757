"""``medtui figures OUT``: a tree's figures drawn again from its files alone, the row figure the same as
the one drawn from the result, captions beside the dataset figures, bad input refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.support import demo_subset_csv, eval_config, run_tree

# demo.csv data rows: two variants of one nodule film (with a box), and a question about another film
ROWS = (5, 6, 60)


@pytest.fixture(scope="module")
def tree(tmp_path_factory, demo_model):
    folder = tmp_path_factory.mktemp("figures")
    csv = demo_subset_csv(folder, ROWS)
    counts, samples = run_tree(demo_model, csv, folder / "out", eval_config(folder, tokens=12), plots=True)
    assert counts.done == len(ROWS)
    return folder / "out", samples, demo_model


def test_the_row_figure_read_from_the_tree_is_the_one_drawn_from_the_result(tree):
    from medgemma_tui.export.reader import read_results
    from medgemma_tui.export.sample_sheet import from_result, from_tree
    from tests.support import run_sample

    out, samples, model = tree
    sample = samples[0]
    result = run_sample(model, sample, max_new_tokens=12)
    reader = read_results(out)
    fresh, stored = from_result(result), from_tree(reader.paths, sample.key, reader.row(sample.key))
    assert stored.question == fresh.question and stored.answer == fresh.answer
    assert (stored.answer_label, stored.ground_truth, stored.correct) == (fresh.answer_label, fresh.ground_truth,
                                                                          fresh.correct)
    assert stored.tokens == fresh.tokens and stored.decision_index == fresh.decision_index
    assert stored.boxes == fresh.boxes and stored.boxes  # the nodule's box
    assert stored.film_size == fresh.film_size
    np.testing.assert_array_equal(stored.pixels, fresh.pixels)
    np.testing.assert_allclose(stored.grid, fresh.grid, atol=1e-6)  # the grid is stored as float32
    assert sorted(stored.masks) == sorted(fresh.masks)
    for part in stored.masks:
        assert (stored.masks[part] == fresh.masks[part]).mean() > 0.999
    for name, value in stored.metrics.items():
        assert value == pytest.approx(fresh.metrics[name])


def test_medtui_figures_redraws_every_figure_in_the_format_and_dpi_asked(tree):
    from cli.main import main
    from medgemma_tui.export.sample_sheet import SHEET_INCHES

    out, samples, _ = tree
    result = CliRunner().invoke(main, ["figures", str(out), "--format", "png,pdf", "--dpi", "120", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rows"] == len(samples) and not report["failed"]
    assert {"dataset_intervals.png", "accuracy_by_strategy.png"} <= set(report["dataset"])
    for sample in samples:
        png = out / "visualizations" / f"{sample.key}_full.png"
        with Image.open(png) as image:
            assert image.size == (round(SHEET_INCHES[0] * 120), round(SHEET_INCHES[1] * 120))
        assert png.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    assert (out / "analysis" / "dataset_intervals.pdf").exists()
    captions = (out / "analysis" / "captions.md").read_text(encoding="utf-8")
    assert "## dataset_intervals" in captions and "cluster bootstrap" in captions
    assert "## accuracy_by_strategy" in captions and "Wilson" in captions


@pytest.mark.parametrize("args, words", [
    (["--format", "gif"], "unknown figure format"),
    (["--dpi", "5"], "dpi"),
])
def test_bad_formats_and_dpi_are_refused_in_one_line(tree, args, words):
    from cli.main import main

    out, _, _ = tree
    result = CliRunner().invoke(main, ["figures", str(out), *args])
    assert result.exit_code == 2
    assert words in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_folder_that_is_not_a_tree_is_refused_in_one_line(tmp_path):
    from cli.main import main

    result = CliRunner().invoke(main, ["figures", str(tmp_path)])
    assert result.exit_code == 2 and "is not a results tree" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_medtui_figures_never_imports_the_model_stack_or_textual():
    code = ("import sys; from cli.figures import figures_command; from medgemma_tui.export import redraw, "
            "sample_sheet; print(any(m in sys.modules for m in ('torch', 'transformers', 'textual')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
