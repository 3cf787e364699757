"""Metrics of one attention map over the image grid, and comparisons of two maps.

Every function takes a non-negative ``R x C`` array (16x16 for MedGemma: one cell per image token,
row 0 at the top of the image, column 0 at the image's left) and normalises it to sum 1 itself, so
raw attention weights, sink-corrected maps and probabilities are all accepted. Metrics are computed in
float64 whatever the input dtype.

Conventions, fixed here once:

- *Cell coordinates*: cell ``(i, j)`` covers the unit square ``[i, i+1) x [j, j+1)``; its centre is
  ``(i + 0.5, j + 0.5)``. ``com_row``/``com_col`` use centres, so a uniform 16x16 map has its centre
  of mass at ``(8.0, 8.0)``.
- *Halves and thirds* are cut in that continuous coordinate: the left half is ``col < C/2``, the
  apical third ``row < R/3``, the basal third ``row >= 2R/3``. A cell cut by a boundary gives its mass
  to both sides in proportion to its area on each (with 16 rows, row 5 gives 1/3 to apical and 2/3 to
  middle; row 10 gives 2/3 to middle and 1/3 to basal). Halves and thirds therefore sum to 1 exactly.
- *Masks* (``body``, ``lungs``, ``mediastinum``) are per-cell coverage fractions in [0, 1] as given by
  ``grid.mask_to_grid``; for ``inside_body_ratio``, ``inside_lungs_ratio`` and
  ``inside_mediastinum_ratio`` a cell counts as inside where its coverage is >= 0.5. Without the mask
  the ratio is NaN (the caller passes no lung or mediastinum mask for a film whose masks failed their
  plausibility check).
- *Zones* (``right_upper`` ... ``left_lower``: thirds of each lung field's height, ``AnatomyMasks.zones``)
  are coverage grids too; ``{zone}_fraction`` is the mass on the zone with every cell weighted by its
  coverage, like ``mass_in_box``. Without zones they are NaN.
- *Box* is also a coverage grid. ``mass_in_box`` weights every cell's mass by its coverage (exact for
  an area-resampled map, and a uniform map gets ``mass_in_box_lift == 1``). The set-based box metrics
  (``cnr``, ``iou_top10``, ``auroc``) use the cells with coverage >= 0.5, or, for a box too small to
  cover half of any cell, the cells it touches at all.
- *Pointing game* (Zhang et al. 2016): ``pointing`` is the bool grid of the hit cells by the one rule
  of ``grounding.pointing_cells`` (centre within the tolerance, in film pixels, of a box, or part of a
  box inside the cell); ``pointing_hit`` asks whether the argmax cell (first in row-major order on
  ties) is one of them, and ``pointing_chance`` is their fraction: the hit rate of a uniformly random
  top cell by the same rule. Without ``pointing`` (a coverage grid alone has no pixel geometry) both
  are NaN rather than scored by another rule.
- *Top 10%* is the ``ceil(0.1 * R * C)`` largest cells (26 of 256), ties broken in row-major order.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["map_metrics", "js_divergence", "pearson", "top_iou", "METRIC_NAMES", "BOX_METRIC_NAMES", "ZONES",
           "ZONE_FRACTION_NAMES"]

ZONES = ("right_upper", "right_middle", "right_lower", "left_upper", "left_middle", "left_lower")
ZONE_FRACTION_NAMES = tuple(f"{z}_fraction" for z in ZONES)
METRIC_NAMES = (
    "entropy",
    "entropy_norm",
    "focus",
    "top10_mass",
    "gini",
    "inside_body_ratio",
    "inside_lungs_ratio",
    "inside_mediastinum_ratio",
    "border_fraction",
    "left_fraction",
    "right_fraction",
    "apical_fraction",
    "middle_fraction",
    "basal_fraction",
    *ZONE_FRACTION_NAMES,
    "com_row",
    "com_col",
    "spread",
)
BOX_METRIC_NAMES = ("pointing_hit", "pointing_chance", "mass_in_box", "mass_in_box_lift", "cnr", "iou_top10", "auroc")

_INSIDE = 0.5  # coverage at which a cell counts as inside a mask


def _normalise(grid: np.ndarray) -> np.ndarray:
    p = np.asarray(grid, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"attention map must be 2-D, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("attention map has NaN or infinite values")
    if p.min() < 0:
        raise ValueError(f"attention map has negative values (min {p.min():.3g})")
    total = p.sum()
    if total <= 0:
        raise ValueError("attention map sums to zero")
    return p / total


def _coverage(mask: np.ndarray | None, shape: tuple[int, int], name: str) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask, dtype=np.float64)
    if m.shape != shape:
        raise ValueError(f"{name} coverage has shape {m.shape}, the map has {shape}")
    return m


def _axis_split(n: int, cuts: tuple[float, ...]) -> np.ndarray:
    """Fraction of each unit interval [i, i+1) falling into each piece between ``cuts``: (pieces, n)."""
    edges = np.array((0.0, *cuts, float(n)))
    lo = np.arange(n, dtype=np.float64)
    hi = lo + 1.0
    out = np.empty((len(edges) - 1, n))
    for k in range(len(edges) - 1):
        out[k] = np.clip(np.minimum(hi, edges[k + 1]) - np.maximum(lo, edges[k]), 0.0, 1.0)
    return out


def _top_cells(p: np.ndarray, frac: float) -> np.ndarray:
    flat = p.ravel()
    k = max(1, math.ceil(frac * flat.size - 1e-9))
    order = np.argsort(-flat, kind="stable")  # row-major order among equal values
    sel = np.zeros(flat.size, dtype=bool)
    sel[order[:k]] = True
    return sel.reshape(p.shape)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else math.nan


def _auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUROC of ``scores`` for ``labels``; tied scores count one half."""
    pos = scores[labels]
    neg = scores[~labels]
    if pos.size == 0 or neg.size == 0:
        return math.nan
    # average ranks (1-based) with ties shared
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[labels].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def map_metrics(
    grid: np.ndarray,
    body: np.ndarray | None = None,
    lungs: np.ndarray | None = None,
    box: np.ndarray | None = None,
    pointing: np.ndarray | None = None,
    mediastinum: np.ndarray | None = None,
    zones: dict[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Scalar metrics of one attention map (see the module docstring for every convention).

    ``body``, ``lungs``, ``mediastinum``, ``box`` and each of ``zones`` (keyed by ``ZONES``) are
    per-cell coverage fractions of the same shape as ``grid``; ``pointing`` is the bool grid of the
    pointing game's hit cells (``grounding.pointing_cells``).
    Returns the names in ``METRIC_NAMES``, plus ``BOX_METRIC_NAMES`` when ``box`` is given. Metrics
    that cannot be defined (a ratio without its mask, a CNR with a constant background, an AUROC with
    no cell in or out of the box) are NaN.
    """
    p = _normalise(grid)
    rows, cols = p.shape
    n = p.size
    out: dict[str, float] = {}

    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum())
    out["entropy"] = entropy
    out["entropy_norm"] = entropy / math.log(n) if n > 1 else 0.0
    out["focus"] = float(p.max())
    out["top10_mass"] = float(p[_top_cells(p, 0.1)].sum())
    sorted_p = np.sort(p.ravel())
    idx = np.arange(1, n + 1)
    out["gini"] = float((2.0 * (idx * sorted_p).sum()) / n - (n + 1.0) / n)

    for name, mask in (("inside_body_ratio", body), ("inside_lungs_ratio", lungs),
                       ("inside_mediastinum_ratio", mediastinum)):
        cov = _coverage(mask, p.shape, name)
        out[name] = math.nan if cov is None else float(p[cov >= _INSIDE].sum())

    ring = np.zeros(p.shape, dtype=bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    out["border_fraction"] = float(p[ring].sum())

    col_mass = p.sum(axis=0)
    halves = _axis_split(cols, (cols / 2.0,)) @ col_mass
    out["left_fraction"], out["right_fraction"] = float(halves[0]), float(halves[1])
    row_mass = p.sum(axis=1)
    thirds = _axis_split(rows, (rows / 3.0, 2.0 * rows / 3.0)) @ row_mass
    out["apical_fraction"], out["middle_fraction"], out["basal_fraction"] = (float(t) for t in thirds)
    for zone, name in zip(ZONES, ZONE_FRACTION_NAMES, strict=True):
        cov = _coverage(None if zones is None else zones.get(zone), p.shape, zone)
        out[name] = math.nan if cov is None else float((p * np.clip(cov, 0.0, 1.0)).sum())

    rc = np.arange(rows) + 0.5
    cc = np.arange(cols) + 0.5
    com_r = float(row_mass @ rc)
    com_c = float(col_mass @ cc)
    out["com_row"], out["com_col"] = com_r, com_c
    d2 = (rc[:, None] - com_r) ** 2 + (cc[None, :] - com_c) ** 2
    out["spread"] = float(math.sqrt(max(0.0, (p * d2).sum())))

    cov_box = _coverage(box, p.shape, "box")
    if cov_box is not None:
        hits = _coverage(pointing, p.shape, "pointing")
        out.update(_box_metrics(p, np.clip(cov_box, 0.0, 1.0), None if hits is None else hits > 0))
    return out


def _box_metrics(p: np.ndarray, cov: np.ndarray, hits: np.ndarray | None) -> dict[str, float]:
    out: dict[str, float] = {}
    touched = cov > 0
    inside = cov >= _INSIDE
    if not inside.any():
        inside = touched
    if hits is None:
        out["pointing_hit"] = out["pointing_chance"] = math.nan
    else:
        argmax = np.unravel_index(int(np.argmax(p)), p.shape)
        out["pointing_hit"] = 1.0 if hits[argmax] else 0.0
        out["pointing_chance"] = float(hits.mean())
    area = cov.sum() / cov.size
    mass = float((p * cov).sum())
    out["mass_in_box"] = mass
    out["mass_in_box_lift"] = mass / area if area > 0 else math.nan
    if inside.any() and (~inside).any():
        outside_vals = p[~inside]
        sd = outside_vals.std()
        out["cnr"] = float((p[inside].mean() - outside_vals.mean()) / sd) if sd > 0 else math.nan
    else:
        out["cnr"] = math.nan
    out["iou_top10"] = _iou(_top_cells(p, 0.1), inside) if inside.any() else math.nan
    out["auroc"] = _auroc(p.ravel(), inside.ravel())
    return out


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two maps in nats (symmetric, 0 for equal maps, at most ln 2)."""
    a, b = _normalise(p), _normalise(q)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    m = 0.5 * (a + b)

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float((x[nz] * np.log(x[nz] / m[nz])).sum())

    return max(0.0, 0.5 * kl(a) + 0.5 * kl(b))


def pearson(p: np.ndarray, q: np.ndarray) -> float:
    """Pearson correlation of the cells of two maps; NaN when either map is constant."""
    a = np.asarray(p, dtype=np.float64).ravel()
    b = np.asarray(q, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps differ in size: {a.size} vs {b.size}")
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else math.nan


def top_iou(p: np.ndarray, q: np.ndarray, frac: float = 0.1) -> float:
    """IoU of the ``ceil(frac * cells)`` largest cells of each map (ties in row-major order)."""
    a, b = _normalise(p), _normalise(q)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    return _iou(_top_cells(a, frac), _top_cells(b, frac))
