"""A tree opened again shows what its CSV says of a row, and analyses anew only what the tree lacks."""

from __future__ import annotations

import math

from test_decision_row import SENTENCE, record_answering

from medgemma_tui.analysis.record_analysis import DEFAULT_SPEC, analyse_record
from medgemma_tui.analysis.views import DECISION_INDEX
from medgemma_tui.export.reader import read_results
from medgemma_tui.export.record_io import save_record
from medgemma_tui.export.tree import ResultsTree

ROW = {"key": "k0", "question": "Is there a pneumothorax?", "answer": "Based on the image, there is no pneumothorax.",
       "ground_truth": "no", "answer_label": "no", "answer_reason": "negated finding 'pneumothorax'",
       "correct": True, "decision_index": 3, "decision_token": " image", "map_view": "answer",
       "map_rows": "decision", "map_layers": "all", "map_heads": "mean", "entropy": 0.125, "gini": "",
       "error": ""}


def written_tree(tmp_path):
    """A tree whose one row was written by other code: its decision token and entropy differ from today's."""
    tree = ResultsTree(tmp_path / "tree")
    with tree.locked() as writer:
        writer.put_rows([ROW])
        writer.write_csv()
    record = record_answering(SENTENCE)
    record.extra.pop(DECISION_INDEX, None)  # an older tree's record does not carry its decision
    tree.record_path("k0").parent.mkdir(parents=True, exist_ok=True)
    save_record(record, tree.record_path("k0"))
    return read_results(tree.root)


def test_an_older_trees_record_opens_on_the_decision_token_its_csv_names(tmp_path):
    reader = written_tree(tmp_path)
    record = reader.load_record("k0")
    assert record.extra[DECISION_INDEX] == 3  # today's reader would say 7 ("no")
    analysis = analyse_record(record, ground_truth="no")
    assert (analysis.decision_index, analysis.decision_token) == (3, " image")


def test_the_trees_metrics_are_shown_for_the_map_it_wrote_and_a_missing_one_is_computed(tmp_path):
    reader = written_tree(tmp_path)
    analysis = analyse_record(reader.load_record("k0"), ground_truth="no")
    assert analysis.metrics["entropy"] != 0.125
    shown = reader.with_stored_values("k0", analysis)
    assert shown.metrics["entropy"] == 0.125  # the tree's
    assert shown.metrics["gini"] == analysis.metrics["gini"] and math.isfinite(shown.metrics["gini"])  # computed
    assert (shown.answer_label, shown.correct, shown.answer_reason) == ("no", True, "negated finding 'pneumothorax'")


def test_a_map_the_tree_did_not_write_is_analysed_anew(tmp_path):
    reader = written_tree(tmp_path)
    gated = analyse_record(reader.load_record("k0"), spec=DEFAULT_SPEC.with_(view="gated"))
    assert reader.with_stored_values("k0", gated).metrics == gated.metrics
    assert reader.with_stored_values("other", gated) is gated  # a key the CSV lacks


def test_the_app_opens_a_trees_row_with_the_trees_values(tmp_path):
    from medgemma_tui.app.session import Session

    written_tree(tmp_path)
    entry = Session.from_tree(tmp_path / "tree").run("k0")
    assert (entry.analysis.decision_index, entry.analysis.metrics["entropy"]) == (3, 0.125)
    assert entry.summary.metrics["entropy"] == 0.125  # what the samples table and the charts read
