"""Perturbed films and their maps against the original, with answer flips: read from a results tree.

The robustness study itself (perturbing films, re-asking, comparing) belongs to the evaluation
(``medtui eval --robustness``); this screen only shows what it wrote. With nothing written it says
so, rather than inventing anything.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.pretty import Pretty
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from medgemma_tui.app.bindings import CLOSE_BINDINGS

NOT_AVAILABLE = (
    "Robustness results are not available for this sample.\n\n"
    "They come from the evaluation, not from the app: run\n"
    "    medtui eval --data CSV --images ROOT --robustness --export OUT\n"
    "then open the tree with\n"
    "    medtui open OUT\n"
    "and press R on a sample: its robustness/{key}.json is shown here."
)


def robustness_file(tree_root: Path | None, key: str) -> Path | None:
    if tree_root is None:
        return None
    path = Path(tree_root) / "robustness" / f"{key}.json"
    return path if path.is_file() else None


class RobustnessScreen(Screen):
    BINDINGS = CLOSE_BINDINGS

    def __init__(self, key: str | None, tree_root: Path | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.key, self.tree_root = key, tree_root

    def compose(self) -> ComposeResult:
        yield Static(Text("Robustness", style="bold"), id="robustness-title")
        with VerticalScroll():
            yield Static(self.body(), id="robustness-body")
        yield Footer()

    def body(self):
        path = robustness_file(self.tree_root, self.key) if self.key else None
        if path is None:
            return Text(NOT_AVAILABLE)
        try:
            return Pretty(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            return Text(f"{path}: unreadable ({exc})", style="red")

    def action_close(self) -> None:
        self.dismiss(None)
