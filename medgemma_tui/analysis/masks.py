"""Anatomy masks of a PA chest radiograph: body, both lung fields, the cardiomediastinal region.

Conventions (those of the SCR masks of the JSRT films and the Montgomery and Shenzhen sets; van Ginneken
et al., Medical Image Analysis 2006): a *lung field* is the visible lung, without the heart and
mediastinum shadow; the *cardiomediastinum* is the heart and the mediastinum together. On a PA film the
patient's right lung is on the *image left*: ``lung_right`` is the lung field in the image's left half.

``anatomy_masks(image)`` has two stages:

1. *Lung fields and cardiomediastinum*: the small U-Net of ``lungnet`` reads the film resampled to a
   square and histogram-equalised; its class logits are interpolated back to a working copy of about
   384 px on the film's long side, each class keeps its largest component with holes filled.
2. *Body*: the classical reading below (air connected to the field's edge is not body), at the darkest
   air threshold whose body holds the network's lungs and mediastinum; those are then added to it.

Every film's masks carry a plausibility check (``quality``: ``"ok"`` or ``"implausible"``, with
``quality_reasons``): both lungs present, each lung field and the cardiomediastinum of a plausible
area, the lungs side by side with the cardiomediastinum between them, each lung taller than wide,
in one piece, neither lung's base far below both the other's and the heart's (a lung field run on across
its hemidiaphragm), and the network sure of its pixels. An implausible film gets the classical masks
below instead (``fallback`` starts with ``"classical"``), and metrics on its lungs and mediastinum
are NaN.

The classical masks (``classical_masks``) work on a copy shrunk to about 256 px on its long side:

1. *Field*: flat strips along the edges (collimation shutters, burnt-in frames) are taken out.
2. *Body*: dark pixels connected to the edge of the field are air; the body is the largest component
   of the rest with its holes filled (a burnt-in marker or text in the air is a separate, smaller
   component and drops out). "Dark" is tried at the Otsu threshold, then at 0.6 of it, then not at
   all (a film cropped inside the body has no air; its lungs touch the edge and would be taken for
   air): the first reading whose lungs pass the checks of step 4 wins.
3. *Lungs*: inside the eroded body, pixels darker than an Otsu threshold of the thorax; a strip on
   the mediastinal column (the brightest column of the body's middle) is cut so the trachea cannot
   join the lungs; the largest dark component on each side of that column is a lung, closed, with
   holes and each row's gaps filled (nodules, vessels and ribs inside the lung belong to it).
4. *Checks and fallbacks*: a lung must have 2.5-35% of the image area, be darker than the rest of
   the body by a tenth of the film's range, be taller than wide, touch the film's edge along less
   than 30% of its height, lie on its own side and stay inside the body; the two lungs must share
   half their rows. When one lung fails, the other is mirrored about the mediastinal column
   (``"mirrored_right"`` / ``"mirrored_left"``); when both fail, two ellipses at the usual place in
   the body's bounding box stand in (``"template"``); a body too small to be one becomes the whole
   field (``"body_field"``). Every fallback used is named in ``AnatomyMasks.fallback``, so nothing is
   replaced silently. The classical cardiomediastinum is the band between the two lungs.

The masks come back at the input's resolution. MONOCHROME1 inversion and DICOM windowing are the
caller's job: bright must mean dense.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from medgemma_tui.analysis.film import gray_unit
from medgemma_tui.analysis.grid import area_matrix as _area_matrix
from medgemma_tui.analysis.grid import area_resize, interp_resize
from medgemma_tui.analysis.grid import interp_matrix as _interp_matrix
from medgemma_tui.analysis.grid import resample as _resample

__all__ = ["AnatomyMasks", "anatomy_masks", "classical_masks"]

_WORK = 256  # long side of the working copy
_LUNG_MIN, _LUNG_MAX = 0.025, 0.35  # plausible area of one lung, as a fraction of the image


@dataclass
class AnatomyMasks:
    body: np.ndarray  # bool H x W
    lung_right: np.ndarray  # patient's right lung field: image left
    lung_left: np.ndarray  # patient's left lung field: image right
    fallback: tuple[str, ...] = field(default_factory=tuple)  # fallbacks used, empty when none
    mediastinum: np.ndarray | None = None  # heart and mediastinum; all False when not given
    quality: str = "ok"  # "ok" or "implausible"
    quality_reasons: tuple[str, ...] = field(default_factory=tuple)  # the checks that failed

    def __post_init__(self) -> None:
        if self.mediastinum is None:
            self.mediastinum = np.zeros_like(self.body, dtype=bool)

    @property
    def ok(self) -> bool:
        return self.quality == "ok"

    def areas(self) -> dict[str, float]:
        """Each mask's share of the film's area."""
        return {name: float(getattr(self, name).mean()) for name in ("body", "lung_right", "lung_left", "mediastinum")}

    @property
    def lungs(self) -> np.ndarray:
        return self.lung_right | self.lung_left

    def zones(self) -> dict[str, np.ndarray]:
        """Upper, middle and lower thirds of each lung by its own vertical extent.

        Keys ``"right_upper"``, ``"right_middle"``, ``"right_lower"``, ``"left_upper"``, ...; the
        row range ``[top, bottom]`` of each lung is cut at one and two thirds of its height.
        """
        out: dict[str, np.ndarray] = {}
        for side, lung in (("right", self.lung_right), ("left", self.lung_left)):
            rows = np.flatnonzero(lung.any(axis=1))
            r = np.arange(lung.shape[0])[:, None]
            if rows.size == 0:
                for z in ("upper", "middle", "lower"):
                    out[f"{side}_{z}"] = np.zeros_like(lung)
                continue
            top, height = rows[0], rows[-1] - rows[0] + 1
            cut1, cut2 = top + height / 3.0, top + 2.0 * height / 3.0
            out[f"{side}_upper"] = lung & (r < cut1)
            out[f"{side}_middle"] = lung & (r >= cut1) & (r < cut2)
            out[f"{side}_lower"] = lung & (r >= cut2)
        return out


# ---------------------------------------------------------------- preprocessing


def _gray(image: np.ndarray) -> np.ndarray:
    """The film in gray, stretched between its 0.5th and 99.5th percentiles to [0, 1]."""
    g = gray_unit(image)
    lo, hi = np.percentile(g, (0.5, 99.5))
    if hi <= lo:
        return np.zeros_like(g)
    return np.clip((g - lo) / (hi - lo), 0.0, 1.0)


def _otsu(values: np.ndarray, bins: int = 128) -> float:
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(1, hist.sum())
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(p)
    mu = np.cumsum(p * centres)
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0.0
    return float(edges[int(np.argmax(between)) + 1])


def _field(g: np.ndarray) -> np.ndarray:
    """False on flat strips along the edges (collimation, burnt-in frames), up to 15% deep."""
    h, w = g.shape
    keep = np.ones_like(g, dtype=bool)
    flat = 0.012
    for axis, n in ((0, h), (1, w)):
        prof_std = g.std(axis=1 - axis)
        limit = int(0.15 * n)
        for order in (range(limit), range(n - 1, n - 1 - limit, -1)):
            depth = 0
            for k in order:
                if prof_std[k] < flat:
                    depth += 1
                else:
                    break
            if depth:
                idx = list(order)[: depth + 3]  # and the edge blurred by smoothing
                if axis == 0:
                    keep[idx, :] = False
                else:
                    keep[:, idx] = False
    return keep


def _erode(mask: np.ndarray, r: float) -> np.ndarray:
    """Erosion by a disk of radius ``r`` (Euclidean distance transform; the image edge does not erode)."""
    return ndimage.distance_transform_edt(mask) > r


def _dilate(mask: np.ndarray, r: float) -> np.ndarray:
    return ~_erode(~mask, r) if mask.any() else mask


def _open(mask: np.ndarray, r: float) -> np.ndarray:
    return _dilate(_erode(mask, r), r)


def _close(mask: np.ndarray, r: float) -> np.ndarray:
    """Closing by a disk, padded so that shapes near the edge close as they would inside."""
    p = int(r) + 2
    return _erode(_dilate(np.pad(mask, p), r), r)[p:-p, p:-p]


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _fill_rows(mask: np.ndarray) -> np.ndarray:
    """Fill each row between its first and last pixel (lungs are convex along rows)."""
    out = mask.copy()
    any_row = mask.any(axis=1)
    if not any_row.any():
        return out
    first = np.argmax(mask, axis=1)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    cols = np.arange(mask.shape[1])[None, :]
    out |= any_row[:, None] & (cols >= first[:, None]) & (cols <= last[:, None])
    return out


# ---------------------------------------------------------------- body and lungs


def _body(g: np.ndarray, field_: np.ndarray, air_level: float) -> tuple[np.ndarray, list[str]]:
    """Body: the field less the dark region connected to its edge (dark: below ``air_level`` x Otsu)."""
    notes: list[str] = []
    thr = _otsu(g[field_])
    dark = (g < air_level * thr) | ~field_
    if not dark.any():
        return field_.copy(), notes
    seed = np.zeros_like(dark)
    seed[0, :] = seed[-1, :] = seed[:, 0] = seed[:, -1] = True
    seed |= ndimage.binary_dilation(~field_) & field_
    lab, _ = ndimage.label(dark)
    air_labels = np.unique(lab[seed & dark])
    air = np.isin(lab, air_labels[air_labels > 0])
    body = _open(~air & field_, 2)
    body = ndimage.binary_fill_holes(_largest(body))
    if body.mean() < 0.2 * field_.mean():
        notes.append("body_field")
        body = field_.copy()
    return body, notes


def _midline(g: np.ndarray, body: np.ndarray, rows: slice) -> int:
    cols = np.flatnonzero(body.any(axis=0))
    left, right = cols[0], cols[-1]
    lo = int(left + 0.35 * (right - left))
    hi = int(left + 0.65 * (right - left)) + 1
    prof = ndimage.uniform_filter1d(g[rows, lo:hi].mean(axis=0), size=5)
    return lo + int(np.argmax(prof))


_MIN_CONTRAST = 0.1  # lung darker than the rest of the body by this much (of the film's range)


def _plausible(lung: np.ndarray, body: np.ndarray, side: str, mid: int, g: np.ndarray) -> bool:
    area = lung.mean()
    if not (_LUNG_MIN <= area <= _LUNG_MAX):
        return False
    if (lung & ~body).sum() > 0.05 * lung.sum():
        return False
    rest = body & ~lung
    if rest.any() and np.median(g[rest]) - np.median(g[lung]) < _MIN_CONTRAST:
        return False
    ys, xs = np.nonzero(lung)
    height = np.ptp(ys) + 1
    if height < 0.8 * (np.ptp(xs) + 1):  # lungs are taller than wide
        return False
    edge = lung[0, :].sum() + lung[-1, :].sum() + lung[:, 0].sum() + lung[:, -1].sum()
    if edge > 0.3 * height:  # air along a side of the film, not a lung cut by a crop
        return False
    return xs.mean() < mid if side == "right" else xs.mean() > mid


def _overlap_rows(a: np.ndarray, b: np.ndarray) -> float:
    """Shared row range of two masks as a fraction of the shorter one's."""
    ra, rb = np.flatnonzero(a.any(axis=1)), np.flatnonzero(b.any(axis=1))
    shared = min(ra[-1], rb[-1]) - max(ra[0], rb[0]) + 1
    return max(0, shared) / min(ra.size, rb.size)


