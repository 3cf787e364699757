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
    ("mass_in_box_lift", "mass-in-box lift"),
    ("pointing_hit", "pointing hit"),
    ("pointing_chance", "pointing chance"),  # a random top cell's hit rate by the same rule
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


def headline_rows(summary: dict | None, chance_apart: bool) -> list[tuple[str, str, str, str, str]]:
    """One row per figure: label, value, interval, counts, and the pointing game's chance beside it, or
    (``chance_apart``) on a row of its own under it."""
    from medgemma_tui.export.intervals_summary import headlines

    rows = []
    for headline in headlines(summary or {}):
        chance = headline.name == "pointing_game" and headline.reference is not None
        counts = "" if headline.n is None else f"n {headline.n}"
        if headline.studies and headline.low is not None:
            counts += f", {headline.studies} studies"
        value, _, interval = headline.text()[len(headline.label) + 1:].partition(" ")
        if chance and chance_apart:
            rows += [(headline.label, value, interval, counts, ""),
                     ("  chance (same rule)", f"{headline.reference:.3f}", "", "", "")]
        else:
            rows.append((headline.label, value, interval, counts,
                         f"chance {headline.reference:.3f} (same rule)" if chance else ""))
    return rows


GAP = 2  # blank cells between the table's columns


def rows_width(rows: list[tuple[str, ...]]) -> int:
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(len(rows[0]))] if rows else []
    used = [w for w in widths if w]
    return sum(used) + GAP * max(0, len(used) - 1)


def headline_table(summary: dict | None, width: int | None = None) -> Table:
    """The dataset-level figures of a summary.json (``export.intervals_summary.headlines``): one line each,
    ``accuracy  0.964 [0.916, 1.000]  n 416``, the brackets the study-bootstrap 95% interval. Where the
    line would not fit ``width``, the pointing game's chance gets a row of its own; narrower still, the
    interval and the counts wrap (never cut)."""
    rows = headline_rows(summary, chance_apart=False)
    if width is not None and rows_width(rows) > width:
        rows = headline_rows(summary, chance_apart=True)
    table = Table.grid(padding=(0, GAP))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)  # the value: right-justified, so the decimal points align
    table.add_column(overflow="fold")  # its interval
    table.add_column(style="dim", overflow="fold")
    beside = any(row[4] for row in rows)  # an empty column would still take its gap
    if beside:
        table.add_column(style="dim", overflow="fold")
    for row in rows:
        table.add_row(*(row if beside else row[:4]))
    return table


class DatasetSummaryPanel(Static):
    """The dataset-level figures with their intervals, or a line saying why there are none."""

    DEFAULT_CSS = "DatasetSummaryPanel { height: auto; }"
    _shown: tuple[dict | None, str] = (None, "")

    def on_resize(self) -> None:
        self.show(*self._shown)  # the table's shape follows the width

    def show(self, summary: dict | None, source: str = "") -> None:
        from medgemma_tui.export.intervals_summary import INTERVAL_NOTE, headlines

        self._shown = (summary, source)

        if not summary or not headlines(summary):
            self.update(Text("No dataset figures yet: run samples (x) or open a results tree.", style="dim"))
            return
        title = Text(f"Dataset figures over {summary.get('done', 0)} finished rows", style="bold")
        if source:
            title.append(f" · {source}", style="dim")
        note = Text(f"[low, high]: {INTERVAL_NOTE} (studies resampled with replacement, seeded, 1000 times)",
                    style="italic dim")
        width = self.content_size.width or self.app.size.width
        self.update(Group(title, note, headline_table(summary, width)))
