"""The samples table: key, study, variant, strategy, ground truth, answer, correct, status; filterable."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input

from medgemma_tui.app.bindings import FILTER_BINDINGS
from medgemma_tui.app.session import DONE, FAILED, RUNNING, Session

COLUMNS = ("key", "var", "truth", "answer", "ok", "status", "strategy", "study")
STATUS_STYLE = {DONE: "green", FAILED: "red", RUNNING: "yellow"}


def row_cells(session: Session, key: str) -> list:
    item, entry = session.item(key), session.entries[key]
    answer, verdict = item.answer_label, item.correct
    if entry.summary is not None and entry.status == DONE:
        answer, verdict = entry.summary.answer_label, entry.summary.correct
    correct = {True: "✓", False: "✗", None: ""}[verdict]
    status = Text(entry.status, style=STATUS_STYLE.get(entry.status, "dim"))
    return [key, str(item.variant), item.truth, answer, correct, status, item.strategy, item.study]


def matches(session: Session, key: str, query: str) -> bool:
    if not query:
        return True
    item = session.item(key)
    entry = session.entries[key]
    answer = entry.summary.answer_label if entry.summary is not None else item.answer_label
    haystack = " ".join((key, item.study, item.strategy, item.question, item.truth, answer, entry.status)).lower()
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

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="filter: words of any column", id="filter")
        table = DataTable(id="samples-table", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        self.rebuild()

    @property
    def table(self) -> DataTable:
        return self.query_one(DataTable)

    def rebuild(self) -> None:
        table = self.table
        selected = self.selected_key()
        table.clear()
        for item in self.session.items:
            if matches(self.session, item.key, self.query_text):
                table.add_row(*row_cells(self.session, item.key), key=item.key)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    def update_row(self, key: str) -> None:
        table = self.table
        if key not in table.rows:
            return
        for name, value in zip(COLUMNS, row_cells(self.session, key), strict=True):
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
