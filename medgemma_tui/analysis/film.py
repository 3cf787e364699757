"""A film as the anatomy reads it: one float32 gray channel, whatever the file's mode and bit depth."""

from __future__ import annotations

import numpy as np


def gray_unit(image: np.ndarray) -> np.ndarray:
    """A film as float32 gray: RGB/RGBA averaged over colour, any dtype; NaN and inf set to the minimum."""
    arr = np.asarray(image)
    if arr.ndim == 3:
        if arr.shape[2] not in (1, 3, 4):
            raise ValueError(f"expected H x W or H x W x 3 image, got shape {arr.shape}")
        arr = arr[..., :3].astype(np.float32).mean(axis=2)
    if arr.ndim != 2 or min(arr.shape) < 16:
        raise ValueError(f"expected a 2-D image of at least 16 x 16, got shape {arr.shape}")
    g = arr.astype(np.float32)
    finite = np.isfinite(g)
    if not finite.all():
        g = np.where(finite, g, g[finite].min() if finite.any() else 0.0).astype(np.float32)
    return g
