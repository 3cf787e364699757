"""The samples table: key, answer, correct, status, ground truth, variant, study, strategy; filterable.

The table shows the columns that fit whole in its width, in the order of ``COLUMNS`` (a narrow panel keeps
the key, the answer, whether it is right and whether it has run; the variant and the study are parts of
the key), so no column is ever cut; the filter searches every column, shown or not.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input

from medgemma_tui.app.bindings import FILTER_BINDINGS
from medgemma_tui.app.session import DONE, FAILED, IN_TREE, RUNNING, Session

COLUMNS = ("key", "answer", "ok", "status", "truth", "var", "study", "strategy")
CELL_PADDING = 1  # DataTable's blank cells on each side of a column
STATUS_STYLE = {DONE: "green", FAILED: "red", RUNNING: "yellow", IN_TREE: "green"}


def row_cells(session: Session, key: str) -> list:
    item, entry = session.item(key), session.entries[key]
    answer, verdict = item.answer_label, item.correct
    if entry.summary is not None and entry.status == DONE:
        answer, verdict = entry.summary.answer_label, entry.summary.correct
    correct = {True: "✓", False: "✗", None: ""}[verdict]
    shown = session.status_text(key)
    status = Text(shown, style=STATUS_STYLE.get(shown, "dim"))
    cells = {"key": key, "answer": answer, "truth": item.truth, "ok": correct, "status": status,
             "var": str(item.variant), "study": item.study, "strategy": item.strategy}
    return [cells[name] for name in COLUMNS]


def cell_width(value) -> int:
    return Text(value).cell_len if isinstance(value, str) else value.cell_len


def fitting_columns(widths: dict[str, int], room: int) -> tuple[str, ...]:
    """The first columns of ``COLUMNS`` whose widths (content and padding) fit in ``room`` cells; the key
    always (a table without it cannot be used; it scrolls sideways where even the key does not fit)."""
    shown, used = [], 0
    for name in COLUMNS:
        used += widths[name] + 2 * CELL_PADDING
        if shown and used > room:
            break
        shown.append(name)
    return tuple(shown)


def matches(session: Session, key: str, query: str) -> bool:
    if not query:
        return True
    item = session.item(key)
    entry = session.entries[key]
    answer = entry.summary.answer_label if entry.summary is not None else item.answer_label
    haystack = " ".join((key, item.study, item.strategy, item.question, item.truth, answer,
                         session.status_text(key))).lower()
    return all(word in haystack for word in query.lower().split())


class FilterInput(Input):
    """The filter box; escape (or enter) hands the keys back to the table."""

    BINDINGS = FILTER_BINDINGS

    def action_leave(self) -> None:
        self.parent.query_one(DataTable).focus()


class SamplesPanel(Vertical):
    DEFAULT_CSS = """
    SamplesPanel { height: 1fr; }
    SamplesPanel Input { height: 3; }
    SamplesPanel DataTable { height: 1fr; }
    """

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.query_text = ""
        self.shown: tuple[str, ...] = ()  # the columns on screen, a prefix of COLUMNS
        self.widths: dict[str, int] = {}  # each column's widest cell, from column_widths

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="filter: words of any column", id="filter")
        table = DataTable(id="samples-table", cursor_type="row", zebra_stripes=True, cell_padding=CELL_PADDING)
        yield table

    def on_mount(self) -> None:
        self.rebuild()

    def on_resize(self) -> None:
        if self.fit_columns():
            self.rebuild()

    def column_widths(self, keys=None) -> dict[str, int]:
        """Each column's widest cell over every sample (not only the filtered ones: columns stay put while
        the filter narrows the rows), or its name where that is wider; ``keys``: widen by these rows only."""
        widths = dict(self.widths) if keys is not None else {name: cell_width(name) for name in COLUMNS}
        for key in keys if keys is not None else (item.key for item in self.session.items):
            for name, value in zip(COLUMNS, row_cells(self.session, key), strict=True):
                widths[name] = max(widths[name], cell_width(value))
        return widths

    def fit_columns(self) -> bool:
        """Choose the columns that fit the table's width (its vertical scrollbar set aside); whether they changed."""
        table = self.query_one(DataTable)
        room = self.size.width - table.styles.scrollbar_size_vertical
        shown = fitting_columns(self.widths, room) if self.size.width else COLUMNS
        changed = shown != self.shown
        self.shown = shown
        return changed

    @property
    def table(self) -> DataTable:
        return self.query_one(DataTable)

    def rebuild(self) -> None:
        table = self.table
        selected = self.selected_key()
        self.widths = self.column_widths()
        self.fit_columns()
        if tuple(str(c.key.value) for c in table.ordered_columns) != self.shown:
            table.clear(columns=True)
            for name in self.shown:
                table.add_column(name, key=name)
        else:
            table.clear()
        for item in self.session.items:
            if matches(self.session, item.key, self.query_text):
                table.add_row(*self.shown_cells(item.key), key=item.key)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    def shown_cells(self, key: str) -> list:
        cells = dict(zip(COLUMNS, row_cells(self.session, key), strict=True))
        return [cells[name] for name in self.shown]

    def update_row(self, key: str) -> None:
        """A sample's new answer or status; a cell wider than its column before can change the columns shown."""
        self.widths = self.column_widths([key])
        if self.fit_columns():
            self.rebuild()
            return
        table = self.table
        if key not in table.rows:
            return
        for name, value in zip(self.shown, self.shown_cells(key), strict=True):
            table.update_cell(key, name, value)

    def selected_key(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None

    def select(self, key: str) -> None:
        table = self.table
        if key in table.rows:
            table.move_cursor(row=table.get_row_index(key), animate=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self.rebuild()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()
