"""A few pixels of the model's own input changed, many films per forward pass: the log-probability of one
answer token under each, and whether it stayed the model's first choice (the one-pixel attack's score).

Pixels are changed in the processor's output frame (``pixel_values``: the film resized to the vision
tower's square input, e.g. 896 x 896 for MedGemma), on the 0-255 scale of the film the processor was given
(``x * image_std + image_mean`` undone to 0-1, times 255), rounded and clipped, so every edited input is
an 8-bit image: ``edited_image`` gives it back as one, and answering that image again gives the same input.
The same change goes to every channel (a gray film stays gray). The token is read, teacher-forced, at the
row that produced it: the answer's token ``answer_index`` (e.g. the verdict of a sentence answer, not
its first word) at position ``prompt_length + answer_index - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from medgemma_tui.engine.gradients import teacher_forced_inputs
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.model.loading import LoadedModel


@dataclass
class PixelEditScore:
    model: Any
    inputs: dict[str, torch.Tensor]  # the fed sequence up to the token's row, batch 1
    pixels: torch.Tensor  # [3, S, S] the film's pixel_values
    mean: torch.Tensor  # [3, 1, 1] the processor's image_mean
    std: torch.Tensor  # [3, 1, 1] its image_std
    token: int  # the answer token whose log-probability is read
    batch_size: int = 16

    @property
    def side(self) -> int:
        return int(self.pixels.shape[-1])

    def values(self) -> np.ndarray:
        """The input as the 0-255 film it came from: [S, S] (channel mean), float64."""
        return ((self.pixels * self.std + self.mean) * 255.0).mean(dim=0).double().cpu().numpy()

    def edited(self, rows: np.ndarray, cols: np.ndarray, deltas: np.ndarray) -> torch.Tensor:
        """pixel_values [n, 3, S, S] with pixel (rows[i, j], cols[i, j]) of film i changed by deltas[i, j]."""
        n = rows.shape[0]
        films = self.pixels[None].repeat(n, 1, 1, 1)  # [n, 3, S, S]
        r = torch.as_tensor(rows, dtype=torch.long, device=films.device)
        c = torch.as_tensor(cols, dtype=torch.long, device=films.device)
        d = torch.as_tensor(deltas, dtype=torch.float32, device=films.device)
        b = torch.arange(n, device=films.device)[:, None].expand_as(r)
        level = (films[b, :, r, c].float() * self.std[:, 0, 0] + self.mean[:, 0, 0]) * 255.0  # [n, k, 3]
        new = torch.clamp(torch.round(level + d[..., None]), 0, 255) / 255.0
        films[b, :, r, c] = ((new - self.mean[:, 0, 0]) / self.std[:, 0, 0]).to(films.dtype)
        return films

    @torch.no_grad()
    def __call__(self, rows: np.ndarray, cols: np.ndarray, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log p(token) [n], whether another token was the first choice [n]) for each edited film."""
        logprobs, flipped = [], []
        for first in range(0, rows.shape[0], self.batch_size):
            films = self.edited(rows[first:first + self.batch_size], cols[first:first + self.batch_size],
                                deltas[first:first + self.batch_size])
            b = films.shape[0]
            batch = {k: v.expand(b, *v.shape[1:]) for k, v in self.inputs.items() if k != "pixel_values"}
            logits = self.model(**batch, pixel_values=films, use_cache=False, logits_to_keep=1).logits[:, -1].float()
            scores = torch.log_softmax(logits, dim=-1)
            logprobs.append(scores[:, self.token].double().cpu())
            flipped.append((scores.argmax(dim=-1) != self.token).cpu())
        return torch.cat(logprobs).numpy(), torch.cat(flipped).numpy()

    def edited_image(self, rows: np.ndarray, cols: np.ndarray, deltas: np.ndarray):
        """One edited input as the RGB 8-bit image (S x S) that gives it: ``rows``, ``cols``, ``deltas`` [k]."""
        from PIL import Image

        film = self.edited(rows[None], cols[None], deltas[None])[0].float()
        rgb = torch.round((film * self.std + self.mean) * 255.0).clamp(0, 255).to(torch.uint8)
        return Image.fromarray(rgb.permute(1, 2, 0).cpu().numpy(), mode="RGB")


@torch.no_grad()
def pixel_edit_score(loaded: LoadedModel, image, record: AttentionRecord, answer_index: int,
                     batch_size: int = 16) -> PixelEditScore:
    """The score of the record's answer token ``answer_index`` on ``image`` under pixel edits."""
    if not 0 <= answer_index < len(record.answer_ids):
        raise ValueError(f"answer token {answer_index} outside the answer's {len(record.answer_ids)} tokens")
    inputs = teacher_forced_inputs(loaded, image, record, record.prompt_length + answer_index - 1)
    processor = loaded.processor.image_processor
    device, dtype = inputs["pixel_values"].device, inputs["pixel_values"].dtype
    mean = torch.as_tensor(processor.image_mean, dtype=torch.float32, device=device)[:, None, None]
    std = torch.as_tensor(processor.image_std, dtype=torch.float32, device=device)[:, None, None]
    return PixelEditScore(model=loaded.model, inputs=inputs, pixels=inputs["pixel_values"][0].to(dtype),
                          mean=mean, std=std, token=int(record.answer_ids[answer_index]), batch_size=batch_size)
