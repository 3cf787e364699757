"""Map views: from an AttentionRecord to one 16x16 map over the image tokens.

Every view is a ``MapView``: a non-negative grid that sums to 1 over the image tokens, with a
sentence saying how it was made. Views are pure functions of the record (and, for the relative view,
of a second record), so the app redraws from memory and a record read from disk gives the same maps.

Heads (grouped-query attention, Ainslie et al. 2023): query heads ``g*n .. g*n+n-1`` share KV head
``g`` (n = heads per group). The mean of the group means is the plain head mean; the GQA-aware views
are per group and per head.

Sinks (attention sinks, Xiao et al. 2024): raw rows put most of their mass on BOS and a few cells.
Every view here renormalises over the image tokens (that is the sink-corrected map); ``image_share``
etc. keep the raw shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from medgemma_tui.analysis.answers import read_answer
from medgemma_tui.engine.record import SHARE_COLUMNS, AttentionRecord
from medgemma_tui.registry import ATTRIBUTION, METHODS, Registry, UnknownNameError, method_names

HeadMode = Literal["mean", "group", "head"]
EPS = 1e-12


@dataclass(frozen=True)
class MapSpec:
    """Which rows, layers and heads a view reads.

    ``rows``: "decision" (the row that produced the answer token carrying the verdict, e.g. "no" in
    "Based on the image, there is no effusion"; for a one-word answer the same as "first_answer"),
    "first_answer" (the row that produced the first answer token that is not an end token), "answer"
    (every answer row but end tokens), "question" (the question's own rows), or a row index.
    ``layers``: None for all, or [start, end) layer indices.
    """

    view: str = "answer"
    rows: str | int = "first_answer"
    layers: tuple[int, int] | None = None
    head_mode: HeadMode = "mean"
    head: int = 0  # the group index for head_mode "group", the head index for "head"

    def with_(self, **changes) -> MapSpec:
        return replace(self, **changes)


@dataclass
class MapView:
    grid: np.ndarray  # [R, C] float32, sums to 1
    description: str
    spec: MapSpec


def normalise(weights: np.ndarray) -> np.ndarray:
    weights = np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    total = weights.sum()
    if total <= EPS:
        return np.full(weights.shape, 1.0 / weights.size)
    return weights / total


def to_grid(record: AttentionRecord, flat: np.ndarray) -> np.ndarray:
    """Image-token vector -> [rows, cols] grid, row-major, row 0 at the top of the image."""
    return normalise(flat).reshape(record.grid).astype(np.float32)


# ---- choosing rows, layers and heads -------------------------------------------------------------
def content_answer_rows(record: AttentionRecord) -> np.ndarray:
    """Answer rows whose produced token is not an end token (falls back to all answer rows)."""
    return record.content_answer_rows


def answer_token_spans(answer: str, tokens: Sequence[str]) -> list[tuple[int, int]]:
    """Character span of each answer token in the answer text, matched left to right.

    A token the text does not hold (an end token, a lone byte piece) gets an empty span at the point
    reached; a token's leading space may have been stripped from the text.
    """
    spans, pos = [], 0
    for token in tokens:
        for piece in dict.fromkeys((token, token.strip())):
            at = answer.find(piece, pos) if piece else -1
            if at >= 0 and not answer[pos:at].strip():
                spans.append((at, at + len(piece)))
                pos = at + len(piece)
                break
        else:
            spans.append((pos, pos))
    return spans


# record.extra: the index of the answer token carrying the verdict, found once from the answer's reading
# (``mark_decision``) and carried with the record, so the map's row, the gradient target, the CSV's
# decision_index and the app agree without reading the answer again
DECISION_INDEX = "decision_index"


def decision_index(record: AttentionRecord, cue_span: tuple[int, int] | None = None) -> int:
    """Index into the answer tokens of the token carrying the verdict.

    ``cue_span`` (from ``read_answer``) is a character span in ``record.answer``; the first answer token
    overlapping it carries the verdict. Without it, the index the record carries (``mark_decision``),
    else the answer is read here. Without a cue (an uncertain answer) it is the first content token, as
    for "first_answer".
    """
    if cue_span is None:
        carried = record.extra.get(DECISION_INDEX)
        if carried is not None:
            return int(carried)
        cue_span = read_answer(record.answer, record.question).cue_span
    k = token_at_span(record.answer, record.answer_tokens, cue_span)
    return record.first_content_index if k is None else k


def mark_decision(record: AttentionRecord, cue_span: tuple[int, int] | None = None) -> int:
    """Find the decision token (from ``cue_span`` when the reading is at hand, else by reading the answer)
    and keep its index with the record (``DECISION_INDEX``); returns it."""
    record.extra.pop(DECISION_INDEX, None)
    index = decision_index(record, cue_span)
    record.extra[DECISION_INDEX] = index
    return index


def token_at_span(answer: str, tokens: Sequence[str], span: tuple[int, int] | None) -> int | None:
    """Index of the first token of ``answer`` overlapping the character ``span`` (None without one)."""
    if span is None:
        return None
    start, end = span
    for k, (s, e) in enumerate(answer_token_spans(answer, tokens)):
        if e > s and s < end and e > start:
            return k
    return None


def decision_row(record: AttentionRecord) -> np.ndarray:
    """The row that produced the decision token, as a 1-row array.

    A record's answer rows are keyed by the token they produced: the row of the position *before* the
    token (answer token 0 is produced by the last prompt position), so no offset is added here.
    """
    rows = np.flatnonzero(record.query_answer_index == decision_index(record))
    return rows[:1] if len(rows) else content_answer_rows(record)[:1]


def select_rows(record: AttentionRecord, rows: str | int) -> np.ndarray:
    if isinstance(rows, (int, np.integer)):
        return np.asarray([int(rows)])
    if rows == "decision":
        return decision_row(record)
    if rows == "first_answer":
        return content_answer_rows(record)[:1]
    if rows == "answer":
        return content_answer_rows(record)
    if rows == "question":
        return record.question_rows
    raise ValueError(f"unknown row choice {rows!r}")


def opening_row(record: AttentionRecord, rows: str | int = "decision") -> int:
    """The query row every front end opens a sample on (the inspector, the gallery, the methods screen,
    ``check``, ``eval`` and the tree): the first row of ``select_rows(record, rows)``, by default the
    decision row (README, "Reading a map"), ``[analysis] default_row`` otherwise."""
    selected = select_rows(record, rows)
    if len(selected):
        return int(selected[0])
    content = content_answer_rows(record)
    return int(content[0]) if len(content) else int(np.flatnonzero(record.query_answer_index >= 0)[0])


def layer_range(record: AttentionRecord, layers: tuple[int, int] | None) -> slice:
    if layers is None:
        return slice(0, record.num_layers)
    start, end = layers
    if not 0 <= start < end <= record.num_layers:
        raise ValueError(f"layer range {layers} outside 0..{record.num_layers}")
    return slice(start, end)


def select_heads(array: np.ndarray, record: AttentionRecord, head_mode: HeadMode, index: int) -> np.ndarray:
    """Reduce the head axis (axis -2) of [..., H, X]: the mean, one GQA group's mean, or one head."""
    if head_mode == "mean":
        return array.mean(axis=-2)
    if head_mode == "group":
        n = record.model.heads_per_group
        if not 0 <= index < record.model.num_kv_heads:
            raise ValueError(f"group {index} outside 0..{record.model.num_kv_heads - 1}")
        return array[..., index * n : (index + 1) * n, :].mean(axis=-2)
    if head_mode == "head":
        if not 0 <= index < record.num_heads:
            raise ValueError(f"head {index} outside 0..{record.num_heads - 1}")
        return array[..., index, :]
    raise ValueError(f"unknown head mode {head_mode!r}")


def head_label(record: AttentionRecord, head_mode: str, head: int | None, totals: bool = False) -> str:
    """The heads a map averages, in words: "head mean", "group 1 (heads 2-3)", "head 5"; with ``totals``,
    out of how many ("group 1/4 (heads 2-3)", "head 5/8"), as the app's status line says it."""
    if head_mode == "mean":
        return "head mean"
    if head_mode == "group":
        n = record.model.heads_per_group
        of = f"/{record.model.num_kv_heads}" if totals else ""
        return f"group {head}{of} (heads {head * n}-{head * n + n - 1})"
    return f"head {head}/{record.num_heads}" if totals else f"head {head}"


def rows_label(record: AttentionRecord, rows: np.ndarray, choice: str | int | None = None) -> str:
    if len(rows) == 1:
        label = record.row_label(int(rows[0]))
        return f"{label} (decision)" if choice == "decision" else label
    return f"{len(rows)} rows ({record.row_label(int(rows[0]))} …)"


def reads_label(record: AttentionRecord, spec: MapSpec, rows: np.ndarray, layers: slice) -> str:
    """What a view read: heads, layers and rows."""
    heads = head_label(record, spec.head_mode, spec.head)
    return f"{heads}, {layers_label(record, layers)}, {rows_label(record, rows, spec.rows)}"


def layers_label(record: AttentionRecord, layers: slice) -> str:
    if layers.stop - layers.start == record.num_layers:
        return f"all {record.num_layers} layers"
    if layers.stop - layers.start == 1:
        return f"layer {layers.start}"
    return f"layers {layers.start}-{layers.stop - 1}"


# ---- the views ----------------------------------------------------------------------------------
def mean_image_attention(record: AttentionRecord, spec: MapSpec, layer_weights: np.ndarray | None = None):
    """Mean of the raw image rows over the chosen rows, layers (optionally weighted) and heads: [N]."""
    rows = select_rows(record, spec.rows)
    layers = layer_range(record, spec.layers)
    picked = select_heads(record.image_attn[rows, layers], record, spec.head_mode, spec.head)  # [r, l, N]
    if layer_weights is None:
        return picked.mean(axis=(0, 1)), rows, layers
    w = np.asarray(layer_weights, dtype=np.float64)[: picked.shape[1]]
    return (picked * w[None, :, None]).sum(axis=1).mean(axis=0) / w.sum(), rows, layers


def answer_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    flat, rows, layers = mean_image_attention(record, spec)
    text = f"{reads_label(record, spec, rows, layers)}, renormalised over image tokens"
    return MapView(to_grid(record, flat), text, spec)


def layer_weighted_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    """Later layers weigh more (weight = layer index + 1): the opposite of the seed system's bug."""
    layers = layer_range(record, spec.layers)
    weights = np.arange(layers.start, layers.stop, dtype=np.float64) + 1
    flat, rows, layers = mean_image_attention(record, spec, weights)
    text = f"weighted by depth (l+1): {reads_label(record, spec, rows, layers)}"
    return MapView(to_grid(record, flat), text, spec)


def gate_weights(record: AttentionRecord, gated_columns: list[int], spec: MapSpec) -> np.ndarray:
    """Per (row, layer, head): the row's attention on the gated question tokens. [r, l, H]"""
    rows = select_rows(record, spec.rows)
    layers = layer_range(record, spec.layers)
    return record.question_attn[rows, layers][..., gated_columns].sum(axis=-1)


def gated_view(record: AttentionRecord, spec: MapSpec, gated_columns: list[int] | None = None) -> MapView:
    """Each query row's image map weighted by how much that row attends to the gated question terms.

    ``gated_columns`` are indices into ``record.question_positions`` (default: ``record.extra["gated"]``).
    With no gated term the view is the plain answer view.
    """
    if gated_columns is None:
        gated_columns = list(record.extra.get("gated_columns", []))
    if not gated_columns:
        view = answer_view(record, spec)
        view.description = "gated (no gated term in the question): " + view.description
        return view
    rows = select_rows(record, spec.rows)
    layers = layer_range(record, spec.layers)
    image = record.image_attn[rows, layers]  # [r, l, H, N]
    weights = gate_weights(record, gated_columns, spec)[..., None]  # [r, l, H, 1]
    weighted = select_heads(image * weights, record, spec.head_mode, spec.head).sum(axis=(0, 1))
    terms = ", ".join(sorted(set(record.extra.get("gated_terms", [])))) or f"{len(gated_columns)} tokens"
    text = f"gated by attention on {terms}: {reads_label(record, spec, rows, layers)}"
    return MapView(to_grid(record, weighted), text, spec)


def rollout_matrix(layer_mean_attn: np.ndarray, layers: slice, residual: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema): product of (1-a)·A_l + a·I over layers, rows renormalised.

    No causal order is assumed: the image block's rows attend forward inside the block and the
    captured matrices keep those entries.
    """
    S = layer_mean_attn.shape[-1]
    eye = np.eye(S)
    joint = eye
    for layer in range(layers.start, layers.stop):
        a = (1 - residual) * layer_mean_attn[layer].astype(np.float64) + residual * eye
        a = a / a.sum(axis=-1, keepdims=True)
        joint = a @ joint
    return joint


def rollout_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    if record.layer_mean_attn is None:
        raise ValueError("this record has no layer-mean attention (rollout needs it)")
    rows = select_rows(record, spec.rows)
    layers = layer_range(record, spec.layers)
    joint = rollout_matrix(record.layer_mean_attn, layers)
    start, end = record.image_token_span
    flat = joint[record.query_positions[rows]][:, start:end].mean(axis=0)
    text = f"attention rollout (residual 0.5): {reads_label(record, spec.with_(head_mode='mean'), rows, layers)}"
    return MapView(to_grid(record, flat), text, spec.with_(head_mode="mean"))


def generic_rows(record: AttentionRecord, rows: str | int) -> tuple[str, str]:
    """The generic prompt's map that matches a row choice, and how to name it.

    Answer rows are divided by the generic prompt's answer rows, question rows by its question rows:
    a single answer row ("decision", "first_answer", an answer row's index) by its first answer row,
    every answer row ("answer") by the mean of its answer rows, the question's rows by the mean of its.
    """
    if rows == "question" or (isinstance(rows, (int, np.integer)) and record.query_answer_index[int(rows)] < 0):
        return "generic_question", "its question rows"
    if rows == "answer":
        return "generic_answers", "its answer rows"
    return "generic", "its first answer row"


def relative_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    """This question's map over the generic prompt's map on the same image (cancels sinks).

    ``record.maps`` holds the generic prompt's image attention [L, H, N] by kind of row (``generic_rows``);
    like rows are divided by like, and the same layers and heads are read from both.
    """
    mine, rows, layers = mean_image_attention(record, spec)
    name, matched = generic_rows(record, spec.rows)
    if name not in record.maps:
        raise ValueError(f"the relative view of {spec.rows!r} rows needs the generic prompt's {matched} "
                         f"(maps[{name!r}]; this record was made before they were kept)")
    theirs = select_heads(record.maps[name][layers], record, spec.head_mode, spec.head).mean(axis=0)
    ratio = normalise(mine) / np.maximum(normalise(theirs), EPS)
    prompt = record.extra.get("generic_prompt", "the generic prompt")
    text = f"relative: {reads_label(record, spec, rows, layers)} over {matched} for {prompt!r}, same layers and heads"
    return MapView(to_grid(record, ratio), text, spec)


def gradient_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    """Gradient x attention, the direct one-layer term of Chefer et al. (2021): (A x dy/dA)^+, first answer row.

    Each layer's own term, averaged over the chosen layers and heads; nothing is propagated between
    layers (that is the ``relevancy`` view).
    """
    layers = layer_range(record, spec.layers)
    picked = select_heads(record.maps["gradient"][layers], record, spec.head_mode, spec.head).mean(axis=0)
    rows = select_rows(record, "first_answer")
    text = ("gradient x attention, direct term (Chefer et al. 2021, each layer's own (A x dy/dA)^+, not "
            f"propagated): {reads_label(record, spec, rows, layers)}")
    return MapView(to_grid(record, picked), text, spec.with_(rows="first_answer"))


def relevancy_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    """Chefer et al.'s (2021) relevancy, propagated through every decoder layer, at the first answer row.

    One map per record (``record.maps["relevancy"]`` [N]): the layer and head choices do not apply.
    """
    rows = select_rows(record, "first_answer")
    text = (f"relevancy (Chefer et al. 2021): R = I, R += mean_heads((dy/dA x A)^+) R over all "
            f"{record.num_layers} layers, {rows_label(record, rows)}")
    return MapView(to_grid(record, record.maps["relevancy"]), text,
                   spec.with_(rows="first_answer", layers=None, head_mode="mean"))


def gradcam_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    text = "Grad-CAM on the last SigLIP layer for the answer logit, pooled to the grid"
    return MapView(to_grid(record, record.maps["gradcam"]), text, spec)


def method_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    """An attribution method's map (``registry.METHODS``), kept in ``record.maps`` under its name."""
    return MapView(to_grid(record, record.maps[spec.view]), METHODS[spec.view].description, spec)


def top_heads_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    """The mean of the chosen heads' image maps (weights [L, H] in ``record.maps["top_heads"]``)."""
    weights = np.asarray(record.maps["top_heads"], dtype=np.float64)  # [L, H]
    rows = select_rows(record, spec.rows)
    image = record.image_attn[rows].mean(axis=0)  # [L, H, N]
    flat = (image * weights[..., None]).sum(axis=(0, 1)) / max(weights.sum(), EPS)
    chosen = ", ".join(f"L{layer}H{head}" for layer, head in np.argwhere(weights > 0))
    text = f"top heads by pointing on other studies ({chosen}), {rows_label(record, rows, spec.rows)}"
    return MapView(to_grid(record, flat), text, spec)


# ---- the registry of views -------------------------------------------------------------------------
@dataclass(frozen=True)
class ViewSpec:
    name: str  # the name in ``[analysis] map_view``, the app's ``v`` key and tiles, the methods study
    make: Callable[[AttentionRecord, MapSpec], MapView]
    needs: str | None = None  # the ``record.maps`` entry it reads, computed with the model beyond the answer pass
    shown: Callable[[AttentionRecord], bool] | None = None  # whether a record can show it, beyond ``needs``
    tile: str | None = None  # its tile's label in the app's methods screen; None: its name

    @property
    def tile_label(self) -> str:
        return self.tile or self.name

    def available(self, record: AttentionRecord) -> bool:
        return (self.needs is None or self.needs in record.maps) and (self.shown is None or self.shown(record))


class MapViews(Mapping[str, ViewSpec]):
    """Every map view by name: the views of the answer pass and of ``engine.gradients``, then one view per
    attribution method of ``registry.METHODS`` (a method registered later has its view at once), then the
    views that come from other studies (top heads)."""

    def __init__(self, first: Sequence[ViewSpec], last: Sequence[ViewSpec]):
        self.first = Registry("map view", tuple(first))
        self.last = Registry("map view", tuple(last))

    def register(self, view: ViewSpec) -> ViewSpec:
        return self.first.register(view)

    def entries(self) -> dict[str, ViewSpec]:
        methods = {name: ViewSpec(name, method_view, needs=name, tile=METHODS[name].tile_label)
                   for name in method_names(ATTRIBUTION)}
        return {**self.first, **methods, **self.last}

    def __getitem__(self, name: str) -> ViewSpec:
        entries = self.entries()
        if name not in entries:
            raise UnknownNameError(f"unknown view {name!r} (known: {', '.join(entries)})")
        return entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self.entries())


VIEWS = MapViews(
    (ViewSpec("answer", answer_view),
     ViewSpec("gated", gated_view),
     ViewSpec("layer_weighted", layer_weighted_view),
     ViewSpec("rollout", rollout_view, shown=lambda record: record.layer_mean_attn is not None),
     ViewSpec("relative", relative_view, needs="generic"),
     ViewSpec("gradient", gradient_view, needs="gradient"),
     ViewSpec("relevancy", relevancy_view, needs="relevancy"),
     ViewSpec("gradcam", gradcam_view, needs="gradcam"),
     ViewSpec("question", lambda record, spec: answer_view(record, spec.with_(rows="question")))),
    # weights [L, H] per head (``analysis.heads.top_head_weights``) from the heads study of other studies
    (ViewSpec("top_heads", top_heads_view, needs="top_heads"),))


def model_map(view: str) -> str | None:
    """The ``record.maps`` entry a view reads that the model computes beyond the answer pass (None: none)."""
    return VIEWS[view].needs if view in VIEWS else None


def available_views(record: AttentionRecord) -> list[str]:
    """The views this record can show (model-dependent views only where their maps were computed)."""
    return [name for name, view in VIEWS.items() if view.available(record)]


def compute_view(record: AttentionRecord, spec: MapSpec) -> MapView:
    if spec.view not in VIEWS:
        raise ValueError(f"unknown view {spec.view!r} (known: {', '.join(VIEWS)})")
    view = VIEWS[spec.view]
    if view.needs is not None and view.needs not in record.maps:
        raise ValueError(f"the {spec.view} view needs maps computed with the model (not in this record)")
    return view.make(record, spec)


# ---- summaries for charts and the head gallery -----------------------------------------------------
def entropy_of(maps: np.ndarray) -> np.ndarray:
    """Entropy in nats of each map along the last axis, after renormalising over it."""
    p = maps / np.maximum(maps.sum(axis=-1, keepdims=True), EPS)
    return -(p * np.log(np.clip(p, EPS, None))).sum(axis=-1)


def head_summaries(record: AttentionRecord, rows: str | int = "first_answer") -> dict[str, np.ndarray]:
    """Per layer x head [L, H]: image share, BOS share, entropy and focus of the image map."""
    picked = select_rows(record, rows)
    image = record.image_attn[picked].mean(axis=0)  # [L, H, N]
    shares = record.shares[picked].mean(axis=0)  # [L, H, 3]
    p = image / np.maximum(image.sum(-1, keepdims=True), EPS)
    return {
        "image_share": shares[..., 1],
        "bos_share": shares[..., 0],
        "text_share": shares[..., 2],
        "entropy": entropy_of(image),
        "focus": p.max(axis=-1),
    }


def layer_summaries(record: AttentionRecord, rows: str | int = "first_answer") -> dict[str, np.ndarray]:
    """Per layer [L], head mean: image share, BOS share, text share, entropy of the head-mean map."""
    picked = select_rows(record, rows)
    image = record.image_attn[picked].mean(axis=(0, 2))  # [L, N]
    shares = record.shares[picked].mean(axis=(0, 2))  # [L, 3]
    return {
        "image_share": shares[:, 1],
        "bos_share": shares[:, 0],
        "text_share": shares[:, 2],
        "entropy": entropy_of(image),
    }


def row_shares(record: AttentionRecord, spec: MapSpec) -> dict[str, float]:
    """bos_share / image_share / text_share of the raw rows a view reads (they sum to 1)."""
    rows = select_rows(record, spec.rows)
    layers = layer_range(record, spec.layers)
    s = select_heads(record.shares[rows, layers], record, spec.head_mode, spec.head).mean(axis=(0, 1))
    return {name: float(value) for name, value in zip(SHARE_COLUMNS, s, strict=True)}


# ---- which query rows can see the image -------------------------------------------------------------
def rows_seeing_image(record: AttentionRecord) -> np.ndarray:
    """Query rows that can attend to the image tokens, in row order.

    Under the causal mask a query at position p reads keys 0..p only, so a row reaches the image only if
    its position is at or after the image span's start. The default prompt (``[prompt] order =
    "text_first"``) puts the question before the image: its question rows cannot see the image (their
    image maps are the uniform fallback of ``normalise``), and only the answer rows can. With
    ``"image_first"`` the question's rows come after the image and see it too.
    """
    start, _ = record.image_token_span
    return np.flatnonzero(np.asarray(record.query_positions) >= start)
