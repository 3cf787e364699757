"""The CSV's columns are declared once (export.columns.COLUMN_SPECS) and read back by the kind declared."""

from __future__ import annotations

import csv
import math

import pandas as pd

from medgemma_tui.export.columns import (
    BOOLEAN,
    COLUMN_SPECS,
    COLUMNS,
    INPUT_COLUMNS,
    INTEGER,
    NUMBER,
    RESULT_COLUMNS,
    TEXT,
    cell_value,
    read_rows,
)

FILLED = {TEXT: "a b", INTEGER: "7", BOOLEAN: "True", NUMBER: "0.25"}


def write_csv(path, rows):
    names = [*COLUMNS, "site"]  # "site": a dataset's own column the registry does not know
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_each_column_is_declared_once_in_one_group_and_the_csv_keeps_its_order():
    names = [c.name for c in COLUMN_SPECS]
    assert len(names) == len(set(names))
    assert set(INPUT_COLUMNS).isdisjoint(RESULT_COLUMNS)
    assert COLUMNS == tuple(names)
    assert COLUMNS[:3] == ("row", "key", "study_id") and COLUMNS[-1] == "error"
    assert INPUT_COLUMNS[-1] == "ground_truth" and RESULT_COLUMNS[0] == "answer"
    assert {c.kind for c in COLUMN_SPECS} == {TEXT, INTEGER, BOOLEAN, NUMBER}


def test_read_rows_reads_each_column_as_its_declared_kind_and_an_unknown_one_as_text(tmp_path):
    path = tmp_path / "evaluation_results.csv"
    full = {c.name: FILLED[c.kind] for c in COLUMN_SPECS} | {"key": "k0", "site": "012"}
    empty = dict.fromkeys(COLUMNS, "") | {"key": "k1", "site": ""}
    write_csv(path, [full, empty])
    frame = read_rows(path)
    for column in COLUMN_SPECS:
        values = frame[column.name]
        if column.kind == TEXT:
            assert values.tolist()[1] == ("k1" if column.name == "key" else "") and values.map(type).eq(str).all()
        elif column.kind == INTEGER:
            assert str(values.dtype) == "Int64" and values[0] == 7 and values.isna()[1], column.name
        elif column.kind == BOOLEAN:
            assert str(values.dtype) == "boolean" and bool(values[0]) and values.isna()[1], column.name
        else:
            assert values.dtype == float and values[0] == 0.25 and math.isnan(values[1]), column.name
    assert frame["site"].tolist() == ["012", ""]  # not read as the number 12


def test_a_cell_reads_as_its_kind_and_a_missing_one_as_its_kinds_empty(tmp_path):
    path = tmp_path / "evaluation_results.csv"
    write_csv(path, [{"key": "k0", "variant_index": "3", "correct": "False", "pointing_hit": "1.0", "question": "Q?"},
                     {"key": "k1"}])
    full, empty = read_rows(path).to_dict("records")
    assert [cell_value(full, n) for n in ("variant_index", "correct", "pointing_hit", "question")] == [3, False, 1.0,
                                                                                                         "Q?"]
    assert type(cell_value(full, "variant_index")) is int and type(cell_value(full, "correct")) is bool
    assert cell_value(empty, "variant_index") is None and cell_value(empty, "correct") is None
    assert math.isnan(cell_value(empty, "pointing_hit")) and cell_value(empty, "question") == ""
    assert cell_value({}, "site") == "" and cell_value(pd.Series({"site": "x"}).to_dict(), "site") == "x"
