"""The bench's workload: one image, one question, one answer length, and the variants timed on it.

Every variant runs on one sequence: the same image and question, and the same number of answer
tokens (the generation config's ``min_new_tokens`` is pinned to ``max_new_tokens`` for the run, so a
random-weight model that would stop early cannot make one variant cheaper than another):

- floors: one forward over prompt + answer on SDPA everywhere; a plain greedy generate on SDPA;
- ours: a capture forward over the same sequence (``capture_over_forward``), and the whole sample,
  ``extract_record`` (prompt, generate with rows captured in flight, record assembly);
- the old way: one forward with eager attention everywhere (the SigLIP tower too) and
  ``output_attentions=True``; the old whole sample: generate with ``output_attentions=True`` on eager,
  then an eager ``output_attentions`` re-run of the full sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgemma_tui.engine.capture import CaptureSession, capturing
from medgemma_tui.engine.extract import extract_record, forbidden_tokens, model_inputs
from medgemma_tui.engine.prompt import build_prompt

BENCH_QUESTION = "Is there a pleural effusion on this chest radiograph?"
BENCH_NEW_TOKENS = 8
BENCH_IMAGE_SIDE = 512


def bench_image(side: int = BENCH_IMAGE_SIDE):
    """A deterministic film-like picture: dark lung fields in a brighter body, on black."""
    from PIL import Image

    y, x = np.mgrid[0:side, 0:side] / side
    body = ((x - 0.5) / 0.45) ** 2 + ((y - 0.55) / 0.5) ** 2 < 1
    lungs = (((np.abs(x - 0.5) - 0.2) / 0.13) ** 2 + ((y - 0.5) / 0.3) ** 2) < 1
    film = 0.15 + 0.55 * body - 0.35 * lungs + 0.05 * np.sin(40 * y)  # ribs, faintly
    gray = np.clip(film * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


@contextmanager
def attention_paths(model, text: str, vision: str):
    """Run the text decoder and the SigLIP tower on the named attention functions, then restore."""
    config = model.config
    before = {"text_config": config.get_text_config()._attn_implementation,
              "vision_config": config.vision_config._attn_implementation}
    model.set_attn_implementation({"text_config": text, "vision_config": vision})
    try:
        yield
    finally:
        model.set_attn_implementation(before)


@contextmanager
def answer_length(model, new_tokens: int):
    """Every generate of the run makes exactly ``new_tokens`` tokens: same sequence for every variant."""
    generation = model.generation_config
    before = generation.min_new_tokens
    generation.min_new_tokens = new_tokens
    try:
        yield
    finally:
        generation.min_new_tokens = before


@dataclass
class Variant:
    name: str
    what: str
    run: Callable[[], Any]
    # entered before the timer starts and left after it stops: switching attention functions walks
    # every module, which is not the variant's work
    setup: Callable[[], Any] = nullcontext


class Workload:
    """One image, one question, one answer length: the same sequence for every variant."""

    def __init__(self, loaded, image, question: str, new_tokens: int):
        self.loaded, self.image, self.question, self.new_tokens = loaded, image, question, new_tokens
        self.suppress = forbidden_tokens(loaded.config)
        record = extract_record(loaded, image, question, max_new_tokens=new_tokens)
        self.record = record
        self.answers: dict[str, list[int]] = {}  # the answer each generating variant made last
        # prompt + every answer token: the sequence the forwards and the old re-run read
        self.sequence = self._with_answer(self._prompt_inputs(), torch_tensor(record.answer_ids, loaded.device))

    @property
    def model(self):
        return self.loaded.model

    def _prompt(self):
        return build_prompt(self.loaded.processor, self.loaded.config, self.image, self.question)

    def _prompt_inputs(self) -> dict:
        return model_inputs(self.loaded, self._prompt())

    @staticmethod
    def _with_answer(inputs: dict, answer) -> dict:
        import torch

        answer = answer.reshape(1, -1)  # [1, A]
        out = dict(inputs)
        out["input_ids"] = torch.cat([inputs["input_ids"], answer], dim=1)
        out["attention_mask"] = torch.ones_like(out["input_ids"])
        out["token_type_ids"] = torch.cat([inputs["token_type_ids"], torch.zeros_like(answer)], dim=1)
        return out

    def _session(self):
        record = self.record
        return CaptureSession(
            num_layers=record.model.num_layers,
            keep_positions=set(record.question_positions.tolist()),
            keep_from=record.prompt_length - 1,
        )

    def on_sdpa(self):
        return attention_paths(self.model, "sdpa", "sdpa")

    def on_eager(self):
        return attention_paths(self.model, "eager", "eager")

    # the floors (run under on_sdpa)
    def plain_forward(self):
        return self.model(**self.sequence, use_cache=False)

    def plain_generate(self):
        inputs = self._prompt_inputs()
        sequences = self.model.generate(**inputs, max_new_tokens=self.new_tokens, do_sample=False,
                                        suppress_tokens=self.suppress)
        self.answers["plain_generate"] = sequences[0, inputs["input_ids"].shape[1]:].tolist()
        return sequences

    # ours
    def capture_forward(self):
        with capturing(self._session()) as session:
            self.model(**self.sequence, use_cache=False)
        return session

    def our_sample(self):
        record = extract_record(self.loaded, self.image, self.question, max_new_tokens=self.new_tokens)
        self.answers["our_sample"] = record.answer_ids.tolist()
        return record

    # the old way (run under on_eager): eager everywhere, output_attentions
    def old_forward(self):
        return self.model(**self.sequence, output_attentions=True, use_cache=False)

    def old_sample(self):
        inputs = self._prompt_inputs()
        generated = self.model.generate(**inputs, max_new_tokens=self.new_tokens, do_sample=False,
                                        suppress_tokens=self.suppress, output_attentions=True,
                                        return_dict_in_generate=True)
        answer = generated.sequences[:, inputs["input_ids"].shape[1]:]
        rerun = self.model(**self._with_answer(inputs, answer), output_attentions=True, use_cache=False)
        self.answers["old_sample"] = answer[0].tolist()
        return generated, rerun

    def answer_notes(self) -> list[str]:
        """Where a variant answered differently from the record (eager and SDPA round differently)."""
        expected = self.record.answer_ids.tolist()
        return [f"{name} generated {answer}, the record {expected} (same length, so the same work)"
                for name, answer in self.answers.items() if answer != expected]

    def variants(self) -> list[Variant]:
        return [
            Variant("plain_forward", "one forward over prompt + answer, SDPA everywhere", self.plain_forward,
                    self.on_sdpa),
            Variant("capture_forward", "the same forward capturing every question and answer row",
                    self.capture_forward),
            Variant("old_forward", "the same forward, eager everywhere, output_attentions=True", self.old_forward,
                    self.on_eager),
            Variant("plain_generate", "prompt + greedy generate, SDPA everywhere", self.plain_generate, self.on_sdpa),
            Variant("our_sample", "extract_record: prompt, generate with in-flight capture, record", self.our_sample),
            Variant("old_sample", "prompt + eager generate(output_attentions) + eager re-run of the sequence",
                    self.old_sample, self.on_eager),
        ]


def torch_tensor(values, device):
    import torch

    return torch.as_tensor(np.asarray(values), device=device)
