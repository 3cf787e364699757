"""Every key with its binding id and what it does; remap any id in the config's ``[app.keys]``."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from medgemma_tui.app.bindings import CLOSE_BINDINGS, HELP_BINDINGS
from medgemma_tui.app.keymap import sections

# one line per note: the screen wraps each at its own width (a break inside a note left ragged lines)
NOTES = (
    "Layers are numbered from 0. ] walks all layers -> 0 -> 1 ... -> last -> all; a returns to all layers.\n"
    ". and , step heads (from the head mean they enter single heads); g cycles head mean / GQA group / head.\n"
    "n and p walk the query tokens that can see the image: the row that produced each answer token (never the "
    "end token), and with [prompt] order = \"image_first\" the question's tokens before them (by default the "
    "question comes before the image, and its tokens cannot attend to it).\n"
    "R and L in zone names are the patient's sides: the patient's right lung is on the image left.\n"
    "Gallery tiles stretch each map over its own range (a flat map is dark); the inspector scales by the max.\n"
    "Remap keys in the config file: [app.keys] layer_next = \"l\" (binding id = key)."
)


def shown_key(key: str) -> str:
    names = {"right_square_bracket": "]", "left_square_bracket": "[", "full_stop": ".", "comma": ",",
             "question_mark": "?", "plus": "+", "minus": "-", "slash": "/"}
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def bindings_table(keymap: dict[str, str]) -> Table:
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("key", no_wrap=True)
    table.add_column("does")
    table.add_column(Text("id (for [app.keys])"), style="dim", no_wrap=True)
    for title, bindings in sections():
        table.add_row(Text(title, style="bold underline"), "", "")
        for binding in bindings:
            key = keymap.get(binding.id, binding.key)
            table.add_row(shown_key(key), binding.tooltip or binding.description, binding.id or "")
    return table


class HelpScreen(ModalScreen):
    BINDINGS = [*CLOSE_BINDINGS, *HELP_BINDINGS]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; height: 90%; border: round $primary; background: $surface;
                                  padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("medtui keys", style="bold"))
            yield Static(Text(NOTES, style="dim"))
            yield Static(bindings_table(self.app.key_overrides))

    @classmethod
    def open(cls, app) -> None:
        if not isinstance(app.screen, cls):
            app.push_screen(cls())

    def action_close(self) -> None:
        self.dismiss(None)
