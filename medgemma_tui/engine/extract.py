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


AUTO_BATCH_MAX = 8  # a batch holds the rows of one film: a hard-positive set asks a handful of questions each
PROMPT_TEXT_TOKENS = 64  # a VQA prompt's tokens besides the image's: chat turns, question, instruction


def row_bytes(config, max_new_tokens: int, dtype_bytes: int) -> int:
    """What one more row of a batch holds on the device while it is answered and captured, from the config.

    The sequence is the image's tokens, ``PROMPT_TEXT_TOKENS`` and the answer. Per row: its key/value
    cache (every layer, ``num_key_value_heads`` x ``head_dim``), the captured fp32 rows (every head of the
    question and answer rows, and the layer-mean matrix), one layer's fp32 prefill probabilities and MLP
    activations at a time, and the answer's logits over the vocabulary (kept for the log-probabilities)."""
    text = config.get_text_config()
    seq = config.mm_tokens_per_image + PROMPT_TEXT_TOKENS + max_new_tokens
    layers, heads = text.num_hidden_layers, text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    cache = 2 * layers * text.num_key_value_heads * head_dim * seq * dtype_bytes
    captured = 4 * layers * seq * (heads * (PROMPT_TEXT_TOKENS + max_new_tokens) + seq)
    prefill = 4 * 2 * heads * seq * seq + 3 * seq * text.intermediate_size * dtype_bytes
    logits = 2 * 4 * max_new_tokens * text.vocab_size
    return cache + captured + prefill + logits


def auto_batch_size(loaded: LoadedModel, max_new_tokens: int) -> int:
    """The ``[decoding] batch_size = "auto"`` rule: 1 on a CPU (one row's ops already use every core); on a
    GPU, as many rows as half its free memory holds now (``row_bytes`` each; the model is loaded, so its
    weights are already counted out), at least 1 and at most ``AUTO_BATCH_MAX``."""
    device = torch.device(loaded.device)
    if device.type != "cuda":
        return 1
    free, _ = torch.cuda.mem_get_info(device)
    per_row = row_bytes(loaded.model.config, max_new_tokens, loaded.model.dtype.itemsize)
    return max(1, min(AUTO_BATCH_MAX, int(0.5 * free) // per_row))


def batch_size_for(setting: int | str, loaded: LoadedModel | None, max_new_tokens: int) -> int:
    """The rows per generate that ``[decoding] batch_size`` asks for on ``loaded``'s device."""
    if setting != "auto":
        return int(setting)
    return 1 if loaded is None else auto_batch_size(loaded, max_new_tokens)


def batch_inputs(loaded: LoadedModel, prompts: list[PromptInputs]) -> dict[str, torch.Tensor]:
    """The prompts of one film as one left-padded batch: ``input_ids`` and ``token_type_ids`` [B, S] with
    padding (``pad_token_id``, type 0: never part of an image block) before the shorter prompts, the
    ``attention_mask`` 0 on it, and the film's pixels once (every row's are the same film)."""
    if len(prompts) == 1:
        return model_inputs(loaded, prompts[0])
    rows = [model_inputs(loaded, prompt) for prompt in prompts]
    if any(not torch.equal(row["pixel_values"], rows[0]["pixel_values"]) for row in rows[1:]):
        raise ValueError("a batch holds the rows of one film")
    width = max(row["input_ids"].shape[1] for row in rows)
    pad_id = loaded.processor.tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has no pad token: rows of different lengths cannot be batched")

    def left_padded(name: str, value: int) -> torch.Tensor:
        return torch.cat([torch.nn.functional.pad(row[name], (width - row[name].shape[1], 0), value=value)
                          for row in rows])  # [B, S]

    return {"input_ids": left_padded("input_ids", pad_id), "attention_mask": left_padded("attention_mask", 0),
            "token_type_ids": left_padded("token_type_ids", 0), "pixel_values": rows[0]["pixel_values"]}


def row_answer(sequence: torch.Tensor, ends: set[int]) -> np.ndarray:
    """A batch row's generated tokens up to its own first end token (included): after it, ``generate``
    only pads the row while the longer rows go on."""
    ids = sequence.cpu().numpy()
    stops = [i for i, token in enumerate(ids.tolist()) if token in ends]
    return ids[: stops[0] + 1] if stops else ids


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
    return extract_records(loaded, image, [question], max_new_tokens, keep_layer_mean, image_path, vision,
                           prompt_settings)[0]


@torch.no_grad()
def extract_records(
    loaded: LoadedModel,
    image: Image.Image,
    questions: list[str],
    max_new_tokens: int = 24,
    keep_layer_mean: bool = True,
    image_path: str | None = None,
    vision: VisionCache | None = None,
    prompt_settings: PromptConfig | None = None,
) -> list[AttentionRecord]:
    """``extract_record`` for several questions about one film, answered by one ``generate``.

    The prompts are left-padded into one batch (``batch_inputs``), the film's features computed once and
    given to every row (a fresh ``VisionCache`` when none is given), one ``CaptureSession`` per row.
    Each row stops at its own end token (``row_answer``); its logits, rows and record are its own, the
    same as the batch-1 record of the question (``engine.capture`` on padding and positions)."""
    model, processor = loaded.model, loaded.processor
    t0 = time.perf_counter()
    prompts, prompt_s = [], []
    for question in questions:
        start = time.perf_counter()
        prompts.append(build_prompt(processor, model.config, image, question, prompt_settings))
        prompt_s.append(time.perf_counter() - start)
    inputs = batch_inputs(loaded, prompts)
    if len(prompts) > 1 and vision is None:
        vision = VisionCache()
    width = int(inputs["input_ids"].shape[1])
    text_config = model.config.get_text_config()
    sessions = [CaptureSession(
        num_layers=text_config.num_hidden_layers,
        keep_positions=set(prompt.question_positions.tolist()),
        keep_from=prompt.prompt_length - 1,
        keep_layer_mean=keep_layer_mean,
    ) for prompt in prompts]
    padding = {} if len(prompts) == 1 else {"pad_token_id": processor.tokenizer.pad_token_id}
    t1 = time.perf_counter()
    with capturing(sessions):
        out = model.generate(
            **with_features(model, inputs, vision),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            suppress_tokens=forbidden_tokens(model.config),
            output_logits=True,
            return_dict_in_generate=True,
            **padding,
        )
    t2 = time.perf_counter()
    ends = end_token_ids(model)
    logits = torch.stack(out.logits, dim=1)  # [B, steps, vocab]
    records = []
    for b, (prompt, session) in enumerate(zip(prompts, sessions, strict=True)):
        t3 = time.perf_counter()
        answer_ids = row_answer(out.sequences[b, width:], ends)
        row_logits = logits[b, : len(answer_ids)].float()  # [A, vocab]
        logprobs = torch.log_softmax(row_logits, dim=-1)[torch.arange(len(answer_ids)), torch.as_tensor(answer_ids)]
        record = assemble_record(loaded, prompt, session, answer_ids, logprobs.cpu().numpy(), image, image_path)
        record.timings_s = {
            "prompt": prompt_s[b] if len(prompts) > 1 else t1 - t0,
            "generate_and_capture": (t2 - t1) / len(prompts),  # a batch's generate, shared by its rows
            "assemble": time.perf_counter() - t3,
        }
        if len(prompts) > 1:
            record.extra["batch_rows"] = len(prompts)
        records.append(record)
    return records


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
