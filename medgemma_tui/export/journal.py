"""The append-only record of a tree's finished and failed rows: one JSON line per row, synced as it is
written, so that putting a row costs the same at the 300,000th row as at the first.

``evaluation_results.csv`` is built from the CSV and this journal together (``ResultsTree.write_csv``) when a
run starts and ends and when ``medtui merge`` joins trees; the journal is emptied once the CSV holding its
rows is on disk. Until then a reader (``medtui open``, the app, ``write_analysis``) reads both: a row in
either is a finished (or failed) row, the journal's line winning over the CSV's for the same key.

A kill while a line is being appended leaves at worst one partial last line, which readers skip and the
next writer cuts off before it appends (``repair``).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


class RowJournal:
    """``OUT/evaluation_rows.jsonl``: rows of CSV text cells, appended and fsynced one call at a time."""

    def __init__(self, path: Path):
        self.path = path

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def append(self, rows: Iterable[dict[str, str]]) -> None:
        """Append ``rows`` (one line each) and sync them to disk before returning."""
        text = "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)
        if not text:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = text.encode("utf-8")
            while data:
                written = os.write(fd, data)
                data = data[written:]
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> Iterator[dict[str, str]]:
        """Every whole line's row, in the order written (a partial or unreadable line is skipped)."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    return  # the line a kill interrupted
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and row.get("key"):
                    yield {str(k): "" if v is None else str(v) for k, v in row.items()}

    def repair(self) -> None:
        """Cut a partial last line (a kill during ``append``), so the next line starts on a line of its own."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            end = max(0, size - 65536)
            while True:
                handle.seek(end)
                chunk = handle.read(size - end)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    keep = end + cut + 1
                    break
                if end == 0:
                    keep = 0
                    break
                end = max(0, end - 65536)
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())

    def clear(self) -> None:
        """Empty the journal (its rows are in the CSV now)."""
        if self.path.exists():
            with open(self.path, "wb") as handle:
                handle.flush()
                os.fsync(handle.fileno())


def dataset_order(row: dict[str, str]) -> tuple[float, str]:
    """Rows sort by their dataset row number, then key (rows without a number last)."""
    text = row.get("row", "")
    return (int(text) if text.lstrip("-").isdigit() else math.inf, row.get("key", ""))


def tree_cells(csv_path: Path, journal_path: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The rows of a tree as text cells, key -> row in dataset order, from its CSV and its journal (the
    journal's row wins for a key in both); and the column names in the order first met."""
    rows: dict[str, dict[str, str]] = {}
    names: dict[str, None] = {}
    if csv_path.exists():
        with open(csv_path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            names.update(dict.fromkeys(reader.fieldnames or ()))
            for row in reader:
                if row.get("key"):
                    rows[row["key"]] = {k: v or "" for k, v in row.items() if k is not None}
    journal = RowJournal(journal_path)
    if journal.exists():
        for row in journal.read():
            names.update(dict.fromkeys(row))
            rows[row["key"]] = row
        rows = {row["key"]: row for row in sorted(rows.values(), key=dataset_order)}
    return rows, list(names)
