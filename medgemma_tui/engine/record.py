"""AttentionRecord: everything one answered question leaves behind, read by analysis, export and the app.

A record is plain numpy and Python values: once it exists nothing reaches back into the model or the
processor, so a record read from a results tree is indistinguishable from one fresh from the GPU.

Query rows. Row ``r`` of the per-query arrays is the attention *of* sequence position
``query_positions[r]``. Two kinds of rows are captured:

- ``question`` rows: the question's own tokens in the prompt (their position is the token they read);
- ``answer`` rows: the row that *produced* answer token ``k`` is the position before it, so answer
  token 0 is produced by the last prompt position and answer token ``k`` by the position of answer
  token ``k - 1``. ``query_answer_index[r]`` is ``k`` for those rows, -1 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medgemma_tui.model.info import ModelInfo

SHARE_PARTS = ("bos", "image", "text")  # the three parts of the prompt a row's attention is shared between
SHARE_COLUMNS = tuple(f"{name}_share" for name in SHARE_PARTS)  # as views.row_shares names them


TARGET_INDEX = "target_index"  # extra: the answer token the gradient views and attribution methods explain


@dataclass
class AttentionRecord:
    """One sample's answer and its attention, captured in fp32."""

    question: str
    answer: str
    model: ModelInfo
    # the whole token sequence that was fed (prompt + answer tokens except the last one generated)
    input_ids: np.ndarray  # [S] int64
    tokens: list[str]  # [S] decoded text of each position
    prompt_length: int  # P: positions 0..P-1 are the prompt
    answer_ids: np.ndarray  # [A] int64, every generated token (the last one may be an end token)
    answer_tokens: list[str]  # [A]
    answer_logprobs: np.ndarray  # [A] float32 log-probability of each generated token
    image_token_span: tuple[int, int]  # [start, end) in the sequence, found from input_ids
    question_positions: np.ndarray  # [Tq] prompt positions of the question's own tokens
    question_offsets: list[tuple[int, int]]  # [Tq] character span of each question token in `question`
    query_positions: np.ndarray  # [Q] sequence position of each captured query row
    query_kind: list[str]  # [Q] "question" or "answer"
    query_answer_index: np.ndarray  # [Q] k for the row that produced answer token k, else -1
    image_attn: np.ndarray  # [Q, L, H, N] float32 attention to the N image tokens (row-major grid)
    question_attn: np.ndarray  # [Q, L, H, Tq] float32 attention to the question's tokens
    shares: np.ndarray  # [Q, L, H, 3] float32 share of each row on BOS, image tokens, other text
    layer_mean_attn: np.ndarray | None  # [L, S, S] float32 head-mean attention of every fed position
    xray: np.ndarray | None = None  # [h, w] uint8 grayscale of the image as the model saw it (square)
    image_size: tuple[int, int] | None = None  # (width, height) of the original image in pixels
    image_path: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # views that need the model beyond the answer pass, computed on request and kept with the record:
    # "gradient" [L, H, N] (attention x gradient, positive part, of the first answer row), "relevancy" [N]
    # (relevancy propagated through the layers, same row), "gradcam" [N] (Grad-CAM on the last SigLIP
    # layer pooled to the grid), and for the relative view the generic prompt's rows on the same image:
    # "generic" [L, H, N] (its first answer row), "generic_answers" and "generic_question" [L, H, N]
    # (the means of its answer rows and of its question rows)
    maps: dict[str, np.ndarray] = field(default_factory=dict)

    # ---- shape facts -------------------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int]:
        return self.model.grid

    @property
    def num_layers(self) -> int:
        return self.image_attn.shape[1]

    @property
    def num_heads(self) -> int:
        return self.image_attn.shape[2]

    @property
    def answer_rows(self) -> np.ndarray:
        """Row indices of the answer rows, in answer-token order."""
        rows = np.flatnonzero(self.query_answer_index >= 0)
        return rows[np.argsort(self.query_answer_index[rows])]

    @property
    def content_answer_rows(self) -> np.ndarray:
        """Answer rows whose produced token is not an end token (all answer rows if every one is)."""
        ends = set(self.extra.get("end_token_ids", []))
        rows = self.answer_rows
        keep = [r for r in rows if int(self.answer_ids[self.query_answer_index[r]]) not in ends]
        return np.asarray(keep if keep else rows, dtype=np.int64)

    @property
    def first_content_index(self) -> int:
        """Index into the answer tokens of the first one that is not an end token (0 if every one is)."""
        rows = self.content_answer_rows
        return int(self.query_answer_index[rows[0]]) if len(rows) else 0

    @property
    def question_rows(self) -> np.ndarray:
        return np.flatnonzero(self.query_answer_index < 0)

    def row_label(self, row: int) -> str:
        """How a view names a query row: which token it produced or which token it is."""
        k = int(self.query_answer_index[row])
        if k >= 0:
            return f"row {int(self.query_positions[row])} → answer token {k} {self.answer_tokens[k]!r}"
        pos = int(self.query_positions[row])
        return f"row {pos} = question token {self.tokens[pos]!r}"

    def validate(self) -> None:
        """Raise ValueError where the arrays disagree with each other."""
        q = len(self.query_positions)
        n = self.grid[0] * self.grid[1]
        start, end = self.image_token_span
        if end - start != n:
            raise ValueError(f"image span {self.image_token_span} holds {end - start} tokens, grid needs {n}")
        if self.image_attn.shape[0] != q or self.image_attn.shape[-1] != n:
            raise ValueError(f"image_attn shape {self.image_attn.shape} does not fit {q} rows x {n} cells")
        if self.question_attn.shape[:3] != self.image_attn.shape[:3]:
            raise ValueError("question_attn and image_attn disagree on rows, layers or heads")
        if self.shares.shape != (*self.image_attn.shape[:3], 3):
            raise ValueError(f"shares shape {self.shares.shape} is not {(*self.image_attn.shape[:3], 3)}")
        if len(self.query_kind) != q or len(self.query_answer_index) != q:
            raise ValueError("query_kind / query_answer_index length differs from query_positions")


def first_answer_token(record: AttentionRecord) -> dict[str, Any]:
    """The first answer token that is not an end token (the one the default map's row produced)."""
    index = record.first_content_index
    return {
        "index": index,
        "id": int(record.answer_ids[index]),
        "text": record.answer_tokens[index],
        "logprob": float(record.answer_logprobs[index]),
    }
