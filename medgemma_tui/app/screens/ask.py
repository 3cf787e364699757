"""Ask a question of one's own about the film on screen (the original system's app tab 1): a new row of the
session, answered in a worker, shown when done, and kept in an export like every row."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from medgemma_tui.app.bindings import CLOSE_BINDINGS


class AskScreen(ModalScreen[str | None]):
    """One input line: enter asks, escape closes. Dismisses with the question, or None."""

    BINDINGS = CLOSE_BINDINGS
    DEFAULT_CSS = """
    AskScreen { align: center middle; }
    AskScreen > Vertical { width: 90%; max-width: 100; height: auto; border: round $primary;
                           background: $surface; padding: 0 1; }
    """

    def __init__(self, film: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.film = film

    @classmethod
    def open(cls, app) -> None:
        """``k``: a question of the user's own about the film on screen: a new row, answered, then shown."""
        item = app.current_item()
        if item is None or item.sample is None:
            app.notify("asking needs a live session (medtui tui) and a film on screen", timeout=4)
            return

        def chosen(question: str | None) -> None:
            if question:
                app.run_new_row(app.session.ask(item.key, question))

        app.push_screen(cls(item.sample.image.name), chosen)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"A question about {self.film} (enter asks, esc closes):")
            yield Input(placeholder="Is there a pleural effusion?", id="ask-question")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        self.dismiss(question or None)

    def action_close(self) -> None:
        self.dismiss(None)
