"""Grad-CAM++ (Chattopadhay, Sarkar, Howlader and Balasubramanian, 2018, "Grad-CAM++: Improved Visual
Explanations for Deep Convolutional Networks") on the same layer and target as ``gradients.gradcam``.

With the exponential of the score as the output (the paper's eq. 19), the pixel weights have a closed
form in the first gradient g = dy/dA: alpha_pc = g_pc^2 / (2 g_pc^2 + (sum_q A_qc) g_pc^3), the gradient
cubed *at the position p itself* times the channel's total activation; the channel weight
w_c = sum_p alpha_pc ReLU(g_pc), and the map ReLU(sum_c w_c A_c), pooled to the token grid as
Grad-CAM is. Positions where the denominator vanishes (g = 0) get alpha 0, as in the authors' code.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from medgemma_tui.engine.gradients import pool_to_tokens, vision_gradients
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.model.loading import LoadedModel


def grad_cam_pp(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM++ over [patches, channels] activations and gradients: [patches] float32."""
    a = activations.astype(np.float64)
    g = gradients.astype(np.float64)
    g2, g3 = g**2, g**3
    denominator = 2 * g2 + a.sum(axis=0, keepdims=True) * g3  # eq. 19: sum_ab A_ab, times g_ij^3 [patches, ch]
    alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=np.abs(denominator) > 1e-30)
    weights = (alpha * np.maximum(g, 0)).sum(axis=0)  # [channels]
    return np.maximum(a @ weights, 0).astype(np.float32)


def gradcampp(loaded: LoadedModel, image: Image.Image, record: AttentionRecord) -> np.ndarray:
    """Grad-CAM++ on the vision tower's output for the answer logit, pooled to the token grid: [N]."""
    activations, gradients = vision_gradients(loaded, image, record)
    return pool_to_tokens(grad_cam_pp(activations, gradients), loaded.config).astype(np.float32)
