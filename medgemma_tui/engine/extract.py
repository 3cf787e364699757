"""Answer one question about one image and capture its attention in flight: sample -> AttentionRecord."""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image

from medgemma_tui.config.schema import PromptConfig
from medgemma_tui.engine.capture import CaptureSession, capturing
from medgemma_tui.engine.prompt import PromptInputs, build_prompt, prompt_json
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.engine.vision import VisionCache, with_features
from medgemma_tui.model.loading import LoadedModel

XRAY_MAX_SIDE = 512


def forbidden_tokens(config) -> list[int]:
    """Image and begin/end-of-image tokens must never be generated: a re-run would fail with "Image features
    and image tokens do not match" (the README, "How attention is captured")."""
    return [config.image_token_index, config.boi_token_index, config.eoi_token_index]


def end_token_ids(model) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos if isinstance(eos, list) else [eos] if eos is not None else [])


def model_inputs(loaded: LoadedModel, prompt: PromptInputs) -> dict[str, torch.Tensor]:
    """Move the processor's tensors to the model; pixels in the model's dtype; token_type_ids kept."""
    out = {}
    for name, value in prompt.inputs.items():
        if name == "pixel_values":
            value = value.to(dtype=loaded.model.dtype)
        out[name] = value.to(loaded.device)
    if "token_type_ids" not in out:
        raise ValueError("the processor gave no token_type_ids: the image block would not be bidirectional")
    return out


def xray_as_seen(image: Image.Image, side: int) -> np.ndarray:
    """The grayscale film stretched to the model's square input, as the processor does."""
    side = min(side, XRAY_MAX_SIDE)
    return np.asarray(image.convert("L").resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8)


def processor_input_size(processor) -> int:
    size = processor.image_processor.size
    return int(size["height"] if isinstance(size, dict) else size.height)


def decode_tokens(tokenizer, ids) -> list[str]:
    return [tokenizer.decode([int(i)]) for i in ids]


@torch.no_grad()
def extract_record(
    loaded: LoadedModel,
    image: Image.Image,
    question: str,
    max_new_tokens: int = 24,
    keep_layer_mean: bool = True,
    image_path: str | None = None,
    vision: VisionCache | None = None,
    prompt_settings: PromptConfig | None = None,
) -> AttentionRecord:
    """Greedy-generate the answer on the fast path and capture every question and answer row.

    With ``vision``, the film's image features are computed once and reused by the next rows on the
    same film (``engine.vision``). ``prompt_settings`` (the config's ``[prompt]``) shape the chat
    prompt; the record keeps them in ``extra["prompt"]``, so every later pass rebuilds the same prompt."""
    model, processor = loaded.model, loaded.processor
    t0 = time.perf_counter()
    prompt = build_prompt(processor, model.config, image, question, prompt_settings)
    inputs = model_inputs(loaded, prompt)
    P = prompt.prompt_length
    text_config = model.config.get_text_config()
    session = CaptureSession(
        num_layers=text_config.num_hidden_layers,
        keep_positions=set(prompt.question_positions.tolist()),
        keep_from=P - 1,
        keep_layer_mean=keep_layer_mean,
    )
    t1 = time.perf_counter()
    with capturing(session):
        out = model.generate(
            **with_features(model, inputs, vision),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            suppress_tokens=forbidden_tokens(model.config),
            output_logits=True,
            return_dict_in_generate=True,
        )
    t2 = time.perf_counter()
    answer_ids = out.sequences[0, P:].cpu().numpy()
    logits = torch.stack(out.logits, dim=1)[0].float()  # [A, vocab]
    logprobs = torch.log_softmax(logits, dim=-1)[torch.arange(len(answer_ids)), torch.as_tensor(answer_ids)]
    record = assemble_record(loaded, prompt, session, answer_ids, logprobs.cpu().numpy(), image, image_path)
    record.timings_s = {
        "prompt": t1 - t0,
        "generate_and_capture": t2 - t1,
        "assemble": time.perf_counter() - t2,
    }
    return record


def assemble_record(
    loaded: LoadedModel,
    prompt: PromptInputs,
    session: CaptureSession,
    answer_ids: np.ndarray,
    answer_logprobs: np.ndarray,
    image: Image.Image,
    image_path: str | None,
) -> AttentionRecord:
    tokenizer = loaded.processor.tokenizer
    P, A = prompt.prompt_length, len(answer_ids)
    fed_ids = np.concatenate([prompt.input_ids, answer_ids[:-1]]).astype(np.int64)  # [S]
    S = len(fed_ids)
    # rows: the question's tokens, then the row that produced each answer token (position P-1+k)
    q_positions = prompt.question_positions.tolist()
    a_positions = [P - 1 + k for k in range(A)]
    positions = q_positions + a_positions
    rows = session.rows_matrix(positions, S).numpy()  # [Q, L, H, S]
    start, end = prompt.image_token_span
    image_attn = np.ascontiguousarray(rows[..., start:end])
    question_attn = np.ascontiguousarray(rows[..., prompt.question_positions])
    bos = rows[..., 0] if fed_ids[0] == tokenizer.bos_token_id else np.zeros(rows.shape[:3], np.float32)
    image_share = image_attn.sum(-1)
    shares = np.stack([bos, image_share, rows.sum(-1) - bos - image_share], axis=-1).astype(np.float32)
    layer_mean = session.layer_mean_matrix(S).numpy() if session.keep_layer_mean else None
    answer_tokens = decode_tokens(tokenizer, answer_ids)
    ends = end_token_ids(loaded.model)
    answer_text = tokenizer.decode([int(i) for i in answer_ids if int(i) not in ends], skip_special_tokens=True)
    record = AttentionRecord(
        question=prompt.question,
        answer=answer_text.strip(),
        model=loaded.info,
        input_ids=fed_ids,
        tokens=decode_tokens(tokenizer, fed_ids),
        prompt_length=P,
        answer_ids=answer_ids.astype(np.int64),
        answer_tokens=answer_tokens,
        answer_logprobs=answer_logprobs.astype(np.float32),
        image_token_span=prompt.image_token_span,
        question_positions=prompt.question_positions,
        question_offsets=prompt.question_offsets,
        query_positions=np.asarray(positions, dtype=np.int64),
        query_kind=["question"] * len(q_positions) + ["answer"] * A,
        query_answer_index=np.asarray([-1] * len(q_positions) + list(range(A)), dtype=np.int64),
        image_attn=image_attn.astype(np.float32),
        question_attn=question_attn.astype(np.float32),
        shares=shares,
        layer_mean_attn=layer_mean,
        xray=xray_as_seen(image, processor_input_size(loaded.processor)),
        image_size=image.size,
        image_path=image_path,
        extra={"end_token_ids": sorted(ends), "prompt": prompt_json(prompt)},
    )
    record.validate()
    return record
