"""Every key of the app, each with an id (remap it from the config's ``[app.keys]``) and a description.

Each binding is declared where it acts: a screen's in its class. Here are those that act in more than
one place: the app's own (live on every screen), the close keys several screens share, and the widgets'
(the picture's cursor, the samples filter, the tiles). ``keymap`` reads them all.

``[app.keys]`` maps a binding id to a key, e.g. ``layer_next = "l"`` or ``quit = "ctrl+q"``; the help
screen (``?``) lists every id with its current key.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.keys import _character_to_key

APP_BINDINGS = [  # live on every screen
    Binding("question_mark", "help", "Help", id="help"),
    Binding("D", "summary", "Dataset", tooltip="The dataset figures with their study-bootstrap 95% intervals",
            id="summary", show=False),
    Binding("q", "quit", "Quit", id="quit"),
    Binding("ctrl+p", "command_palette", "Commands", id="command_palette", show=False),
]

HELP_BINDINGS = [Binding("question_mark", "close", "Close help", id="help_close")]

CURSOR_BINDINGS = [
    Binding("up", "cursor(-1, 0)", "Cell up", id="cell_up", show=False),
    Binding("down", "cursor(1, 0)", "Cell down", id="cell_down", show=False),
    Binding("left", "cursor(0, -1)", "Cell left", id="cell_left", show=False),
    Binding("right", "cursor(0, 1)", "Cell right", id="cell_right", show=False),
]


TILE_BINDINGS = [
    Binding("up", "move(0, -1)", "Up", id="tile_up", show=False),
    Binding("down", "move(0, 1)", "Down", id="tile_down", show=False),
    Binding("left", "move(-1, 0)", "Left", id="tile_left", show=False),
    Binding("right", "move(1, 0)", "Right", id="tile_right", show=False),
]

def back_key(binding_id: str) -> Binding:
    """``esc`` closes a screen; each screen's under its own id, so each can be remapped alone."""
    return Binding("escape", "close", "Back", id=binding_id)


CLOSE_BINDINGS = [back_key("close")]


FILTER_BINDINGS = [Binding("escape", "leave", "Back to the table", id="filter_leave", show=False)]


def key_names(keys: str) -> set[str]:
    """The keys of a binding or a remap ("l", "ctrl+q", "?,h"), in Textual's names ("?" is question_mark)."""
    names = set()
    for key in keys.split(","):
        key = key.strip()
        if key:
            names.add(_character_to_key(key) if len(key) == 1 else key)
    return names
