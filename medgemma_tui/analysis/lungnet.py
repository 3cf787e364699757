"""A small U-Net that segments a chest film into lung fields and the cardiomediastinal region.

The network is U-Net (Ronneberger et al., "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015) at a small width, as used for chest-film lung fields by Novikov et al.
("Fully Convolutional Architectures for Multi-Class Segmentation in Chest Radiographs", IEEE TMI 2018).
It reads one film as a ``SIZE x SIZE`` gray square (the film resampled by area, whatever its aspect)
after global histogram equalisation, and gives four classes per pixel: background, the patient's right
lung field (image left), the patient's left lung field (image right), the cardiomediastinum.

The weights are plain tensors in a safetensors file (no pickle); ``fixtures/builders/train_lungs.py`` trains them.
``prepare`` is the one preprocessing both the trainer and ``predict`` use.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from medgemma_tui.analysis.film import gray_unit
from medgemma_tui.analysis.grid import area_resize

__all__ = ["CLASSES", "SIZE", "LungNet", "equalise", "load_lungnet", "predict_logits", "prepare"]

SIZE = 160  # side of the network's input square
CLASSES = ("background", "lung_right", "lung_left", "mediastinum")
_WIDTHS = (16, 32, 64, 128)


def equalise(g: np.ndarray, bins: int = 256) -> np.ndarray:
    """Global histogram equalisation to [0, 1] (Gonzalez & Woods, "Digital Image Processing", 3.3.1).

    Each value maps to the fraction of pixels at or below it, so the result does not depend on the
    film's window, gamma or bit depth, only on the order of its values. A flat film gives zeros.
    """
    lo, hi = float(g.min()), float(g.max())
    if hi <= lo:
        return np.zeros_like(g, dtype=np.float32)
    idx = np.clip(((g - lo) / (hi - lo) * (bins - 1)).round().astype(np.int64), 0, bins - 1)
    cdf = np.cumsum(np.bincount(idx.ravel(), minlength=bins)).astype(np.float64)
    cdf = (cdf - cdf[0]) / max(cdf[-1] - cdf[0], 1.0)
    return cdf[idx].astype(np.float32)


def prepare(image: np.ndarray, size: int = SIZE) -> np.ndarray:
    """The network's input: the film resampled by area to ``size x size``, equalised, float32."""
    return equalise(area_resize(gray_unit(image), (size, size)))


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class LungNet(nn.Module):
    """U-Net: ``[B, 1, S, S]`` equalised film in, ``[B, 4, S, S]`` class logits out (S a multiple of 8)."""

    def __init__(self, widths: tuple[int, ...] = _WIDTHS, n_classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.down = nn.ModuleList()
        c = 1
        for w in widths:
            self.down.append(_Block(c, w))
            c = w
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(c, w, 2, stride=2))
            self.merge.append(_Block(2 * w, w))
            c = w
        self.head = nn.Conv2d(c, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 0.5) / 0.29  # equalised values are uniform on [0, 1]: mean 0.5, sd 0.29
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1]), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def model_path() -> Path:
    from medgemma_tui.resources import lung_model_dir

    return lung_model_dir() / "model.safetensors"


@lru_cache(maxsize=2)
def load_lungnet(path: str | None = None) -> LungNet:
    """The trained network in eval mode, from safetensors (float16 or float32 tensors)."""
    from safetensors.torch import load_file

    state = load_file(str(path or model_path()))
    net = LungNet()
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.eval()


def predict_logits(image: np.ndarray, net: LungNet | None = None) -> np.ndarray:
    """Class logits ``[4, SIZE, SIZE]`` (float32) of one film; same film, same numbers."""
    net = net or load_lungnet()
    x = torch.from_numpy(prepare(image))[None, None]
    with torch.inference_mode():
        return net(x)[0].numpy()
