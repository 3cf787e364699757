"""Exact attention capture through a registered attention function (transformers' AttentionInterface).

The text decoder runs ``capture_attention_forward``: SDPA computes the layer's output as usual, and
while a ``CaptureSession`` is active the same post-RoPE queries and cached keys give
``softmax(q k^T * scaling + mask)`` in fp32 for the rows we keep. Rows are taken in flight during
``generate``: the prefill holds every prompt row, each decode step one answer row, so the record costs
about what answering costs. Per-head L x L matrices live only inside one call, one layer at a time.

The mask function ``eager_mask`` is registered under the same name: without it a new attention name
gets ``mask=None`` and SDPA silently drops the bidirectional image block and the sliding window.

Batches: one ``CaptureSession`` per batch row (``capturing`` takes a list of them). ``generate`` pads the
rows on the left and gives each row its own positions (``position_ids`` = the attention mask's cumulative
sum - 1, padding at 0; transformers' ``GenerationMixin._prepare_position_ids_for_generation``), while the
cache and the mask run on cache indices, padding included. A row's probabilities are computed on its own
query rows and keys only: the padding queries before its first token and the padding keys before its first
position are cut off (the mask gives them no mass), so each row's record is its batch-1 record.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

CAPTURE_ATTENTION = "medtui_capture"
# probabilities with fewer entries than this (a decode step's rows: heads x cached keys) are computed
# on one CPU thread; torch's own grain size for splitting an op across threads
SMALL_PROBS = 32768

_active_batch: contextvars.ContextVar[CaptureBatch | None] = contextvars.ContextVar(
    "medtui_capture_batch", default=None
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
    Returns [B, H, q, K] float32. Query heads 2j and 2j+1 (a GQA group) are folded into one query block
    against their shared keys: one batched matmul per KV head, no per-head copy of the keys (a
    decode-step row costs 0.08 ms instead of 0.5 ms with ``repeat_interleave`` on one core).
    """
    batch, heads, q_len, dim = query.shape
    kv_heads, k_len = key.shape[1], key.shape[2]
    folded = query.float().reshape(batch, kv_heads, (heads // kv_heads) * q_len, dim)  # [B, KVH, G*q, D]
    scores = torch.matmul(folded, key.float().transpose(-1, -2))  # [B, KVH, G*q, K]
    scores = scores.view(batch, heads, q_len, k_len).mul_(scaling)  # [B, H, q, K]
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill_(~attention_mask, float("-inf"))
        else:
            scores = scores.add_(attention_mask.float())
    return torch.softmax(scores, dim=-1)


def first_real_query(positions: list[int]) -> int:
    """Index of a forward pass's first query that is one of the row's tokens, not left padding.

    The row's own tokens of a pass are consecutive positions ending at the last query; the padding before
    them has position 0 under ``generate`` (see the module docstring), which breaks the run."""
    first = len(positions) - 1
    while first > 0 and positions[first - 1] == positions[first] - 1:
        first -= 1
    return first


@dataclass(frozen=True)
class RowStep:
    """One batch row in one forward pass: its first real query, their positions, which of them are kept."""

    first: int  # query index of the row's first token (left padding before it)
    positions: list[int]  # sequence positions of the queries from ``first`` on
    kept: list[int]  # indices into ``positions`` of the rows kept per head


@dataclass
class CaptureSession:
    """Collects attention rows of the text decoder while the model runs (one sequence: one batch row).

    ``keep_positions`` and every position from ``keep_from`` on: the query positions whose per-head
    rows are kept (question tokens, then the answer rows); the head-mean of every row
    is kept too when ``keep_layer_mean`` (rollout needs it). Rows are stored with their keys mapped to
    sequence positions, so a sliding layer's short decode-time cache lands in the right columns.

    Each call stores one block per layer (the prefill's rows as one matrix, then one row per decode
    step), on the model's device; ``rows_matrix`` and ``layer_mean_matrix`` assemble them on the CPU.
    A call whose rows are all kept (every decode step) stores no head mean: it is taken from the
    kept rows when the matrix is assembled, one op fewer per layer and step.
    """

    num_layers: int
    keep_positions: set[int]
    keep_from: int | None = None  # keep every position from here on (the answer rows)
    keep_layer_mean: bool = True
    # layer -> blocks of kept per-head rows: (positions, [n, H, W] float32), W = last position + 1
    head_blocks: dict[int, list[tuple[list[int], torch.Tensor]]] = field(default_factory=dict)
    # layer -> blocks of head-mean rows of calls with rows not kept: (positions, [q, W] float32)
    mean_blocks: dict[int, list[tuple[list[int], torch.Tensor]]] = field(default_factory=dict)
    calls: int = 0

    def step(self, query_positions: list[int]) -> RowStep:
        """The row's part of a forward pass whose queries of this row sit at ``query_positions``."""
        first = first_real_query(query_positions)
        positions = query_positions[first:]
        return RowStep(first, positions, [i for i, pos in enumerate(positions) if self._kept(pos)])

    def _kept(self, pos: int) -> bool:
        return pos in self.keep_positions or (self.keep_from is not None and pos >= self.keep_from)

    def observe(self, layer_idx: int, probs: torch.Tensor, step: RowStep) -> None:
        """probs: [H, q, K] fp32 of the row's own queries (``step.positions``) over its own latest K keys."""
        self.calls += 1
        positions, kept = step.positions, step.kept
        keys = probs.shape[-1]
        first_key = positions[-1] + 1 - keys  # the cache holds the most recent `keys` positions
        if first_key < 0:
            raise RuntimeError(f"layer {layer_idx}: {keys} keys for a query at position {positions[-1]}")
        # keys after a row's position are masked (zero) except inside the bidirectional image block,
        # so every row of the block spans positions 0..last
        if first_key > 0:
            probs = torch.nn.functional.pad(probs, (first_key, 0))  # [H, q, last + 1]
        if kept:
            rows = probs if len(kept) == len(positions) else probs[:, kept, :]
            self.head_blocks.setdefault(layer_idx, []).append(
                ([positions[i] for i in kept], rows.transpose(0, 1))  # [n, H, W]
            )
        if self.keep_layer_mean and len(kept) < len(positions):
            self.mean_blocks.setdefault(layer_idx, []).append((positions, probs.mean(dim=0)))  # [q, W]

    def rows_matrix(self, positions: list[int], seq_len: int) -> torch.Tensor:
        """[Q, L, H, seq_len] float32 of the kept per-head rows, zero-padded on the right."""
        heads = next(iter(self.head_blocks.values()))[0][1].shape[1]
        out = torch.zeros((self.num_layers, len(positions), heads, seq_len))
        for layer in range(self.num_layers):
            where = {pos: (b, i) for b, (block_pos, _) in enumerate(self.head_blocks[layer]) for i, pos in
                     enumerate(block_pos)}
            wanted: dict[int, tuple[list[int], list[int]]] = {}  # block -> (its rows, rows of out)
            for r, pos in enumerate(positions):
                b, i = where[pos]
                wanted.setdefault(b, ([], []))
                wanted[b][0].append(i)
                wanted[b][1].append(r)
            for b, (rows, targets) in wanted.items():
                block = self.head_blocks[layer][b][1][rows, :, :seq_len].cpu()  # [n, H, w]
                out[layer, targets, :, : block.shape[-1]] = block
        return out.transpose(0, 1)

    def layer_mean_matrix(self, seq_len: int) -> torch.Tensor:
        """[L, S, S] head-mean attention of every fed position."""
        out = torch.zeros((self.num_layers, seq_len, seq_len))
        for layer in range(self.num_layers):
            # kept rows first (the decode steps store no mean of their own), then the stored means
            blocks = [(pos, rows.mean(dim=1)) for pos, rows in self.head_blocks.get(layer, [])]
            for block_pos, rows in blocks + self.mean_blocks.get(layer, []):
                inside = [i for i, pos in enumerate(block_pos) if pos < seq_len]
                if not inside:
                    continue
                block = rows[inside, :seq_len].cpu()  # [n, w]
                out[layer, [block_pos[i] for i in inside], : block.shape[-1]] = block
        return out


@dataclass
class CaptureBatch:
    """The sessions of one ``generate``, one per batch row, in batch order."""

    sessions: list[CaptureSession]
    # the position_ids tensor of the forward pass under way and every row's step: every layer of one
    # forward pass gets the same tensor, so reading it (a device sync on a GPU) and choosing the rows
    # happen once a step, not once a layer
    _steps_of: tuple[torch.Tensor, list[RowStep]] | None = field(default=None, repr=False)

    def steps(self, position_ids: torch.Tensor) -> list[RowStep]:
        """Each row's step of the pass whose ``position_ids`` ([B, q]) are given."""
        if self._steps_of is None or self._steps_of[0] is not position_ids:
            rows = position_ids.tolist()
            if len(rows) != len(self.sessions):
                raise RuntimeError(f"{len(self.sessions)} capture sessions for a batch of {len(rows)} rows")
            self._steps_of = (position_ids, [s.step(r) for s, r in zip(self.sessions, rows, strict=True)])
        return self._steps_of[1]


@contextmanager
def one_cpu_thread(tensor: torch.Tensor, entries: int):
    """Run a small CPU computation on one thread.

    A decode step's rows are a few thousand entries: split across threads, the op waits for every
    worker to wake, and on cores shared with other work a worker may be descheduled for a whole
    time slice (measured on 2 busy cores: 15 ms for a 0.05 ms matmul). One thread does it at once.
    """
    threads = torch.get_num_threads()
    if tensor.is_cuda or entries >= SMALL_PROBS or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def capturing(sessions: CaptureSession | list[CaptureSession]):
    """Capture into ``sessions``: one session, or one per batch row of the ``generate`` under way."""
    batch = CaptureBatch([sessions] if isinstance(sessions, CaptureSession) else list(sessions))
    token = _active_batch.set(batch)
    try:
        yield sessions
    finally:
        _active_batch.reset(token)


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
    batch = _active_batch.get()
    layer_idx = getattr(module, "layer_idx", None)
    if batch is None or layer_idx is None:  # SigLIP modules have no layer_idx: pass them through
        return output, None
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    position_ids = kwargs.get("position_ids")
    if position_ids is None:
        raise RuntimeError("capture needs position_ids from the decoder layer (transformers >= 5)")
    steps = batch.steps(position_ids)
    entries = query.shape[1] * query.shape[2] * key.shape[2]  # H x q x K
    with torch.no_grad(), one_cpu_thread(query, entries):
        for b, (session, step) in enumerate(zip(batch.sessions, steps, strict=True)):
            # left padding in the cache: the row's keys start `pad_keys` columns in
            pad_keys = max(0, key.shape[2] - (step.positions[-1] + 1))
            mask = None
            if attention_mask is not None:
                mask = attention_mask[b if attention_mask.shape[0] > 1 else 0, None, :, step.first:, pad_keys:]
            probs = attention_probs_fp32(query[b:b + 1, :, step.first:], key[b:b + 1, :, pad_keys:], mask, scaling,
                                         kwargs.get("softcap"))
            session.observe(layer_idx, probs[0], step)
    return output, None
