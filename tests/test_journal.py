"""A tree's rows through its journal: one synced line per row whatever came before, the CSV built from it,
a running tree read as it stands, and a kill in the middle of a line costing nothing finished."""

from __future__ import annotations

import csv
import os

import pytest

from medgemma_tui.export.columns import COLUMNS
from medgemma_tui.export.tree import ResultsTree


def row(i: int, **cells) -> dict:
    """A row as ``result_columns`` would give it: a sentence answer, numbers, and the error column."""
    return {"key": f"s{i:05d}_d{i:05d}_v0", "row": i, "study_id": f"s{i:05d}", "dicom_id": f"d{i:05d}",
            "question": "Is there a pleural effusion?",
            "answer": "Based on the image, there is no clear evidence of a pleural effusion.",
            "ground_truth": "no", "answer_label": "no", "correct": True, "entropy": 4.25, "error": "", **cells}


def csv_rows(tree: ResultsTree) -> list[dict[str, str]]:
    with open(tree.csv_path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_putting_a_row_appends_that_row_alone_and_leaves_the_csv_untouched(tmp_path):
    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        tree.reset()
        before = tree.csv_path.stat()
        sizes = []
        for i in range(1, 1201):
            start = tree.journal_path.stat().st_size if tree.journal_path.exists() else 0
            tree.put_row(row(i))
            sizes.append(tree.journal_path.stat().st_size - start)
        after = tree.csv_path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    # the 1,200th row writes as many bytes as the 1,000th, and one more than the 100th (its row number has one
    # more digit): the row alone, nothing of the rows before it
    assert sizes[1199] == sizes[999] == sizes[99] + 1


def test_a_running_tree_reads_its_journaled_rows_in_dataset_order(tmp_path):
    from medgemma_tui.export.reader import read_results

    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        tree.reset()
        tree.put_rows([row(1), row(3)])
        tree.write_csv()
        tree.put_row(row(2))
        # the row of key 3 again, answered otherwise: the later wins
        tree.put_row(row(3, answer="Yes, there is a small right pleural effusion.", answer_label="yes",
                         correct=False))
        reader = read_results(tree.root)
        assert reader.rows["key"].tolist() == [row(i)["key"] for i in (1, 2, 3)]
        assert reader.rows["answer_label"].tolist() == ["no", "no", "yes"]
        assert reader.rows["correct"].tolist() == [True, True, False]
        assert reader.rows["entropy"].dtype.kind == "f"
        assert set(ResultsTree(tree.root).rows) == {row(i)["key"] for i in (1, 2, 3)}


def test_a_tree_with_only_a_journal_opens(tmp_path):
    from medgemma_tui.export.reader import read_results

    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        tree.put_row(row(7))
        assert not tree.csv_path.exists()
        assert read_results(tree.root).rows["key"].tolist() == [row(7)["key"]]


def test_building_the_csv_keeps_every_row_once_in_dataset_order_and_empties_the_journal(tmp_path):
    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        tree.reset()
        tree.put_rows([row(5), row(2)])
        tree.write_csv()
        tree.put_rows([row(4), row(1, error="image: file not found", extra_note="kept")])
        tree.write_csv()
    rows = csv_rows(tree)
    assert [r["row"] for r in rows] == ["1", "2", "4", "5"]
    assert rows[0]["error"] == "image: file not found" and rows[0]["extra_note"] == "kept"
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS)
    assert tree.journal_path.stat().st_size == 0
    assert ResultsTree(tree.root).failed_keys() == {row(1)["key"]}


def test_a_kill_between_the_csv_and_emptying_the_journal_reads_each_row_once(tmp_path, monkeypatch):
    from medgemma_tui.export.journal import RowJournal

    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        tree.put_rows([row(1), row(2)])
        monkeypatch.setattr(RowJournal, "clear", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            tree.write_csv()
    monkeypatch.undo()
    assert len(csv_rows(tree)) == 2 and tree.journal_path.stat().st_size > 0
    again = ResultsTree(tree.root)
    assert list(again.rows) == [row(1)["key"], row(2)["key"]]
    with again.locked():
        again.write_csv()
    assert [r["key"] for r in csv_rows(again)] == [row(1)["key"], row(2)["key"]]


def test_a_line_cut_by_a_kill_is_skipped_and_the_next_run_appends_after_the_whole_lines(tmp_path):
    from medgemma_tui.export.reader import read_results

    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        tree.reset()
        tree.put_rows([row(1), row(2)])
    with open(tree.journal_path, "ab") as handle:  # the kill came while row 3 was being written
        handle.write(b'{"key":"s00003_d00003_v0","row":"3","answ')
    assert list(ResultsTree(tree.root).rows) == [row(1)["key"], row(2)["key"]]
    assert read_results(tree.root).rows["key"].tolist() == [row(1)["key"], row(2)["key"]]
    again = ResultsTree(tree.root)
    with again.locked():
        again.put_row(row(3))
        assert list(ResultsTree(tree.root).rows) == [row(i)["key"] for i in (1, 2, 3)]
    lines = tree.journal_path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(line.startswith(b'{"key":') for line in lines[:-1])


def test_no_resume_forgets_the_journaled_rows_too(tmp_path):
    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        tree.put_rows([row(1), row(2)])
        tree.reset()
        assert ResultsTree(tree.root).rows == {}
        tree.write_csv()
    assert csv_rows(tree) == [] and os.path.getsize(tree.journal_path) == 0


def test_building_the_csv_with_an_empty_journal_leaves_the_csv_as_it_is(tmp_path):
    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        tree.put_rows([row(1), row(2)])
        tree.write_csv()
        before = tree.csv_path.stat()
        tree.write_csv()
        after = tree.csv_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [r["key"] for r in csv_rows(tree)] == [row(1)["key"], row(2)["key"]]
