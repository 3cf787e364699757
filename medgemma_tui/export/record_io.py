"""An AttentionRecord on disk: ``attention/{key}.safetensors`` (arrays + JSON metadata), atomically.

Enough to reopen the sample in the app with every layer, head and token, without the model. The
head-mean full matrices (rollout) are stored in float16 to keep a tree small; the per-head image and
question rows stay float32.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.export.atomic import atomic_file
from medgemma_tui.model.info import ModelInfo

FORMAT = "medtui-record/1"
ARRAYS = (
    "input_ids",
    "answer_ids",
    "answer_logprobs",
    "question_positions",
    "query_positions",
    "query_answer_index",
    "image_attn",
    "question_attn",
    "shares",
)


def save_record(record: AttentionRecord, path: str | os.PathLike) -> Path:
    path = Path(path)
    tensors = {name: np.ascontiguousarray(getattr(record, name)) for name in ARRAYS}
    if record.layer_mean_attn is not None:
        tensors["layer_mean_attn"] = record.layer_mean_attn.astype(np.float16)
    if record.xray is not None:
        tensors["xray"] = np.ascontiguousarray(record.xray, dtype=np.uint8)
    for name, array in record.maps.items():
        tensors[f"maps.{name}"] = np.ascontiguousarray(array, dtype=np.float32)
    meta = {
        "format": FORMAT,
        "question": record.question,
        "answer": record.answer,
        "model": json.dumps(record.model.to_json()),
        "tokens": json.dumps(record.tokens),
        "answer_tokens": json.dumps(record.answer_tokens),
        "prompt_length": str(record.prompt_length),
        "image_token_span": json.dumps(list(record.image_token_span)),
        "question_offsets": json.dumps([list(o) for o in record.question_offsets]),
        "query_kind": json.dumps(record.query_kind),
        "image_size": json.dumps(list(record.image_size) if record.image_size else None),
        "image_path": record.image_path or "",
        "timings_s": json.dumps(record.timings_s),
        "extra": json.dumps(record.extra),
    }
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_record(path: str | os.PathLike) -> AttentionRecord:
    from safetensors import safe_open

    path = Path(path)
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a medtui record (format {meta.get('format')!r})")
    arrays = load_file(str(path))
    layer_mean = arrays.get("layer_mean_attn")
    size = json.loads(meta["image_size"])
    return AttentionRecord(
        question=meta["question"],
        answer=meta["answer"],
        model=ModelInfo.from_json(json.loads(meta["model"])),
        input_ids=arrays["input_ids"],
        tokens=json.loads(meta["tokens"]),
        prompt_length=int(meta["prompt_length"]),
        answer_ids=arrays["answer_ids"],
        answer_tokens=json.loads(meta["answer_tokens"]),
        answer_logprobs=arrays["answer_logprobs"],
        image_token_span=tuple(json.loads(meta["image_token_span"])),
        question_positions=arrays["question_positions"],
        question_offsets=[tuple(o) for o in json.loads(meta["question_offsets"])],
        query_positions=arrays["query_positions"],
        query_kind=json.loads(meta["query_kind"]),
        query_answer_index=arrays["query_answer_index"],
        image_attn=arrays["image_attn"],
        question_attn=arrays["question_attn"],
        shares=arrays["shares"],
        layer_mean_attn=None if layer_mean is None else layer_mean.astype(np.float32),
        xray=arrays.get("xray"),
        image_size=tuple(size) if size else None,
        image_path=meta.get("image_path") or None,
        timings_s=json.loads(meta["timings_s"]),
        extra=json.loads(meta["extra"]),
        maps={name.removeprefix("maps."): a for name, a in arrays.items() if name.startswith("maps.")},
    )
