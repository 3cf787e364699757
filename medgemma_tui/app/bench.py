"""The redraw after a navigation key, measured without a terminal: ``measure_nav_redraw``.

The path measured is the app's own: the key's state step, the map view and its metrics (cached by
spec, as in the app, so a revisited layer is a lookup) and the half-block strips of the picture. Only
Textual's compositor and the terminal write are left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from medgemma_tui.analysis.record_analysis import SampleAnalysis, analyse_record
from medgemma_tui.app import state as st
from medgemma_tui.app.frame import FrameMaker
from medgemma_tui.app.picture import Paint, picture_strips
from medgemma_tui.engine.record import AttentionRecord

# The keys a user presses while walking a record, in the order the benchmark presses them.
NAV_KEYS: tuple[tuple[str, Callable[[st.ViewState, AttentionRecord], st.ViewState]], ...] = (
    ("]", lambda s, r: st.step_layer(s, r, 1)),
    (".", lambda s, r: st.step_head(s, r, 1)),
    ("n", lambda s, r: st.step_row(s, r, 1)),
    ("]", lambda s, r: st.step_layer(s, r, 1)),
    ("g", st.cycle_head_mode),
    ("[", lambda s, r: st.step_layer(s, r, -1)),
    ("p", lambda s, r: st.step_row(s, r, -1)),
    (",", lambda s, r: st.step_head(s, r, -1)),
)


def measure_nav_redraw(
    record: AttentionRecord | SampleAnalysis,
    n: int = 100,
    width: int = 96,
    height: int = 48,
    colors: str = "truecolor",
    view: str = "answer",
) -> list[float]:
    """Milliseconds for each of ``n`` navigation keys, from key to the picture's strips.

    ``record`` may be an ``AttentionRecord`` (analysed here once, outside the timings) or a
    ``SampleAnalysis``. ``width`` x ``height`` is the picture's cell area (96 x 48 is the X-ray pane
    at 200x60); ``colors`` is "truecolor" or "256".
    """
    analysis = record if isinstance(record, SampleAnalysis) else analyse_record(record)
    rec = analysis.record
    maker = FrameMaker()
    state = st.show_record(st.ViewState(view=view), rec)
    paint = Paint(colors=colors)
    times = []
    for i in range(n):
        _, step = NAV_KEYS[i % len(NAV_KEYS)]
        start = time.perf_counter()
        state = step(state, rec)
        frame = maker.frame(analysis, state)
        picture_strips(rec.xray, frame.grid, paint, width, height)
        st.status_line(state, rec)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def measure_run_all(loaded, samples, config) -> float:
    """Seconds the app's run-all (``Session.run_many``, as the ``x`` key runs it) takes over ``samples``."""
    from pathlib import Path

    from medgemma_tui.app.session import Session
    from medgemma_tui.data.schema import Dataset

    rows = Dataset(samples=tuple(samples), path=Path("bench rows"), images_root=Path("."), columns=())
    session = Session.from_dataset(rows, model_source="demo", config=config)
    session.loaded = loaded
    start = time.perf_counter()
    session.run_many([item.key for item in session.items], lambda: False, lambda *args: None)
    return time.perf_counter() - start
