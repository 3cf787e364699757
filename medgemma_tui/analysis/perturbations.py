"""Seeded image perturbations for the robustness study: ``(pixels, strength, seed) -> pixels``.

Every function takes a uint8 film, ``[H, W]`` (gray) or ``[H, W, C]`` (the RGB view the processor
gets), and returns a new uint8 array; the input is never modified. The same arguments give the same
bytes on every machine (numpy's PCG64 through ``default_rng(seed)``; Pillow for blur and rotation).
A zero strength (noise sigma 0, contrast factor 1, brightness 0, blur 0, rotation 0, no pixel
changed, a square film through pad or crop) returns an identical copy, bit for bit.

Noise and changed pixels are drawn once per pixel, not per channel, so a gray film stays gray.

Geometry: photometric perturbations and ``changed_pixels`` keep every pixel where it was. ``rotation``
turns about the centre (counter-clockwise for positive degrees) inside the same frame, filling the
corners with black. ``to_square`` changes the frame: ``"pad"`` centres the film on a black square of
side ``max(H, W)``, ``"crop"`` keeps the centred square of side ``min(H, W)``, ``"resize"`` returns
the film unchanged (the processor stretches it to its square input, which is what the unperturbed run
saw). ``square_box`` says where that square sits in the film's pixel coordinates, so a map of the
square can be mapped back onto the film (``studies.robustness_study``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    "gaussian_noise",
    "contrast",
    "brightness",
    "gaussian_blur",
    "rotation",
    "changed_pixels",
    "to_square",
    "square_box",
    "Perturbation",
    "from_config",
    "SQUARE_MODES",
]

SQUARE_MODES = ("pad", "crop", "resize")
FILL = 0  # what pad and rotation put outside the film: black, like the air around a chest


def _check(pixels: np.ndarray) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, got {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"pixels must be H x W or H x W x C, got shape {arr.shape}")
    return arr


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _per_pixel(arr: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """A per-pixel [H, W] array broadcast over the channels of ``arr``."""
    return plane[..., None] if arr.ndim == 3 else plane


def _sigma(value: float, what: str) -> float:
    """A standard deviation: >= 0, else a ValueError naming ``what``."""
    if value < 0:
        raise ValueError(f"{what} sigma must be >= 0, got {value}")
    return value


def gaussian_noise(pixels: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Add N(0, sigma^2) noise, sigma on the 0-255 scale, one draw per pixel; rounded and clipped."""
    arr = _check(pixels)
    if _sigma(sigma, "noise") == 0:
        return arr.copy()
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=arr.shape[:2])
    return _to_uint8(arr.astype(np.float64) + _per_pixel(arr, noise))


def contrast(pixels: np.ndarray, factor: float, seed: int = 0) -> np.ndarray:
    """Scale the deviations from the film's mean by ``factor`` (1 = unchanged). ``seed`` is unused."""
    arr = _check(pixels)
    if factor <= 0:
        raise ValueError(f"contrast factor must be > 0, got {factor}")
    if factor == 1:
        return arr.copy()
    values = arr.astype(np.float64)
    mean = values.mean()
    return _to_uint8(mean + factor * (values - mean))


def brightness(pixels: np.ndarray, offset: float, seed: int = 0) -> np.ndarray:
    """Add ``offset`` (0-255 scale, may be negative) to every pixel, clipped. ``seed`` is unused."""
    arr = _check(pixels)
    if offset == 0:
        return arr.copy()
    return _to_uint8(arr.astype(np.float64) + offset)


