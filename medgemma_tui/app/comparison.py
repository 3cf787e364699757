"""``medtui open C`` on a comparison tree (``medtui compare A B --into C``): the rows, most moved first, and the
highlighted row's two maps side by side with their difference.

The header says what differs between the two runs and gives the dataset's paired differences with their
study-bootstrap intervals; the table lists each row's flip, JS, rank correlation, top-cell and mass shifts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Static

from medgemma_tui.colormaps import get_colormap, scale
from medgemma_tui.export.comparison_tree import ComparisonReader

DIFFERENCE_COLORMAP = "coolwarm"  # diverging: blue = mass B lost, red = mass B gained
FIGURE_LABELS = (("accuracy", "accuracy"), ("pointing_game", "pointing game"),
                 ("mass_in_box_lift", "mass-in-box lift"), ("hard_positive_answer_consistency", "HP consistency"))
COLUMNS = (("key", "key"), ("flip", "flip"), ("js", "JS"), ("spearman", "rho"), ("top_shift_cells", "top moved"),
           ("lungs_shift", "lungs +/-"), ("box_shift", "box +/-"), ("pointing", "pointing A>B"))


def _cells(values01: np.ndarray, colormap: str) -> list[Text]:
    """One line of half-width cell pairs per grid row, coloured by values already in [0, 1]."""
    rgb = get_colormap(colormap)(np.clip(values01, 0.0, 1.0))
    lines = []
    for r in range(values01.shape[0]):
        line = Text()
        for c in range(values01.shape[1]):
            line.append("  ", Style(bgcolor=Color.from_rgb(*(int(v) for v in rgb[r, c]))))
        lines.append(line)
    return lines


def maps_text(a: np.ndarray, b: np.ndarray, colormap: str = "magma") -> Text:
    """A, B (each scaled to its own maximum) and B - A (diverging, symmetric about 0), side by side."""
    diff = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    bound = float(np.abs(diff).max()) or 1.0
    panels = [_cells(scale(a), colormap), _cells(scale(b), colormap),
              _cells(diff / bound / 2.0 + 0.5, DIFFERENCE_COLORMAP)]
    width = 2 * a.shape[1]
    text = Text()
    for title in ("A", "B", f"B - A (+/-{bound:.3f})"):
        text.append(title.ljust(width + 2)[: width + 2], Style(bold=True))
    text.append("\n")
    for r in range(a.shape[0]):
        for panel in panels:
            text.append_text(panel[r])
            text.append("  ")
        text.append("\n")
    return text


def _number(value: Any, digits: int = 3) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "" if math.isnan(number) else f"{number:.{digits}f}"


def header_text(header: dict[str, Any]) -> Text:
    text = Text()
    for side in ("a", "b"):
        model = header[side].get("model") or {}
        adapter = (model.get("adapter") or {}).get("path")
        text.append(f"{side.upper()}: {header[side]['path']}  model {model.get('name_or_path', '?')}"
                    f"{'  adapter ' + adapter if adapter else ''}\n")
    differs = sorted({".".join(k.split(".")[:3 if k.startswith("config.") else 2]) for k in header["differences"]})
    text.append(f"differs in: {', '.join(differs) or 'nothing in run.json'}\n", Style(dim=True))
    flips = header["flips"]
    directions = ", ".join(f"{k} {v}" for k, v in flips["by_direction"].items()) or "none"
    text.append(f"{header['paired_rows']} rows paired, {header['unpaired_rows']} unpaired; "
                f"verdicts flipped {flips['flipped']} ({directions})\n")
    for name, label in FIGURE_LABELS:
        entry = header["dataset"].get(name) or {}
        if entry.get("difference") is None:
            continue
        interval = entry.get("interval")
        bound = f"[{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else "(no interval)"
        text.append(f"{label}: {entry['a']:.3f} -> {entry['b']:.3f}  B - A {entry['difference']:+.3f} {bound}\n")
    return text


class ComparisonApp(App):
    """The comparison tree: header, the rows (most moved first) and the highlighted row's maps."""

    TITLE = "medtui compare"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="comparison_quit"),
        Binding("j", "cursor_down", "Next row", id="comparison_next"),
        Binding("k", "cursor_up", "Previous row", id="comparison_previous"),
    ]
    CSS = """
    #header { height: auto; padding: 0 1; }
    #body { height: 1fr; }
    #rows { height: 1fr; width: 1fr; }
    #detail { width: 106; height: 1fr; padding: 0 1; }
    #maps, #answers { height: auto; width: 1fr; }
    """

    def __init__(self, reader: ComparisonReader, colormap: str = "magma"):
        super().__init__()
        self.reader = reader
        self.colormap = colormap
        self.current_key: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(header_text(self.reader.header), id="header")
        with Horizontal(id="body"):
            yield DataTable(id="rows", cursor_type="row", zebra_stripes=True)
            with Vertical(id="detail"):
                yield Static(id="maps")
                yield Static(id="answers")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#rows", DataTable)
        table.add_columns(*(label for _, label in COLUMNS))
        for _, row in self.reader.rows.iterrows():
            pointing = f"{_number(row['pointing_a'], 0)}>{_number(row['pointing_b'], 0)}" \
                if _number(row["pointing_a"]) else ""
            cells = [str(row["key"]), str(row["flip"]), _number(row["js"], 4), _number(row["spearman"], 2),
                     _number(row["top_shift_cells"], 1), _number(row["lungs_shift"]), _number(row["box_shift"]),
                     pointing]
            table.add_row(*cells, key=str(row["key"]))
        table.focus()
        if len(self.reader.rows):
            self.show(str(self.reader.rows.iloc[0]["key"]))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.show(str(event.row_key.value))

    def show(self, key: str) -> None:
        self.current_key = key
        a, b = self.reader.maps(key)
        self.query_one("#maps", Static).update(maps_text(a, b, self.colormap))
        row = self.reader.rows[self.reader.rows["key"] == key].iloc[0]
        self.query_one("#answers", Static).update(Text(
            f"{row['question']}\nA ({row['label_a']}): {row['answer_a']}\nB ({row['label_b']}): {row['answer_b']}\n"
            f"top cell {row['top_a']} -> {row['top_b']} ({_number(row['top_shift_px'], 1)} px)"))

    def action_cursor_down(self) -> None:
        self.query_one("#rows", DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one("#rows", DataTable).action_cursor_up()
