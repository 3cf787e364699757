"""One screenful of one record: the map for a view state, its metrics, and the cell zones. No textual.

Views and metrics are pure functions of the record and the state, so they are cached by the analysis
and the ``MapSpec`` they were made from (``caches.HeldCache``, which holds the analysis it keys):
stepping back to a layer already seen costs a dictionary lookup; ``forget`` lets an analysis go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgemma_tui.analysis.grid import mask_to_grid
from medgemma_tui.analysis.record_analysis import SampleAnalysis, anatomy_grids, view_metrics
from medgemma_tui.analysis.views import MapSpec, MapView, compute_view
from medgemma_tui.app.caches import HeldCache
from medgemma_tui.app.state import ViewState, map_spec, unseeing_reason
from medgemma_tui.engine.record import AttentionRecord

ZONE_NAMES = {  # R and L are the patient's sides: the right lung is on the image left of a PA film
    "right_upper": "R lung, upper zone",
    "right_middle": "R lung, middle zone",
    "right_lower": "R lung, lower zone",
    "left_upper": "L lung, upper zone",
    "left_middle": "L lung, middle zone",
    "left_lower": "L lung, lower zone",
    "mediastinum": "heart and mediastinum",
    "body": "body, outside the lungs and mediastinum",
    "outside": "outside the body",
}


@dataclass
class Frame:
    analysis: SampleAnalysis
    state: ViewState
    spec: MapSpec
    view: MapView
    metrics: dict[str, float]

    @property
    def record(self) -> AttentionRecord:
        return self.analysis.record

    @property
    def grid(self) -> np.ndarray:
        return self.view.grid


class FrameMaker:
    """Makes frames for the analyses it is shown, with bounded caches of views and metrics (``size``
    frames) and of mask grids (``grids`` analyses), each holding the analysis it keys."""

    def __init__(self, size: int = 256, grids: int = 64) -> None:
        self.size = size
        self._views: HeldCache[tuple[MapView, dict[str, float]]] = HeldCache(size)
        self._grids: HeldCache[dict[str, Any]] = HeldCache(grids)

    def mask_grids(self, analysis: SampleAnalysis) -> dict[str, Any]:
        """The masks' coverage of the grid as the metrics take it (``analysis.record_analysis.anatomy_grids``:
        none of the lungs and mediastinum for masks that failed their check), and each cell's zone name
        (``zone_names``); computed once per analysis."""

        def make() -> dict[str, Any]:
            masks = analysis.masks
            shape = analysis.record.grid
            grids: dict[str, Any] = {"anatomy": anatomy_grids(masks, shape), "zone_names": None,
                                     "body": None, "lungs": None}
            if masks is not None:
                grids["body"] = grids["anatomy"]["body"]
                grids["lungs"] = mask_to_grid(masks.lungs, shape)
                grids["zone_names"] = zone_grid(masks, shape)
            return grids

        return self._grids.get(analysis, "grids", make)

    def frame(self, analysis: SampleAnalysis, state: ViewState) -> Frame:
        """The frame of ``state``; a ValueError saying why for a state whose rows cannot see the image
        (their map would be uniform by construction, with metrics that mean nothing)."""
        record = analysis.record
        reason = unseeing_reason(state, record)
        if reason is not None:
            raise ValueError(reason)
        spec = map_spec(state, record)

        def make() -> tuple[MapView, dict[str, float]]:
            view = compute_view(record, spec)
            grids = self.mask_grids(analysis)
            return view, view_metrics(record, view, analysis.box_grid, analysis.pointing_cells, grids["anatomy"])

        view, metrics = self._views.get(analysis, spec, make)
        return Frame(analysis=analysis, state=state, spec=spec, view=view, metrics=metrics)

    def forget(self, analysis: SampleAnalysis | None = None) -> None:
        """Let ``analysis`` go (every analysis with none named): the session dropped its record."""
        self._views.forget(analysis)
        self._grids.forget(analysis)

    def held(self) -> int:
        """How many analyses the caches keep alive."""
        return len(self._views.held() | self._grids.held())


def zone_grid(masks, shape: tuple[int, int]) -> np.ndarray:
    """[rows, cols] array of zone keys (see ZONE_NAMES): the zone covering most of each cell."""
    zones = masks.zones()
    names = [*zones, "mediastinum", "body", "outside"]
    body = mask_to_grid(masks.body, shape)
    lungs = mask_to_grid(masks.lungs, shape)
    mediastinum = mask_to_grid(masks.mediastinum, shape)
    cover = [mask_to_grid(zones[n], shape) for n in zones]
    cover.append(mediastinum)
    cover.append(np.clip(body - lungs - mediastinum, 0, 1))
    cover.append(1.0 - body)
    return np.asarray(names, dtype=object)[np.argmax(np.stack(cover), axis=0)]


def cell_zone(frame: Frame, zones: np.ndarray | None, cell: tuple[int, int]) -> str:
    """Where a cell lies: the anatomical zone from the masks, or the image region without them."""
    r, c = cell
    if zones is not None:
        return ZONE_NAMES[str(zones[r, c])]
    rows, cols = frame.grid.shape
    vertical = ("upper", "middle", "lower")[min(2, 3 * r // rows)]
    side = "image left" if c < cols / 2 else "image right"
    return f"{side}, {vertical} third (no masks)"


def cell_text(frame: Frame, zones: np.ndarray | None, cell: tuple[int, int], width: int | None = None) -> str:
    """``cell (9,9) 0.0040 = 1.02x uniform · R lung, middle zone``; where that is wider than ``width``,
    the short form ``(9,9) 1.02x · R lung, middle zone``, so the zone is not the part that is cut."""
    r, c = cell
    value = float(frame.grid[r, c])
    lift = value * frame.grid.size
    zone = cell_zone(frame, zones, cell)
    text = f"cell ({r},{c}) {value:.4f} = {lift:.2f}x uniform · {zone}"
    if width is not None and len(text) > width:
        text = f"({r},{c}) {lift:.2f}x · {zone}"
    return text


def fmt(value: float) -> str:
    if value is None or isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return f"{value:.3f}"
