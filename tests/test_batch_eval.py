"""``eval`` with batches: the same results tree as one row at a time."""

from __future__ import annotations

import csv
import json

import numpy as np
from click.testing import CliRunner

from tests.support import demo_subset_csv, eval_config, run_tree

ROWS = (0, 1, 2, 4, 5)  # three rows of one film (a batch of 2, then 1), two of the next (a batch of 2)


def tree_rows(out) -> dict[str, dict[str, str]]:
    with open(out / "evaluation_results.csv", newline="", encoding="utf-8") as handle:
        return {row["key"]: row for row in csv.DictReader(handle)}


def test_eval_with_batches_of_two_writes_the_tree_of_batch_1(demo_model, tmp_path, monkeypatch):
    data = demo_subset_csv(tmp_path, ROWS)
    trees, generates = {}, []
    real = demo_model.model.generate
    monkeypatch.setattr(demo_model.model, "generate", lambda *a, **k: generates.append(1) or real(*a, **k))
    for size in (1, 2):
        folder = tmp_path / f"batch{size}"
        folder.mkdir()
        config = eval_config(folder, full=False)
        config.write_text(config.read_text().replace("[decoding]\n", f"[decoding]\nbatch_size = {size}\n"))
        generates.clear()
        counts, samples = run_tree(demo_model, data, folder / "out", config)
        assert counts.done == len(ROWS) and counts.failed == 0
        assert len(generates) == (len(ROWS) if size == 1 else 3)  # batches [0, 1], [2], [4, 5]
        trees[size] = folder / "out"
    one, two = tree_rows(trees[1]), tree_rows(trees[2])
    assert one.keys() == two.keys() and len(one) == len(ROWS)
    for key, row in one.items():
        for column, value in row.items():  # every column: the CSV holds no timings
            other = two[key][column]
            try:
                np.testing.assert_allclose(float(other), float(value), atol=1e-5, err_msg=f"{key}: {column}")
            except ValueError:
                assert other == value, f"{key}: {column}"
        np.testing.assert_allclose(np.load(trees[2] / "grids" / f"{key}_grid.npy"),
                                   np.load(trees[1] / "grids" / f"{key}_grid.npy"), atol=1e-6)
    assert json.loads((trees[2] / "run.json").read_text())["config"]["decoding"]["batch_size"] == 2


def test_eval_names_a_batch_size_below_1():
    from cli.main import main

    result = CliRunner().invoke(main, ["eval", "--export", "unused", "--batch-size", "0"])
    assert result.exit_code == 2 and "batch_size" in result.output


def test_a_batch_whose_generate_fails_is_answered_row_by_row(monkeypatch):
    from medgemma_tui.pipeline.batch import FilmAtHand, batches, run_batch
    from medgemma_tui.pipeline.rows import RowSettings

    class Row:
        problem, question, image = None, "Is there a nodule?", "film.png"

        def __init__(self, key):
            self.key = key

    def fails(self, loaded, samples, settings):
        raise RuntimeError("CUDA out of memory (a stand-in)")

    answered = []
    monkeypatch.setattr(FilmAtHand, "answer_together", fails)
    monkeypatch.setattr(FilmAtHand, "answer", lambda self, loaded, sample, settings: answered.append(sample.key))

    class Sink:
        def finished(self, result):
            pass

        def failed(self, sample, error):
            raise AssertionError(error)

    rows = [Row("a"), Row("b"), Row("c")]
    assert [[r.key for r in b] for b in batches(rows, 2)] == [["a", "b"], ["c"]]
    counts = run_batch(object(), rows, RowSettings(batch_size=2), Sink())
    assert counts.done == 3 and answered == ["a", "b", "c"]
