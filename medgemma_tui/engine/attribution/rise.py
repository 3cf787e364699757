"""RISE (Petsiuk, Das and Saenko, 2018, "RISE: Randomized Input Sampling for Explanation of Black-box
Models") over the image-token grid.

``masks`` random binary grids of ``cells`` x ``cells``, each cell kept with probability ``keep``, are
upsampled bilinearly to (cells + 1) x the token grid's cell size and cropped at a random shift (the
paper's smooth masks), giving soft keep-weights per image token. Each weight mixes the token with the
probe's baseline; the saliency is sum_i (p_i - p_mean) M_i / (masks * keep), p_i the answer token's
probability under mask i. The paper's estimator is sum_i p_i M_i / (masks * keep); subtracting the mean
probability (a control variate: it changes the expectation only by p_mean E[M_j] / keep, the same for
every cell when the masks are stationary) removes the large constant that otherwise makes a map
normalised to sum 1 nearly uniform, and lowers the variance at a given number of masks. Seeded: the
same seed gives the same masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def rise_masks(shape: tuple[int, int], masks: int = 256, cells: int = 4, keep: float = 0.5, seed: int = 0
               ) -> np.ndarray:
    """Smooth random keep-masks: [masks, R*C] float32 in [0, 1]."""
    import torch

    if masks < 1 or cells < 1 or not 0 < keep < 1:
        raise ValueError("RISE needs masks >= 1, cells >= 1 and 0 < keep < 1")
    rows, cols = shape
    rng = np.random.default_rng(seed)
    cell_h, cell_w = math.ceil(rows / cells), math.ceil(cols / cells)
    coarse = (rng.random((masks, 1, cells, cells)) < keep).astype(np.float32)
    up = torch.nn.functional.interpolate(torch.as_tensor(coarse), size=((cells + 1) * cell_h, (cells + 1) * cell_w),
                                         mode="bilinear", align_corners=False).numpy()[:, 0]
    shift_r = rng.integers(0, cell_h, masks)
    shift_c = rng.integers(0, cell_w, masks)
    out = np.stack([up[i, shift_r[i]:shift_r[i] + rows, shift_c[i]:shift_c[i] + cols] for i in range(masks)])
    return out.reshape(masks, rows * cols).astype(np.float32)


def rise_scores(score: Callable[[np.ndarray], np.ndarray], shape: tuple[int, int], masks: int = 256,
                cells: int = 4, keep: float = 0.5, seed: int = 0) -> np.ndarray:
    """sum_i (score(M_i) - mean score) M_i / (masks * keep): [R*C] float64. ``score`` maps keep-masks
    [B, N] to [B]."""
    m = rise_masks(shape, masks, cells, keep, seed).astype(np.float64)
    p = np.asarray(score(m.astype(np.float32)), dtype=np.float64)  # [masks]
    return ((p - p.mean()) @ m) / (masks * keep)


def rise_map(probe, shape: tuple[int, int], masks: int = 256, cells: int = 4, keep: float = 0.5, seed: int = 0
             ) -> np.ndarray:
    """RISE saliency of the probe's answer token: [N] float32."""
    return rise_scores(probe.probabilities, shape, masks, cells, keep, seed).astype(np.float32)
