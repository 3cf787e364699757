"""A tree written by an older reader: its stored answers read again with the current one, and said so."""

import pandas as pd

from medgemma_tui.analysis.rereading import relabel_note, reread_answers
from medgemma_tui.config import Config
from medgemma_tui.export.reader import read_results
from medgemma_tui.export.tree import ResultsTree

EFF = "Is there a pleural effusion?"
PNA = "Is there evidence of pneumonia?"
DENIED_SIGN = "There is no blunting of the costophrenic angles, which are indicative of pleural effusion."
HEDGED = "There is a patchy opacity in the right lower lobe, suggestive of pneumonia."

# what an older reader stored: the denied sign read backwards as yes, the rest as today
OLD_ROWS = [
    {"key": "a", "question": EFF, "answer": DENIED_SIGN, "ground_truth": "no", "answer_label": "yes",
     "answer_reason": "affirmed finding 'effusion'", "correct": False, "error": ""},
    {"key": "b", "question": EFF, "answer": "Yes.", "ground_truth": "yes", "answer_label": "yes",
     "answer_reason": "verdict word 'yes'", "correct": True, "error": ""},
    {"key": "c", "question": PNA, "answer": HEDGED, "ground_truth": "yes", "answer_label": "uncertain",
     "answer_reason": "hedge 'suggestive of'", "correct": False, "error": ""},
    {"key": "d", "question": EFF, "answer": "", "ground_truth": "yes", "answer_label": "",
     "answer_reason": "", "correct": None, "error": "RuntimeError: out of memory"},
]


def old_frame():
    frame = pd.DataFrame(OLD_ROWS)
    frame["correct"] = frame["correct"].astype("boolean")
    return frame


def test_a_label_the_current_reader_reads_otherwise_is_changed_scored_again_and_listed():
    rows, changes = reread_answers(old_frame())
    a = rows.set_index("key").loc["a"]
    assert (a["answer_label"], bool(a["correct"]), a["answer_reason"]) == ("no", True, "negated finding 'blunting'")
    assert [(c.key, c.was, c.now) for c in changes] == [("a", "yes", "no")]
    failed = rows.set_index("key").loc["d"]  # a failed row has no answer to read: kept as it was
    assert (failed["answer_label"], failed["error"]) == ("", "RuntimeError: out of memory")
    assert pd.isna(failed["correct"])


def test_reading_twice_changes_nothing_more():
    rows, _ = reread_answers(old_frame())
    again, changes = reread_answers(rows)
    assert changes == [] and again["answer_label"].tolist() == rows["answer_label"].tolist()


def test_the_hedge_setting_rereads_hedged_answers_their_way():
    rows, changes = reread_answers(old_frame(), "lean")
    c = rows.set_index("key").loc["c"]
    assert (c["answer_label"], bool(c["answer_hedged"]), bool(c["correct"])) == ("yes", True, True)
    assert {ch.key for ch in changes} == {"a", "c"}


def test_a_tree_opened_reads_its_answers_again_under_its_own_setting_and_says_what_changed(tmp_path):
    tree = ResultsTree(tmp_path / "old")
    with tree.locked() as writer:
        writer.put_rows(OLD_ROWS)
        writer.write_run({"config": Config().with_overrides({"analysis.hedged_answers": "lean"}).to_json()})
    for row in OLD_ROWS[:3]:  # the finished rows have their records (not read here)
        tree.record_path(row["key"]).parent.mkdir(parents=True, exist_ok=True)
        tree.record_path(row["key"]).write_bytes(b"")
    reader = read_results(tmp_path / "old")
    assert reader.rows.set_index("key").loc["c", "answer_label"] == "yes"  # the tree's "lean"
    assert {c.key for c in reader.relabelled} == {"a", "c"}
    note = reader.relabelled_note
    assert note.startswith("2 of 3 stored answers read differently with the current reader"), note
    assert "a: yes -> no (negated finding 'blunting')" in note
    strict = read_results(tmp_path / "old", hedged_answers="uncertain")  # a setting given overrides the tree's
    assert [c.key for c in strict.relabelled] == ["a"]

    from medgemma_tui.app.session import Session  # medtui open: the list shows the labels read now

    session = Session.from_tree(tmp_path / "old")
    assert {i.key: (i.answer_label, i.correct) for i in session.items} == {
        "a": ("no", True), "b": ("yes", True), "c": ("yes", True)}
    assert session.tree.relabelled_note == note


def test_the_note_lists_the_first_few_and_counts_the_rest():
    _, changes = reread_answers(pd.concat([old_frame()] * 5, ignore_index=True))
    note = relabel_note(changes, 15)
    assert note.startswith("5 of 15 stored answers") and note.endswith("; 2 more")
    assert relabel_note([], 15) == ""
