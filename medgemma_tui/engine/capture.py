"""Exact attention capture through a registered attention function (DESIGN.md, facts 3, 7 and 8).

The text decoder runs ``capture_attention_forward``: SDPA computes the layer's output as usual, and
while a ``CaptureSession`` is active the same post-RoPE queries and cached keys give
``softmax(q k^T * scaling + mask)`` in fp32 for the rows we keep. Rows are taken in flight during
``generate``: the prefill holds every prompt row, each decode step one answer row, so the record costs
about what answering costs. Per-head L x L matrices live only inside one call, one layer at a time.

The mask function ``eager_mask`` is registered under the same name: without it a new attention name
gets ``mask=None`` and SDPA silently drops the bidirectional image block and the sliding window.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

CAPTURE_ATTENTION = "medtui_capture"

_active_session: contextvars.ContextVar[CaptureSession | None] = contextvars.ContextVar(
    "medtui_capture_session", default=None
)


def register_capture_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(CAPTURE_ATTENTION, capture_attention_forward)
    AttentionMaskInterface.register(CAPTURE_ATTENTION, eager_mask)


def attention_probs_fp32(
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    softcap: float | None = None,
) -> torch.Tensor:
    """fp32 ``softmax(q k^T * scaling + mask)`` for every query head.

    query: [B, H, q, D]; key: [B, KVH, K, D] (query head h reads KV head h // (H / KVH)).
    Returns [B, H, q, K] float32.
    """
    heads, kv_heads = query.shape[1], key.shape[1]
    key = key.float().repeat_interleave(heads // kv_heads, dim=1)  # [B, H, K, D]
    scores = torch.matmul(query.float(), key.transpose(-1, -2)) * scaling  # [B, H, q, K]
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, float("-inf"))
        else:
            scores = scores + attention_mask.float()
    return torch.softmax(scores, dim=-1)


@dataclass
class CaptureSession:
    """Collects attention rows of the text decoder while the model runs.

    ``keep_positions`` and every position from ``keep_from`` on: the query positions whose per-head
    rows are kept (question tokens, then the answer rows); the head-mean of every row
    is kept too when ``keep_layer_mean`` (rollout needs it). Rows are stored with their keys mapped to
    sequence positions, so a sliding layer's short decode-time cache lands in the right columns.
    """

    num_layers: int
    keep_positions: set[int]
    keep_from: int | None = None  # keep every position from here on (the answer rows)
    keep_layer_mean: bool = True
    # (layer, position) -> [H, visible] float32 (visible = position + 1 columns)
    head_rows: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    # (layer, position) -> [visible] float32 head mean
    mean_rows: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    calls: int = 0

    def observe(self, layer_idx: int, probs: torch.Tensor, query_positions: torch.Tensor) -> None:
        """probs: [H, q, K] fp32 for one sequence; query_positions: [q] sequence positions."""
        self.calls += 1
        keys = probs.shape[-1]
        last = int(query_positions[-1])
        first_key = last + 1 - keys  # the cache holds the most recent `keys` positions
        for i, pos in enumerate(query_positions.tolist()):
            row = probs[:, i, :]  # [H, K]
            visible = pos + 1
            # keys after `pos` are masked (zero) except inside the bidirectional image block
            width = max(visible, first_key + keys)
            full = row.new_zeros((row.shape[0], width))
            full[:, first_key : first_key + keys] = row
            if pos in self.keep_positions or (self.keep_from is not None and pos >= self.keep_from):
                self.head_rows[(layer_idx, pos)] = full.cpu()
            if self.keep_layer_mean:
                self.mean_rows[(layer_idx, pos)] = full.mean(dim=0).cpu()

    def rows_matrix(self, positions: list[int], seq_len: int) -> torch.Tensor:
        """[Q, L, H, seq_len] float32 of the kept per-head rows, zero-padded on the right."""
        any_row = next(iter(self.head_rows.values()))
        out = torch.zeros((len(positions), self.num_layers, any_row.shape[0], seq_len))
        for r, pos in enumerate(positions):
            for layer in range(self.num_layers):
                row = self.head_rows[(layer, pos)][:, :seq_len]
                out[r, layer, :, : row.shape[1]] = row
        return out

    def layer_mean_matrix(self, seq_len: int) -> torch.Tensor:
        """[L, S, S] head-mean attention of every fed position."""
        out = torch.zeros((self.num_layers, seq_len, seq_len))
        for (layer, pos), row in self.mean_rows.items():
            if pos < seq_len:
                w = min(row.shape[0], seq_len)
                out[layer, pos, :w] = row[:w]
        return out


@contextmanager
def capturing(session: CaptureSession):
    token = _active_session.set(session)
    try:
        yield session
    finally:
        _active_session.reset(token)


def capture_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
):
    """SDPA for the output; fp32 probabilities for the capture session, one layer at a time."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    output, _ = sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )
    session = _active_session.get()
    layer_idx = getattr(module, "layer_idx", None)
    if session is None or layer_idx is None:  # SigLIP modules have no layer_idx: pass them through
        return output, None
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    position_ids = kwargs.get("position_ids")
    if position_ids is None:
        raise RuntimeError("capture needs position_ids from the decoder layer (transformers >= 5)")
    with torch.no_grad():
        probs = attention_probs_fp32(query[:1], key[:1], attention_mask, scaling, kwargs.get("softcap"))
    session.observe(layer_idx, probs[0], position_ids[0])
    return output, None
