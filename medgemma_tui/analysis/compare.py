"""One map against another over the part of the film both cover: JS, Pearson, top-10% IoU, metric deltas.

Used by the robustness study (a perturbed film's map against the original's); ``regrid`` moves a map's
mass from one frame of the film onto another by area (a crop, a padded square; ``analysis.grid``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medgemma_tui.analysis.grid import mask_to_grid, regrid
from medgemma_tui.analysis.grounding import POINTING_TOLERANCE_PX, boxes_to_grid, pointing_cells
from medgemma_tui.analysis.metrics import BOX_METRIC_NAMES, METRIC_NAMES, js_divergence, map_metrics, pearson, top_iou

TOP_FRACTION = 0.1


def compare_maps(
    reference: np.ndarray,
    perturbed: np.ndarray,
    frame: tuple[int, int, int, int],
    film_size: tuple[int, int],
    masks=None,
    boxes=(),
    pointing_tolerance_px: float = POINTING_TOLERANCE_PX,
) -> dict[str, Any]:
    """JS, Pearson, top-10% IoU and metric deltas of a perturbed map against the reference map.

    ``reference`` covers the whole film (``film_size`` = (width, height)); ``perturbed`` covers
    ``frame`` = (x0, y0, x1, y1) in film pixels (the film itself, a padded square around it or a
    cropped square inside it). Both are area-resampled onto the same grid over the film's part inside
    the frame, renormalised, and compared there; masks and boxes are cut to that region, and the
    pointing game scores both maps by the row metrics' rule (``grounding.pointing_cells``) on it.
    """
    width, height = film_size
    region = (max(frame[0], 0), max(frame[1], 0), min(frame[2], width), min(frame[3], height))
    shape = np.asarray(reference).shape
    ref = regrid(reference, (0, 0, width, height), region, shape)
    new_raw = regrid(perturbed, frame, region, shape)
    total = float(np.asarray(perturbed, dtype=np.float64).sum())
    inside = float(new_raw.sum())
    x0, y0, x1, y1 = region
    body = lungs = box = pointing = None
    if masks is not None:
        body = mask_to_grid(masks.body[y0:y1, x0:x1], shape)
        lungs = mask_to_grid(masks.lungs[y0:y1, x0:x1], shape)
    if boxes:
        shifted = [(bx - x0, by - y0, bw, bh) for bx, by, bw, bh in boxes]
        box = boxes_to_grid(shifted, (x1 - x0, y1 - y0), shape)
        pointing = pointing_cells(shifted, (x1 - x0, y1 - y0), shape, pointing_tolerance_px)
    before = map_metrics(ref, body, lungs, box, pointing)
    after = map_metrics(new_raw, body, lungs, box, pointing)
    names = [n for n in (*METRIC_NAMES, *BOX_METRIC_NAMES) if n in before]
    return {
        "compared_on": "film" if region == (0, 0, width, height) else "centre square",
        "region": list(region),
        "mass_outside_film": 1.0 - inside / total if total > 0 else None,
        "js": js_divergence(ref, new_raw),
        "pearson": pearson(ref, new_raw),
        "top_iou": top_iou(ref, new_raw, TOP_FRACTION),
        "metrics": {n: after[n] for n in names},
        "metric_deltas": {n: after[n] - before[n] for n in names},
    }
