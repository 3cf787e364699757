"""Charts drawn by plotext and rendered to text here (``figure.build().string()`` -> ``Text.from_ansi``).

Why not textual-plotext: it pins plotext 5.x and reaches into plotext's internals, and this project
runs plotext 6, whose API is different. Rendering the figure to a string ourselves needs only
plotext's public ``build``, keeps the chart a plain ``rich.Text`` (cached by what it shows) and lets the
panel redraw it at any size. plotext's figure is global state: charts are built on the main thread only.

Colours are fixed 256-colour indices, so a chart reads the same in true-colour and 256-colour terminals.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from medgemma_tui.analysis.views import head_summaries, layer_summaries
from medgemma_tui.app.frame import Frame

SERIES = {"image share": 39, "BOS share": 214, "entropy (norm.)": 170}
MARK = 160  # the current layer / head
MIN_WIDTH, MIN_HEIGHT = 24, 5


def _plotext_text(build) -> Text:
    import plotext

    figure = plotext.figure
    figure.clear()
    figure.theme("simple")
    figure.legend(False)
    build(figure, plotext)
    return Text.from_ansi(figure.build().string(), no_wrap=True, end="")


def legend(names: dict[str, int], width: int) -> Text:
    """``━ name`` for each series, on as many lines as ``width`` needs: an entry is never cut."""
    text = Text(no_wrap=True, overflow="ellipsis")
    used = 0
    for name, colour in names.items():
        entry = len(name) + 2
        if used and used + 2 + entry > width:
            text.append("\n")
            used = 0
        elif used:
            text.append("  ")
            used += 2
        text.append("━ ", style=f"color({colour})")
        text.append(name, style="dim")
        used += entry
    return text


def heading(title: str, mark: str = "") -> Text:
    """A chart's title, and what is marked on it in the mark colour."""
    text = Text(title, style="bold", no_wrap=True, overflow="ellipsis")
    if mark:
        text.append(f"  │ {mark}", style=f"bold color({MARK})")
    return text


def layer_chart(frame: Frame, width: int, height: int) -> Text:
    """Per-layer image share, BOS share and normalised entropy of the current row; the layer marked."""
    record = frame.record
    sums = layer_summaries(record, frame.spec.rows)
    cells = record.grid[0] * record.grid[1]
    series = {
        "image share": sums["image_share"],
        "BOS share": sums["bos_share"],
        "entropy (norm.)": sums["entropy"] / math.log(cells),
    }
    x = list(range(record.num_layers))
    layer = frame.state.layer

    def build(figure, plotext):
        figure.plot_size(width, height)
        for name, values in series.items():
            signal = figure.signal(x, [float(v) for v in values], marker=plotext.marker("hd", SERIES[name]))
            signal.lines()
            figure.draw(signal)
        if layer is not None:
            mark = figure.signal([layer, layer], [0.0, 1.0], marker=plotext.marker("hd", MARK))
            mark.lines()
            figure.draw(mark)
        figure.ruler("y").lim(0, 1)
        figure.ruler("x").lim(0, max(1, record.num_layers - 1))
        figure.ruler("x").ticks(x[:: max(1, math.ceil(len(x) / 8))])  # layer numbers, not fractions

    return _plotext_text(build)


def head_chart(frame: Frame, width: int, height: int) -> Text:
    """Image share of every query head at the current layer (all layers: their mean); the head marked."""
    record = frame.record
    sums = head_summaries(record, frame.spec.rows)["image_share"]  # [L, H]
    values = sums.mean(axis=0) if frame.state.layer is None else sums[frame.state.layer]
    heads = list(range(record.num_heads))
    chosen = set()
    if frame.state.head_mode == "head":
        chosen = {frame.state.head}
    elif frame.state.head_mode == "group":
        n = record.model.heads_per_group
        chosen = set(range(frame.state.head * n, frame.state.head * n + n))

    def build(figure, plotext):
        figure.plot_size(width, height)
        rest = [h for h in heads if h not in chosen]
        if rest:
            figure.draw(figure.bar(rest, [float(values[h]) for h in rest], marker=plotext.marker("full", 39)))
        if chosen:
            picked = sorted(chosen)
            figure.draw(figure.bar(picked, [float(values[h]) for h in picked], marker=plotext.marker("full", MARK)))
        figure.ruler("x").ticks(heads)
        figure.ruler("y").lim(0, max(1e-6, float(values.max())))

    return _plotext_text(build)


def distribution_chart(values: np.ndarray, width: int, height: int) -> Text:
    def build(figure, plotext):
        figure.plot_size(width, height)
        figure.draw(figure.hist([float(v) for v in values], bins=min(12, max(3, len(values) // 2))))

    return _plotext_text(build)


class ChartsPanel(Static):
    """Per-layer curves, per-head bars, and the dataset distribution once more than one sample has run."""

    DEFAULT_CSS = "ChartsPanel { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self._frame: Frame | None = None
        self._dataset: tuple[str, np.ndarray] | None = None
        self._cache: OrderedDict[tuple, Text] = OrderedDict()

    def show(self, frame: Frame | None, dataset: tuple[str, np.ndarray] | None = None) -> None:
        self._frame, self._dataset = frame, dataset
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def _cached(self, key: tuple, make) -> Text:
        text = self._cache.get(key)
        if text is None:
            text = self._cache[key] = make()
            while len(self._cache) > 128:
                self._cache.popitem(last=False)
        return text

    def redraw(self) -> None:
        frame = self._frame
        width = max(self.size.width, MIN_WIDTH)
        if frame is None:
            self.update(Text("Charts appear once a sample has run.", style="dim"))
            return
        record, state = frame.record, frame.state
        height = max(MIN_HEIGHT, min(12, self.app.size.height // 5))
        base = (id(record), frame.spec.rows, width, height)
        layer_text = self._cached((*base, "layers", state.layer), lambda: layer_chart(frame, width, height))
        head_key = (*base, "head_maps", state.layer, state.head_mode, state.head)
        head_text = self._cached(head_key, lambda: head_chart(frame, width, height))
        where = "all layers" if state.layer is None else f"layer {state.layer}"
        parts = [
            heading("Per layer", "" if state.layer is None else f"layer {state.layer}"),
            legend(SERIES, width),
            layer_text,
            Text(f"Image share per head, {where}", style="bold"),
            head_text,
        ]
        if self._dataset is not None and len(self._dataset[1]) > 1:
            name, values = self._dataset
            key = ("dataset", name, len(values), float(values.sum()), width, height)
            parts += [
                Text(f"{name} across {len(values)} samples", style="bold"),
                self._cached(key, lambda: distribution_chart(values, width, height)),
            ]
        self.update(Group(*parts))