def _template(body: np.ndarray, mid: int, side: str) -> np.ndarray:
    rows = np.flatnonzero(body.any(axis=1))
    cols = np.flatnonzero(body.any(axis=0))
    top, bottom = rows[0], rows[-1]
    h = bottom - top
    left, right = cols[0], cols[-1]
    cy = top + 0.42 * h
    ry = 0.28 * h
    if side == "right":
        cx, rx = (left + mid) / 2.0, 0.36 * (mid - left)
    else:
        cx, rx = (mid + right) / 2.0, 0.36 * (right - mid)
    y, x = np.ogrid[: body.shape[0], : body.shape[1]]
    return (((x - cx) / max(rx, 1)) ** 2 + ((y - cy) / max(ry, 1)) ** 2 <= 1) & body


def _lungs(g: np.ndarray, body: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    h, w = g.shape
    notes: list[str] = []
    rows = np.flatnonzero(body.any(axis=1))
    top, bottom = rows[0], rows[-1]
    thorax_rows = slice(top + int(0.1 * (bottom - top)), top + int(0.7 * (bottom - top)) + 1)
    mid = _midline(g, body, thorax_rows)
    inner = _erode(body, max(2, w // 64))
    region = inner
    vals = g[region & (np.arange(h)[:, None] < top + 0.8 * (bottom - top))]
    thr = _otsu(vals) if vals.size > 100 else 0.5
    dark = (g < thr) & region
    half = max(2, w // 80)
    dark[:, max(0, mid - half): mid + half + 1] = False
    # the trachea: a dark column over the spine in the neck and upper thorax, medial to the apices
    upper = slice(0, top + int(0.35 * (bottom - top)) + 1)
    dark[upper, max(0, mid - w // 14): mid + w // 14 + 1] = False
    dark = _open(dark, max(1, w // 128))
    lab, n = ndimage.label(dark)
    found: dict[str, np.ndarray | None] = {"right": None, "left": None}
    if n:
        idx = np.arange(1, n + 1)
        sizes = ndimage.sum_labels(np.ones_like(g), lab, idx)
        cy, cx = np.array(ndimage.center_of_mass(dark, lab, idx)).T
        low = top + 0.85 * (bottom - top)
        for side, on_side in (("right", cx < mid), ("left", cx > mid)):
            ok = on_side & (cy < low)
            if ok.any():
                best = idx[ok][int(np.argmax(sizes[ok]))]
                lung = lab == best
                lung = _close(lung, max(2, w // 40))
                lung = _fill_rows(ndimage.binary_fill_holes(lung))
                keep_side = np.arange(w)[None, :] < mid if side == "right" else np.arange(w)[None, :] > mid
                found[side] = lung & body & keep_side
    good = {s: m is not None and _plausible(m, body, s, mid, g) for s, m in found.items()}
    if good["right"] and good["left"] and _overlap_rows(found["right"], found["left"]) < 0.5:
        smaller = "right" if found["right"].sum() < found["left"].sum() else "left"
        good[smaller] = False  # two lungs sit side by side
    for side, other in (("right", "left"), ("left", "right")):
        if not good[side] and good[other]:
            notes.append(f"mirrored_{side}")
            src = found[other]
            cols = np.arange(w)
            mirrored = np.zeros_like(src)
            src_cols = 2 * mid - cols
            valid = (src_cols >= 0) & (src_cols < w)
            mirrored[:, valid] = src[:, src_cols[valid]]
            found[side] = mirrored & body
    if not good["right"] and not good["left"]:
        notes.append("template")
        found = {s: _template(body, mid, s) for s in ("right", "left")}
    return found["right"], found["left"], notes, mid


def classical_masks(image: np.ndarray) -> AnatomyMasks:
    """Body and lung masks of a PA chest film by thresholds and shape checks alone (no network)."""
    g_full = _gray(image)
    h0, w0 = g_full.shape
    scale = _WORK / max(h0, w0)
    if scale < 1:
        h, w = max(16, round(h0 * scale)), max(16, round(w0 * scale))
        g = _resample(g_full, _area_matrix(h, h0), _area_matrix(w, w0)).astype(np.float32)
    else:
        g, (h, w) = g_full, (h0, w0)
    g = ndimage.gaussian_filter(g, max(1.0, w / 256.0))
    field_ = _field(g)
    if field_.mean() < 0.5:
        field_ = np.ones_like(field_)
    # Air outside the body is darker than the lungs on most films, but grey on some (scatter, processing):
    # try the loose air threshold first; if the lungs found inside that body are implausible (a cropped
    # film whose lungs touch the edge and were flooded as air), a strict one.
    best = None
    for air_level in (1.0, 0.6, 0.0):  # 0: no air at all (a film cropped inside the body)
        body, notes = _body(g, field_, air_level)
        if air_level == 1.0 and (_fill_rows(body) & ~body).mean() > 0.06:
            continue  # air flooded into the torso: the lungs were taken for air
        lung_r, lung_l, lung_notes, _ = _lungs(g, body)
        notes = notes + lung_notes
        if best is None or len(notes) < len(best[3]):
            best = (body, lung_r, lung_l, notes)
        if not notes:
            break
    body, lung_r, lung_l, notes = best

    if (h, w) != (h0, w0):
        up_r, up_c = _interp_matrix(h0, h), _interp_matrix(w0, w)

        def up(m: np.ndarray) -> np.ndarray:
            return _resample(m, up_r, up_c) >= 0.5

        body, lung_r, lung_l = up(body), up(lung_r), up(lung_l)
        lung_r &= body
        lung_l &= body
    return AnatomyMasks(body=body, lung_right=lung_r, lung_left=lung_l, fallback=tuple(notes),
                        mediastinum=_between(lung_r, lung_l, body))


def _between(lung_r: np.ndarray, lung_l: np.ndarray, body: np.ndarray) -> np.ndarray:
    """The band between the two lungs over the rows both span: the classical cardiomediastinum."""
    out = np.zeros_like(body)
    rows = np.flatnonzero(lung_r.any(axis=1) & lung_l.any(axis=1))
    if rows.size == 0:
        return out
    w = body.shape[1]
    sub_r, sub_l = lung_r[rows], lung_l[rows]
    right_edge = w - 1 - np.argmax(sub_r[:, ::-1], axis=1)  # medial edge of the right lung
    left_edge = np.argmax(sub_l, axis=1)  # medial edge of the left lung
    cols = np.arange(w)[None, :]
    out[rows] = (cols > right_edge[:, None]) & (cols < left_edge[:, None])
    return out & body & ~lung_r & ~lung_l



# ---------------------------------------------------------------- the network's masks

_NET_WORK = 384  # long side of the working copy the network's logits are interpolated to
_FIELD_MIN, _FIELD_MAX = 0.02, 0.35  # plausible area of one lung field, as a fraction of the film
_MED_MIN, _MED_MAX = 0.015, 0.35  # and of the cardiomediastinum
_MIN_PIECE = 0.8  # a class's largest component holds at least this share of its pixels
_MIN_SURE = 0.8  # mean top-class probability over the foreground the network predicts


def anatomy_masks(image: np.ndarray, net=None, method: str = "lungnet") -> AnatomyMasks:
    """Body, lung-field and cardiomediastinum masks of a PA chest film, at the film's size.

    ``image``: 2-D of any dtype and range, or H x W x 3 / x 4. ``method="classical"`` skips the
    network. Same film, same masks: the network runs in eval mode (batch-norm statistics fixed).
    """
    if method == "classical":
        return classical_masks(image)
    if method != "lungnet":
        raise ValueError(f"unknown anatomy method {method!r}: expected 'lungnet' or 'classical'")
    from medgemma_tui.analysis import lungnet

    g_full = gray_unit(image)
    h0, w0 = g_full.shape
    scale = min(1.0, _NET_WORK / max(h0, w0))
    h, w = max(16, round(h0 * scale)), max(16, round(w0 * scale))
    g = area_resize(g_full, (h, w)) if (h, w) != (h0, w0) else g_full
    logits = lungnet.predict_logits(g, net)  # [4, SIZE, SIZE]
    work = np.stack([interp_resize(c, (h, w)) for c in logits])  # [4, h, w]
    work = work - work.max(axis=0, keepdims=True)
    prob = np.exp(work)
    prob /= prob.sum(axis=0, keepdims=True)
    label = prob.argmax(axis=0)
    reasons: list[str] = []
    parts = {}
    for k, name in ((1, "lung_right"), (2, "lung_left"), (3, "mediastinum")):
        raw = label == k
        piece = ndimage.binary_fill_holes(_largest(raw)) if raw.any() else raw
        if raw.any() and (piece & raw).sum() < _MIN_PIECE * raw.sum():
            reasons.append(f"{name}_in_pieces")
        parts[name] = piece
    parts["lung_right"] &= ~parts["mediastinum"]
    parts["lung_left"] &= ~parts["mediastinum"] & ~parts["lung_right"]
    fg = label > 0
    if fg.any() and prob.max(axis=0)[fg].mean() < _MIN_SURE:
        reasons.append("unsure")
    reasons += _implausible(parts["lung_right"], parts["lung_left"], parts["mediastinum"])
    if reasons:
        fallen = classical_masks(image)
        fallen.fallback = ("classical", *fallen.fallback)
        fallen.quality, fallen.quality_reasons = "implausible", tuple(dict.fromkeys(reasons))
        return fallen
    gn, field_ = _work_field(g)
    for name in parts:  # a collimation shutter or a burnt-in frame is no anatomy
        parts[name] &= field_
    body = _net_body(gn, field_, parts["lung_right"] | parts["lung_left"] | parts["mediastinum"])
    if (h, w) != (h0, w0):
        ri = np.minimum((np.arange(h0) + 0.5) * h / h0, h - 1).astype(np.intp)
        ci = np.minimum((np.arange(w0) + 0.5) * w / w0, w - 1).astype(np.intp)
        code = (body.astype(np.uint8) << 3) | (parts["lung_right"] << 2) | (parts["lung_left"] << 1)
        code = (code | parts["mediastinum"]).astype(np.uint8)[ri][:, ci]  # nearest: one gather per axis
        body, parts = code >= 8, {"lung_right": (code & 4) > 0, "lung_left": (code & 2) > 0,
                                  "mediastinum": (code & 1) > 0}
    return AnatomyMasks(body=body, lung_right=parts["lung_right"], lung_left=parts["lung_left"],
                        mediastinum=parts["mediastinum"])


def _implausible(lung_r: np.ndarray, lung_l: np.ndarray, med: np.ndarray) -> list[str]:
    """Which of the plausibility checks the three masks fail (empty: all pass)."""
    out: list[str] = []
    checks = (("lung_right", lung_r, _FIELD_MIN, _FIELD_MAX), ("lung_left", lung_l, _FIELD_MIN, _FIELD_MAX),
              ("mediastinum", med, _MED_MIN, _MED_MAX))
    for name, m, lo, hi in checks:
        if not m.any():
            out.append(f"no_{name}")
        elif not lo <= m.mean() <= hi:
            out.append(f"{name}_area")
    if out:
        return out
    for name, m in (("lung_right", lung_r), ("lung_left", lung_l)):
        ys, xs = np.nonzero(m)
        if np.ptp(ys) + 1 < 0.8 * (np.ptp(xs) + 1):
            out.append(f"{name}_shape")
    if _overlap_rows(lung_r, lung_l) < 0.5:
        out.append("lungs_not_side_by_side")
    xr, xm, xl = (np.nonzero(m)[1].mean() for m in (lung_r, med, lung_l))
    if not xr < xm < xl:
        out.append("sides")
    out += _below_diaphragm(lung_r, lung_l, med)
    return out


# A lung field whose base lies lower than the other lung's base and the cardiomediastinum's, each by more than
# this share of its own height, has run on across its hemidiaphragm (on the left, into the gastric bubble).
# The left hemidiaphragm normally sits up to a few centimetres lower than the right. Over the 52 films of the
# lung-mask set and the real-film folder whose masks pass the other checks, the smaller of the two overruns
# is at most 0.14 (a deep left costophrenic recess); the SIIM film, whose left lung field runs on below the
# diaphragm into the gastric bubble, has 0.155. A narrow margin: the check flags the gross spill, no more.
_BELOW_DIAPHRAGM = 0.15


def _below_diaphragm(lung_r: np.ndarray, lung_l: np.ndarray, med: np.ndarray) -> list[str]:
    """``{lung}_below_diaphragm`` for each lung field that crosses its hemidiaphragm (``_BELOW_DIAPHRAGM``)."""
    out = []
    heart_base = np.nonzero(med)[0].max()
    for name, lung, other in (("lung_right", lung_r, lung_l), ("lung_left", lung_l, lung_r)):
        rows = np.nonzero(lung)[0]
        height = np.ptp(rows) + 1
        base = rows.max()
        if min(base - np.nonzero(other)[0].max(), base - heart_base) > _BELOW_DIAPHRAGM * height:
            out.append(f"{name}_below_diaphragm")
    return out


def _work_field(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The working copy as the classical steps read it (unit range, smoothed) and its exposed field."""
    lo, hi = np.percentile(g, (0.5, 99.5))
    gn = np.clip((g - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(g)
    gn = ndimage.gaussian_filter(gn, max(1.0, g.shape[1] / 256.0))
    field_ = _field(gn)
    if field_.mean() < 0.5:
        field_ = np.ones_like(field_)
    return gn, field_


def _net_body(gn: np.ndarray, field_: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The classical body at the darkest air threshold that keeps the thorax, with the thorax added."""
    body = field_
    for air_level in (1.0, 0.6):
        candidate, _ = _body(gn, field_, air_level)
        if (inside & ~candidate).sum() <= 0.03 * inside.sum():
            body = candidate
            break
    return ndimage.binary_fill_holes(body | _close(inside, 3)) & field_
