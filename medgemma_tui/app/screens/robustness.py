"""Perturbed films and their maps against the original, with answer flips: read from a results tree.

The robustness study itself (perturbing films, re-asking, comparing) belongs to the evaluation
(``medtui eval --robustness``); this screen only shows what it wrote. With nothing written it says
so, rather than inventing anything.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Group
from rich.pretty import Pretty
from rich.table import Table
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
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            return Text(f"{path}: unreadable ({exc})", style="red")
        study = data.get("robustness", data)
        if not isinstance(study, dict) or not isinstance(study.get("perturbations"), list):
            return Pretty(data)  # a layout this screen does not know: shown as written
        return study_view(study)

    def action_close(self) -> None:
        self.dismiss(None)


def _num(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def study_view(study: dict):
    """The perturbations of one sample against its original: answer flips and how far the map moved."""
    reference = study.get("reference", {})
    head = Text()
    head.append(f"{study.get('question', '')}\n", style="bold")
    head.append(f"original answer: {reference.get('answer_label', '?')}")
    if study.get("flip_rate") is not None:
        head.append(f" · flip rate {_num(study['flip_rate'], 2)}", style="bold")
    head.append(f" · mean JS {_num(study.get('mean_js'), 4)} · max JS {_num(study.get('max_js'), 4)}")
    if study.get("map", {}).get("description"):
        head.append(f"\nmaps compared: {study['map']['description']}", style="dim")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("perturbation", "strength", "answer", "flip", "JS", "pearson", "top-10% IoU", "Δ inside lungs"):
        table.add_column(name, justify="left" if name in ("perturbation", "answer") else "right")
    for p in study["perturbations"]:
        flip = Text("FLIP", style="bold red") if p.get("flip") else Text("·", style="dim")
        strength = f"{p.get('strength', '')} {p.get('parameter', '')}".strip()
        delta = p.get("metric_deltas", {}).get("inside_lungs_ratio")
        table.add_row(str(p.get("name", "?")), strength, str(p.get("answer_label", "?")), flip, _num(p.get("js"), 4),
                      _num(p.get("pearson")), _num(p.get("top_iou")), _num(delta))
    note = Text("The tree keeps the perturbed maps' comparisons, not the maps themselves.", style="dim")
    return Group(head, Text(""), table, Text(""), note)
