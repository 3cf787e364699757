"""The chat prompt for one question about one image, and where its parts sit in the token sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# the generic prompt of the relative view: its map on the same image cancels sinks and image priors
GENERIC_PROMPT = "Describe the image."


@dataclass
class PromptInputs:
    inputs: dict[str, Any]  # processor output as tensors: input_ids, attention_mask, pixel_values, token_type_ids
    text: str  # the prompt text after the processor expanded the image placeholder
    question: str
    question_positions: np.ndarray  # [Tq] token positions of the question's own tokens
    question_offsets: list[tuple[int, int]]  # [Tq] character span of each token within `question`
    image_token_span: tuple[int, int]  # [start, end)

    @property
    def input_ids(self) -> np.ndarray:
        return self.inputs["input_ids"][0].cpu().numpy()

    @property
    def prompt_length(self) -> int:
        return int(self.inputs["input_ids"].shape[1])


def chat_messages(question: str) -> list[dict[str, Any]]:
    """MedGemma's VQA turn: the question, then the image; the image tokens are found by id, never by offset."""
    return [{"role": "user", "content": [{"type": "text", "text": question}, {"type": "image"}]}]


def image_token_span(input_ids: np.ndarray, image_token_index: int, tokens_per_image: int) -> tuple[int, int]:
    """[start, end) of the image tokens, found from the ids, never assumed to sit at a fixed offset."""
    where = np.flatnonzero(np.asarray(input_ids) == image_token_index)
    if len(where) != tokens_per_image:
        raise ValueError(f"found {len(where)} image tokens in the prompt, the model expects {tokens_per_image}")
    start, end = int(where[0]), int(where[-1]) + 1
    if end - start != tokens_per_image:
        raise ValueError("the image tokens are not one contiguous block")
    return start, end


def build_prompt(processor, config, image, question: str) -> PromptInputs:
    """Tokenise the chat prompt with the image; locate the question's tokens through the offsets."""
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    template = processor.apply_chat_template(chat_messages(question), add_generation_prompt=True, tokenize=False)
    enc = processor(text=template, images=image, return_tensors="pt", return_offsets_mapping=True)
    offsets = enc.pop("offset_mapping")[0].tolist()
    expanded = template.replace(processor.boi_token, processor.full_image_sequence, 1)
    q_start = expanded.find(question)
    if q_start < 0:
        raise ValueError("the question does not appear in the prompt text")
    q_end = q_start + len(question)
    positions, spans = [], []
    for pos, (a, b) in enumerate(offsets):
        if b > a and a < q_end and b > q_start:
            positions.append(pos)
            spans.append((max(a, q_start) - q_start, min(b, q_end) - q_start))
    ids = enc["input_ids"][0].numpy()
    span = image_token_span(ids, config.image_token_index, config.mm_tokens_per_image)
    return PromptInputs(
        inputs=dict(enc),
        text=expanded,
        question=question,
        question_positions=np.asarray(positions, dtype=np.int64),
        question_offsets=spans,
        image_token_span=span,
    )
