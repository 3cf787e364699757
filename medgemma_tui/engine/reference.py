"""The eager ``output_attentions`` reference: one teacher-forced pass over the record's sequence.

This is how the old pipeline got its maps; here it only checks the capture (``check --verify-eager``
and the tests). Eager returns probabilities in the model's dtype, so in bf16 the difference is bf16
rounding, not a capture error.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from medgemma_tui.engine.capture import CAPTURE_ATTENTION
from medgemma_tui.engine.extract import model_inputs
from medgemma_tui.engine.prompt import record_prompt
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.model.loading import LoadedModel


@contextmanager
def text_attention(model, implementation: str):
    model.set_attn_implementation({"text_config": implementation})
    try:
        yield
    finally:
        model.set_attn_implementation({"text_config": CAPTURE_ATTENTION})


@torch.no_grad()
def eager_attentions(loaded: LoadedModel, image, record: AttentionRecord) -> list[np.ndarray]:
    """Per layer [H, S, S] float32 eager attention over the record's fed sequence."""
    prompt = record_prompt(loaded.processor, loaded.config, image, record)
    inputs = model_inputs(loaded, prompt)
    answer = torch.as_tensor(record.input_ids[record.prompt_length :], device=loaded.device)[None]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], answer], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    inputs["token_type_ids"] = torch.cat([inputs["token_type_ids"], torch.zeros_like(answer)], dim=1)
    with text_attention(loaded.model, "eager"):
        out = loaded.model(**inputs, output_attentions=True, use_cache=False)
    return [a[0].float().cpu().numpy() for a in out.attentions]


def record_from_reference(record: AttentionRecord, attentions: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The record's arrays as the eager reference gives them."""
    full = np.stack(attentions)  # [L, H, S, S]
    rows = full[:, :, record.query_positions, :].transpose(2, 0, 1, 3)  # [Q, L, H, S]
    start, end = record.image_token_span
    image = rows[..., start:end]
    bos = rows[..., 0]
    return {
        "image_attn": image,
        "question_attn": rows[..., record.question_positions],
        "shares": np.stack([bos, image.sum(-1), rows.sum(-1) - bos - image.sum(-1)], axis=-1),
        "layer_mean_attn": full.mean(axis=1),
    }


def max_abs_diff(record: AttentionRecord, reference: dict[str, np.ndarray]) -> dict[str, float]:
    diffs = {}
    for name, expected in reference.items():
        got = getattr(record, name)
        if got is not None:
            diffs[name] = float(np.abs(got - expected).max())
    diffs["max_abs_diff"] = max(diffs.values())
    return diffs


def verify_against_eager(loaded: LoadedModel, image, record: AttentionRecord) -> dict[str, float]:
    return max_abs_diff(record, record_from_reference(record, eager_attentions(loaded, image, record)))


def layer_diffs(record: AttentionRecord, reference: dict[str, np.ndarray]) -> list[float]:
    """Per decoder layer, the largest difference of the captured rows (image, question, shares) from eager."""
    out = []
    for layer in range(record.model.num_layers):
        diffs = [float(np.abs(getattr(record, name)[:, layer] - reference[name][:, layer]).max())
                 for name in ("image_attn", "question_attn", "shares") if getattr(record, name) is not None]
        out.append(max(diffs))
    return out


def verify_layers(loaded: LoadedModel, image, record: AttentionRecord) -> dict[str, object]:
    """``verify_against_eager`` with the difference of every layer: ``max_abs_diff`` and ``layers``."""
    reference = record_from_reference(record, eager_attentions(loaded, image, record))
    return {**max_abs_diff(record, reference), "layers": layer_diffs(record, reference)}