def gaussian_blur(pixels: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (Pillow's GaussianBlur). ``seed`` is unused."""
    arr = _check(pixels)
    if _sigma(sigma, "blur") == 0:
        return arr.copy()
    return _apply_pil(arr, lambda im: im.filter(ImageFilter.GaussianBlur(radius=float(sigma))))


def rotation(pixels: np.ndarray, degrees: float, seed: int = 0) -> np.ndarray:
    """Rotate about the centre, counter-clockwise for positive ``degrees``, same frame, black corners."""
    arr = _check(pixels)
    if degrees == 0:
        return arr.copy()

    def turn(im: Image.Image) -> Image.Image:
        fill = FILL if im.mode == "L" else (FILL,) * len(im.getbands())
        return im.rotate(float(degrees), resample=Image.Resampling.BILINEAR, expand=False, fillcolor=fill)

    return _apply_pil(arr, turn)


def changed_pixels(pixels: np.ndarray, count: int, seed: int = 0, body: np.ndarray | None = None) -> np.ndarray:
    """Set ``count`` distinct pixels inside the body to the far end of the range (dark -> 255, bright -> 0).

    Positions are drawn uniformly from ``body`` (a boolean ``[H, W]`` mask; computed with
    ``masks.anatomy_masks`` when None), or from the whole film when the body is empty. The new value
    is the extreme opposite the pixel's own brightness, so every chosen pixel changes by at least 128.
    """
    arr = _check(pixels)
    count = int(count)
    if count < 0:
        raise ValueError(f"pixels to change must be >= 0, got {count}")
    if count == 0:
        return arr.copy()
    if body is None:
        from medgemma_tui.analysis.masks import anatomy_masks

        body = anatomy_masks(arr).body
    body = np.asarray(body, dtype=bool)
    if body.shape != arr.shape[:2]:
        raise ValueError(f"body mask has shape {body.shape}, the film {arr.shape[:2]}")
    candidates = np.flatnonzero(body) if body.any() else np.arange(body.size)
    chosen = np.random.default_rng(seed).choice(candidates, size=min(count, candidates.size), replace=False)
    rows, cols = np.unravel_index(np.sort(chosen), body.shape)
    out = arr.copy()
    level = out[rows, cols].astype(np.float64)
    level = level.mean(axis=-1) if out.ndim == 3 else level
    extreme = np.where(level >= 128, 0, 255).astype(np.uint8)
    out[rows, cols] = extreme[:, None] if out.ndim == 3 else extreme
    return out


def square_box(width: int, height: int, mode: str) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the square ``to_square`` makes, in the film's pixel coordinates.

    For ``"pad"`` the box reaches outside the film (negative x0 or y0); for ``"resize"`` it is the
    whole film (not a square: the processor stretches it).
    """
    if mode == "resize":
        return (0, 0, width, height)
    if mode == "pad":
        side = max(width, height)
        x0, y0 = -((side - width) // 2), -((side - height) // 2)
    elif mode == "crop":
        side = min(width, height)
        x0, y0 = (width - side) // 2, (height - side) // 2
    else:
        raise ValueError(f"square mode must be one of {', '.join(SQUARE_MODES)}, got {mode!r}")
    return (x0, y0, x0 + side, y0 + side)


def to_square(pixels: np.ndarray, mode: str, seed: int = 0) -> np.ndarray:
    """The film made square by ``mode``: centre ``"pad"`` with black, centre ``"crop"``, or ``"resize"``."""
    arr = _check(pixels)
    height, width = arr.shape[:2]
    x0, y0, x1, y1 = square_box(width, height, mode)
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return arr.copy()
    out = np.full((y1 - y0, x1 - x0, *arr.shape[2:]), FILL, dtype=np.uint8)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x1, width), min(y1, height)
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = arr[sy0:sy1, sx0:sx1]
    return out


def _apply_pil(arr: np.ndarray, op: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    if arr.ndim == 2 or arr.shape[2] in (3, 4):
        image = Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
        out = np.asarray(op(image), dtype=np.uint8)
        return out.reshape(arr.shape).copy()
    return np.stack([np.asarray(op(Image.fromarray(arr[..., c])), dtype=np.uint8) for c in range(arr.shape[2])],
                    axis=-1)


# ---- the configured set ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Perturbation:
    """One perturbation with its strength: ``name`` is noise, contrast, brightness, blur, rotation,
    pixels, or the square mode (pad, crop, resize)."""

    name: str
    strength: float | str
    parameter: str  # what the strength means, for the robustness file

    @property
    def changes_frame(self) -> bool:
        """Whether the processor sees a different region of the film (pad and crop)."""
        return self.name in ("pad", "crop")

    def apply(self, pixels: np.ndarray, seed: int = 0, body: np.ndarray | None = None) -> np.ndarray:
        if self.name == "pixels":
            return changed_pixels(pixels, int(self.strength), seed, body)
        if self.name in SQUARE_MODES:
            return to_square(pixels, self.name, seed)
        return _BY_NAME[self.name](pixels, float(self.strength), seed)

    def to_json(self) -> dict[str, float | str]:
        return {"name": self.name, "parameter": self.parameter, "strength": self.strength}


_BY_NAME: dict[str, Callable[[np.ndarray, float, int], np.ndarray]] = {
    "noise": gaussian_noise,
    "contrast": contrast,
    "brightness": brightness,
    "blur": gaussian_blur,
    "rotation": rotation,
}


def from_config(robustness) -> list[Perturbation]:
    """The perturbations a ``config.RobustnessConfig`` asks for, in a fixed order.

    A perturbation set to its identity (noise or blur sigma 0, contrast 1, brightness 0, rotation 0,
    no pixel changed) is left out: that is how a config turns one off. The preprocessing modes are
    kept as listed, ``"resize"`` included (it repeats the unperturbed input: a determinism control).
    """
    found = [
        Perturbation("noise", float(robustness.noise_sigma), "sigma (0-255)"),
        Perturbation("contrast", float(robustness.contrast), "factor about the mean"),
        Perturbation("brightness", float(robustness.brightness), "offset (0-255)"),
        Perturbation("blur", float(robustness.blur_sigma), "sigma (pixels)"),
        Perturbation("rotation", float(robustness.rotation_deg), "degrees counter-clockwise"),
        Perturbation("pixels", int(robustness.pixels_changed), "pixels changed inside the body"),
    ]
    found = [p for p in found if p.strength != _IDENTITY[p.name]]
    found += [Perturbation(mode, mode, "preprocessing to square") for mode in robustness.preprocessing]
    return found


_IDENTITY = {"noise": 0.0, "contrast": 1.0, "brightness": 0.0, "blur": 0.0, "rotation": 0.0, "pixels": 0}
