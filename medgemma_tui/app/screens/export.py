"""Choose what to export (this sample or every finished one) and where: the standard results tree."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from medgemma_tui.app.bindings import CLOSE_BINDINGS


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    BINDINGS = CLOSE_BINDINGS
    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical { width: 70; max-width: 100%; height: auto; border: round $primary;
                              background: $surface; padding: 0 1; }
    ExportScreen #export-title { width: 1fr; height: auto; }
    ExportScreen Horizontal { height: auto; }
    ExportScreen Button { margin: 0 1 0 0; }
    """

    def __init__(self, default_dir: str, finished: int, has_current: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.default_dir, self.finished, self.has_current = default_dir, finished, has_current

    def compose(self) -> ComposeResult:
        with Vertical():
            # a Static wraps at any width (a Label of one line was cut at every width)
            yield Static("Export to the standard results tree (finished keys are skipped on re-runs):",
                         id="export-title")
            yield Input(self.default_dir, id="export-dir")
            with Horizontal():
                yield Button("This sample", id="current", variant="primary", disabled=not self.has_current)
                yield Button(f"All finished ({self.finished})", id="all", disabled=self.finished == 0)
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.dismiss((event.button.id, self.query_one(Input).value.strip() or self.default_dir))

    def action_close(self) -> None:
        self.dismiss(None)
