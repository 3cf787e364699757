"""Files written in worker processes while the model answers: the same tree as writing in line, rows in
the CSV only once their files exist, a failing write fails its row alone."""

from __future__ import annotations

import numpy as np

from medgemma_tui.config import load_config
from medgemma_tui.export.reader import read_results
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.pipeline.writers import OverlappedTreeSink
from tests.support import demo_subset_csv, eval_config, run_tree

ROWS = (0, 8)


def test_writing_in_worker_processes_gives_the_same_tree_as_writing_in_line(tmp_path, demo_model):
    csv = demo_subset_csv(tmp_path, ROWS)
    inline, _ = run_tree(demo_model, csv, tmp_path / "inline", eval_config(tmp_path, full=True, tokens=2))
    (tmp_path / "w").mkdir()
    workers_config = eval_config(tmp_path / "w", full=True, tokens=2, extra="[export]\nwriters = 1\n")
    overlapped, samples = run_tree(demo_model, csv, tmp_path / "workers", workers_config)
    assert (inline.done, overlapped.done, overlapped.failed) == (2, 2, 0)
    a, b = read_results(tmp_path / "inline"), read_results(tmp_path / "workers")
    assert a.keys == b.keys == [s.key for s in samples]
    for key in a.keys:
        np.testing.assert_array_equal(a.load_grid(key), b.load_grid(key))
        assert sorted(a.load_meta(key)["files"]) == sorted(b.load_meta(key)["files"])
        for name, path in b.load_meta(key)["files"].items():
            assert (tmp_path / "workers" / path).exists(), name
    left = a.rows.drop(columns=["error"]).astype(str)
    right = b.rows.drop(columns=["error"]).astype(str)
    assert left.equals(right)


def test_a_row_whose_files_fail_in_a_worker_fails_alone_and_never_enters_the_csv_as_done(tmp_path, demo_model):
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.resources import fixtures_dir
    from tests.support import run_sample

    csv = demo_subset_csv(tmp_path, (0, 1))
    samples = load_dataset(csv, fixtures_dir()).samples
    good = run_sample(demo_model, samples[0], max_new_tokens=2)
    bad = run_sample(demo_model, samples[1], max_new_tokens=2)
    bad.analysis.view.spec = None  # the writer cannot describe this map: its job raises in the worker
    tree = ResultsTree(tmp_path / "out")
    config = load_config(eval_config(tmp_path, full=False, tokens=2))
    with tree.locked():
        sink = OverlappedTreeSink(tree, config, writers=1, backlog=1)
        sink.finished(good)
        sink.finished(bad)
        sink.close()
    rows = read_results(tmp_path / "out").rows.set_index("key")
    assert rows.at[samples[0].key, "error"] == ""
    assert rows.at[samples[1].key, "error"].startswith("writing files: ")
    assert [f["key"] for f in sink.write_failures] == [samples[1].key]
