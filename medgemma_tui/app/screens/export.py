"""Choose what to export (this sample or every finished one) and where: the standard results tree."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from medgemma_tui.app import jobs
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

    @classmethod
    def open(cls, app) -> None:
        """``e``: this sample or every finished one into a results tree, in a worker."""
        session = app.session
        if session.is_tree:
            app.notify(f"These samples already live in the results tree {session.source}.", timeout=4)
            return

        def chosen(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            scope, out_dir = result
            app.export_dir = out_dir
            keys = [app.current_key] if scope == "current" and app.current_key else session.done()
            app.start_row_job(jobs.EXPORT, jobs.export, f"export 0/{len(keys)}", keys=keys,
                              out_dir=out_dir)

        app.push_screen(cls(app.export_dir, len(session.done()), app.current_analysis() is not None), chosen)

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
