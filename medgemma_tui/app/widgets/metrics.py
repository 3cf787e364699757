"""The analysis core's metrics for the map on screen, and the sentence saying how the map was made."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from medgemma_tui.app.frame import Frame, fmt

SHOWN = (
    ("image_share", "image share (raw row)"),
    ("bos_share", "BOS share"),
    ("text_share", "text share"),
    ("entropy_norm", "entropy (norm.)"),
    ("focus", "focus (max cell)"),
    ("top10_mass", "top-10% mass"),
    ("inside_lungs_ratio", "inside lungs"),
    ("inside_body_ratio", "inside body"),
    ("inside_mediastinum_ratio", "inside mediastinum"),
    ("border_fraction", "border"),
    ("left_fraction", "image left"),
    ("right_fraction", "image right"),
    ("apical_fraction", "apical third"),
    ("basal_fraction", "basal third"),
    ("mass_in_box", "mass in box"),
    ("pointing_hit", "pointing hit"),
    ("iou_top10", "IoU top-10%"),
)


def metrics_table(frame: Frame, columns: int = 2) -> Table:
    table = Table.grid(padding=(0, 1))
    shown = [(label, frame.metrics[name]) for name, label in SHOWN if name in frame.metrics]
    per_row = max(1, columns)
    for _ in range(per_row):
        table.add_column(style="dim", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
    for i in range(0, len(shown), per_row):
        cells = []
        for label, value in shown[i : i + per_row]:
            cells += [label, fmt(value)]
        cells += [""] * (2 * per_row - len(cells))
        table.add_row(*cells)
    return table


class MetricsTable:
    """Two label/value pairs per line where the panel is wide enough, one where it is not."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame

    def __rich_console__(self, console, options):
        yield metrics_table(self.frame, 2 if options.max_width >= 56 else 1)


class MetricsPanel(Static):
    DEFAULT_CSS = "MetricsPanel { height: auto; }"
    _shape: tuple | None = None

    def show(self, frame: Frame | None) -> None:
        """Redraw; a layout pass only when the panel's height can have changed (a key usually only recolours)."""
        if frame is None:
            self._shape = None
            self.update("")
            return
        description = Text(frame.view.description, style="italic dim")
        masks = frame.analysis.masks
        if masks is not None and not masks.ok:
            description.append(f"\nmasks: implausible ({', '.join(masks.quality_reasons)}): lung metrics left empty",
                               style="bold")
        width = max(1, self.content_size.width)
        lines = len(description.wrap(self.app.console, width))
        shape = (lines, tuple(name in frame.metrics for name, _ in SHOWN), width >= 56, width)
        self.update(Group(description, MetricsTable(frame)), layout=shape != self._shape)
        self._shape = shape
