"""The answer's probability under changed image tokens, many changes per forward pass.

A ``TokenProbe`` holds one row's fed sequence up to the target row (``gradients.answer_target``: the
first answer token that is not an end token), its text embeddings, its projected image tokens and a
baseline for them. ``probabilities(keep)`` mixes each image token with its baseline by a weight in
[0, 1] (1 keeps the token, 0 replaces it) and returns the target token's probability for every row of
``keep``, ``batch_size`` sequences per forward through ``inputs_embeds`` (the vision tower runs once).

Baselines: ``mean`` (the film's own mean image token: the scale and offset of MedGemma's projector
output without any place information) or ``zero``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from medgemma_tui.engine.gradients import answer_target, teacher_forced_inputs
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.model.loading import LoadedModel

TOKEN_BASELINES = ("mean", "zero")


def projected_image_tokens(model, pixel_values) -> torch.Tensor:
    """The projected image tokens of one image: [N, D] (N = mm_tokens_per_image, row-major)."""
    out = model.get_image_features(pixel_values, return_dict=True)
    features = out.pooler_output if hasattr(out, "pooler_output") else out
    return features.reshape(-1, features.shape[-1])


@dataclass
class TokenProbe:
    model: Any
    text: torch.Tensor  # [1, S, D] text embeddings, image positions filled later
    features: torch.Tensor  # [N, D] the film's projected image tokens
    baseline: torch.Tensor  # [N, D] what a removed token becomes
    image_positions: torch.Tensor  # [N] sequence positions of the image tokens
    attention_mask: torch.Tensor  # [1, S]
    token_type_ids: torch.Tensor  # [1, S]
    target: int  # the answer token id whose probability is read at the last position
    batch_size: int = 16

    @property
    def cells(self) -> int:
        return int(self.features.shape[0])

    @torch.no_grad()
    def probabilities(self, keep: np.ndarray) -> np.ndarray:
        """p(target) for each row of ``keep`` [B, N] (weights in [0, 1]): [B] float64."""
        keep_all = torch.as_tensor(np.asarray(keep, dtype=np.float32), device=self.text.device)
        out = []
        for first in range(0, keep_all.shape[0], self.batch_size):
            w = keep_all[first:first + self.batch_size, :, None].to(self.text.dtype)  # [b, N, 1]
            b = w.shape[0]
            embeds = self.text.expand(b, -1, -1).clone()  # [b, S, D]
            embeds[:, self.image_positions] = w * self.features[None] + (1 - w) * self.baseline[None]
            logits = self.model(inputs_embeds=embeds, attention_mask=self.attention_mask.expand(b, -1),
                                token_type_ids=self.token_type_ids.expand(b, -1), use_cache=False,
                                logits_to_keep=1).logits
            out.append(torch.softmax(logits[:, -1].float(), dim=-1)[:, self.target].cpu())
        return torch.cat(out).numpy().astype(np.float64)


@torch.no_grad()
def token_probe(loaded: LoadedModel, image, record: AttentionRecord, baseline: str = "mean",
                batch_size: int = 16) -> TokenProbe:
    """The probe of ``record``'s target row on ``image`` (one vision pass)."""
    if baseline not in TOKEN_BASELINES:
        raise ValueError(f"unknown token baseline {baseline!r} (known: {', '.join(TOKEN_BASELINES)})")
    model = loaded.model
    position, token = answer_target(record)
    inputs = teacher_forced_inputs(loaded, image, record, position)
    ids = inputs["input_ids"]  # [1, position + 1]
    image_mask = ids[0] == model.config.image_token_index
    text = model.get_input_embeddings()(ids.masked_fill(ids == model.config.image_token_index, 0))
    features = projected_image_tokens(model, inputs["pixel_values"]).to(text.dtype)  # [N, D]
    if baseline == "mean":
        neutral = features.mean(dim=0, keepdim=True).expand_as(features)
    else:
        neutral = torch.zeros_like(features)
    return TokenProbe(model=model, text=text, features=features, baseline=neutral,
                      image_positions=torch.nonzero(image_mask).squeeze(1), attention_mask=inputs["attention_mask"],
                      token_type_ids=inputs["token_type_ids"], target=token, batch_size=batch_size)
