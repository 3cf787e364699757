"""The chat prompt for one question about one image, and where its parts sit in the token sequence."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgemma_tui.config.schema import GENERIC_QUESTION, PromptConfig

# the generic prompt of the relative view by default: its map on the same image cancels sinks and image priors
GENERIC_PROMPT = GENERIC_QUESTION
DEFAULT_PROMPT = PromptConfig()


@dataclass
class PromptInputs:
    inputs: dict[str, Any]  # processor output as tensors: input_ids, attention_mask, pixel_values, token_type_ids
    text: str  # the prompt text after the processor expanded the image placeholder
    question: str
    question_positions: np.ndarray  # [Tq] token positions of the question's own tokens
    question_offsets: list[tuple[int, int]]  # [Tq] character span of each token within `question`
    image_token_span: tuple[int, int]  # [start, end)
    settings: PromptConfig = DEFAULT_PROMPT  # system turn, instruction, image order
    template: str = ""  # the chat template's text as given to the processor (one image placeholder)

    @property
    def input_ids(self) -> np.ndarray:
        return self.inputs["input_ids"][0].cpu().numpy()

    @property
    def prompt_length(self) -> int:
        return int(self.inputs["input_ids"].shape[1])


def chat_messages(question: str, settings: PromptConfig = DEFAULT_PROMPT) -> list[dict[str, Any]]:
    """The VQA turn: by default the question, then the image; an optional system turn and instruction.

    The message format is transformers' multimodal chat format (``apply_chat_template`` with typed
    content parts); Gemma 3's template places the image where its part stands.
    """
    text = f"{question} {settings.instruction}" if settings.instruction else question
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}, {"type": "image"}]
    if settings.order == "image_first":
        parts.reverse()
    messages: list[dict[str, Any]] = []
    if settings.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": settings.system}]})
    messages.append({"role": "user", "content": parts})
    return messages


def generic_settings(settings: PromptConfig) -> PromptConfig:
    """The generic prompt's own settings: the same system turn and image order, no instruction."""
    return dataclasses.replace(settings, instruction=None)


def prompt_json(prompt: PromptInputs) -> dict[str, Any]:
    """What a record and a meta keep of the prompt: the settings and the exact template text fed."""
    return {**dataclasses.asdict(prompt.settings), "text": prompt.template}


def record_prompt(processor, config, image, record) -> PromptInputs:
    """The prompt ``record`` was answered with, rebuilt for ``image`` (its question and its prompt settings)."""
    return build_prompt(processor, config, image, record.question, prompt_settings(record.extra.get("prompt")))


def prompt_settings(saved: Mapping[str, Any] | None) -> PromptConfig:
    """The settings a record was answered with (``record.extra["prompt"]``); the default for older records."""
    if not saved:
        return DEFAULT_PROMPT
    names = {spec.name for spec in dataclasses.fields(PromptConfig)}
    return PromptConfig(**{k: v for k, v in saved.items() if k in names})


def image_token_span(input_ids: np.ndarray, image_token_index: int, tokens_per_image: int) -> tuple[int, int]:
    """[start, end) of the image tokens, found from the ids, never assumed to sit at a fixed offset."""
    where = np.flatnonzero(np.asarray(input_ids) == image_token_index)
    if len(where) != tokens_per_image:
        raise ValueError(f"found {len(where)} image tokens in the prompt, the model expects {tokens_per_image}")
    start, end = int(where[0]), int(where[-1]) + 1
    if end - start != tokens_per_image:
        raise ValueError("the image tokens are not one contiguous block")
    return start, end


def build_prompt(processor, config, image, question: str, settings: PromptConfig | None = None) -> PromptInputs:
    """Tokenise the chat prompt with the image; locate the question's tokens through the offsets.

    The question is looked for after the system turn, so a system text that quotes it is not taken
    for it; the image tokens are found from the ids (``image_token_span``), wherever the order put them.
    """
    settings = settings if settings is not None else DEFAULT_PROMPT
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    template = processor.apply_chat_template(chat_messages(question, settings), add_generation_prompt=True,
                                             tokenize=False)
    # the template writes <bos> itself: tokenise without the tokenizer's own, as transformers'
    # ``ProcessorMixin.apply_chat_template`` does (Gemma 3's tokenizer would otherwise add a second <bos>)
    bos = processor.tokenizer.bos_token
    enc = processor(text=template, images=image, return_tensors="pt", return_offsets_mapping=True,
                    add_special_tokens=not (bos and template.startswith(bos)))
    offsets = enc.pop("offset_mapping")[0].tolist()
    expanded = template.replace(processor.boi_token, processor.full_image_sequence, 1)
    system_at = expanded.find(settings.system) if settings.system else -1
    q_start = expanded.find(question, system_at + len(settings.system) if system_at >= 0 else 0)
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
        settings=settings,
        template=template,
    )
