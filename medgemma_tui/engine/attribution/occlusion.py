"""Occlusion sensitivity (Zeiler and Fergus, 2014, "Visualizing and Understanding Convolutional
Networks") over the image-token grid.

A ``window`` x ``window`` square of grid cells slides over the grid with stride 1; each position
replaces those cells by the probe's baseline and reads the drop in the answer token's probability,
p(full) - p(occluded). With ``probe.PixelProbe`` (the default) a cell is its square of the film's
pixels and every occluded film goes through the vision tower again; with ``probe.TokenProbe`` it is
the image token, replaced after the tower. A cell's score is the sum of the drops of the
windows that cover it over window^2 (with ``window`` 1: its own drop); dividing by the fixed window
area rather than by how many windows cover a cell keeps border cells, which fewer windows reach, from
inheriting the whole drop of a window whose effect lies further in. All windows go through the model in
batches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def occlusion_masks(shape: tuple[int, int], window: int = 1) -> np.ndarray:
    """Keep-masks of every window position, row-major: [W, R*C] float32 (0 inside the window)."""
    rows, cols = shape
    if not 1 <= window <= min(rows, cols):
        raise ValueError(f"occlusion window {window} outside 1..{min(rows, cols)}")
    masks = []
    for r in range(rows - window + 1):
        for c in range(cols - window + 1):
            keep = np.ones(shape, dtype=np.float32)
            keep[r:r + window, c:c + window] = 0
            masks.append(keep.ravel())
    return np.stack(masks)


def occlusion_scores(score: Callable[[np.ndarray], np.ndarray], shape: tuple[int, int], window: int = 1
                     ) -> np.ndarray:
    """Per cell, the sum of p(full) - p(occluded) over the windows covering it, over window^2: [R*C] float64.

    ``score`` maps keep-masks [B, R*C] to the answer's probability [B].
    """
    masks = occlusion_masks(shape, window)
    full = float(score(np.ones((1, masks.shape[1]), dtype=np.float32))[0])
    drops = full - np.asarray(score(masks), dtype=np.float64)  # [W]
    covered = 1.0 - masks.astype(np.float64)  # [W, N]
    return (drops @ covered) / window**2


def occlusion_map(probe, shape: tuple[int, int], window: int = 1) -> np.ndarray:
    """Occlusion sensitivity of the probe's answer token: [N] float32 (signed; views keep the positive part)."""
    return occlusion_scores(probe.probabilities, shape, window).astype(np.float32)
