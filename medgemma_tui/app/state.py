"""What the inspector shows of one record: layer, heads, query token, view and paint, as a plain value.

No textual here: the keys call these functions, the status line prints ``status_line``, and the
benchmark drives the same steps without a terminal.

Conventions, fixed once:

- ``layer`` is None for "all layers" (the views average them) or a 0-based layer index. ``]`` walks
  all -> 0 -> 1 -> ... -> L-1 -> all; ``[`` walks the other way; ``a`` returns to all. Layer numbers
  are 0-based everywhere in medtui, as in the views' descriptions ("layer 5" is the first global layer).
- ``head_mode`` "mean" (all heads), "group" (one GQA group: the query heads sharing a KV head) or
  "head" (one query head); ``head`` indexes the group or the head. ``.`` / ``,`` step it, entering
  single-head mode from the mean.
- ``row`` is a query row of the record; ``n`` / ``p`` walk, in reading order, the rows that can see the
  image (``rows_seeing_image``): with MedGemma's prompt, where the question comes before the image, the
  rows that produced each answer token. A question token's row reads only what precedes it, so its
  image map would be the uniform fallback: it is never offered, and asking for it says why
  (``BLIND_ROW``). The first row shown is ``analysis.views.opening_row``: the decision row (the row
  that produced the token carrying the verdict), or ``[analysis] default_row``, as in ``check`` and ``eval``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from medgemma_tui.analysis.views import MapSpec, head_label, opening_row, rows_seeing_image
from medgemma_tui.analysis.views import available_views as views_of
from medgemma_tui.engine.record import AttentionRecord

HEAD_MODES = ("mean", "group", "head")
OVERLAYS = ("blend", "map", "film")  # heatmap over the film, heatmap alone, film alone
SEP = " · "
BLIND_ROW = "question tokens come before the image: they cannot attend to it"


@dataclass(frozen=True)
class ViewState:
    layer: int | None = None
    head_mode: str = "mean"
    head: int = 0
    row: int | None = None  # None until a record is shown; then a query row index
    view: str = "answer"
    overlay: str = "blend"
    masks: bool = False
    colormap: str = "magma"
    alpha: float = 0.45
    cursor: tuple[int, int] | None = None  # (grid row, grid column) of the cell cursor
    scale: str = "max"  # colours over 0..max, or over the map's own min..max ("range")
    opening: str | int = "decision"  # the row a record opens on: ``[analysis] default_row``

    def with_(self, **changes) -> ViewState:
        return replace(self, **changes)


# ---- rows (query tokens) --------------------------------------------------------------------------
def token_rows(record: AttentionRecord) -> list[int]:
    """Query rows that can see the image, in reading order: question tokens by position, then answer
    rows by answer index (with the question before the image: the answer rows only), never the row that
    produced the model's end token (``AttentionRecord.content_answer_rows``)."""
    seeing = set(rows_seeing_image(record).tolist())
    question = sorted(record.question_rows.tolist(), key=lambda r: int(record.query_positions[r]))
    return [r for r in [*question, *record.content_answer_rows.tolist()] if r in seeing]


def sees_image(record: AttentionRecord, row: int) -> bool:
    return row in rows_seeing_image(record)


def question_sees_image(record: AttentionRecord) -> bool:
    """Whether the question view means anything: every question row can attend to the image."""
    rows = record.question_rows
    return len(rows) > 0 and all(sees_image(record, int(r)) for r in rows)


def default_row(record: AttentionRecord, opening: str | int = "decision") -> int:
    """The row a record opens on (``opening_row``), if it can see the image; else the first that can."""
    row = opening_row(record, opening)
    return row if sees_image(record, row) else token_rows(record)[0]


def token_text(record: AttentionRecord, row: int) -> str:
    """The token a row stands for: the answer token it produced, or the question token it is."""
    k = int(record.query_answer_index[row])
    text = record.answer_tokens[k] if k >= 0 else record.tokens[int(record.query_positions[row])]
    return text.strip() or text


def is_answer_row(record: AttentionRecord, row: int) -> bool:
    return int(record.query_answer_index[row]) >= 0


# ---- views ----------------------------------------------------------------------------------------
def available_views(record: AttentionRecord) -> tuple[str, ...]:
    """Views this record can show (rollout needs the layer-mean matrices; model views their maps; the
    question view needs question rows that can see the image)."""
    return tuple(v for v in views_of(record) if v != "question" or question_sees_image(record))


def unseeing_reason(state: ViewState, record: AttentionRecord) -> str | None:
    """Why ``state`` would read rows that cannot see the image (a uniform map by construction), or None."""
    if state.view == "question":
        return None if question_sees_image(record) else BLIND_ROW
    if state.row is not None and not sees_image(record, state.row):
        return BLIND_ROW
    return None


def map_spec(state: ViewState, record: AttentionRecord) -> MapSpec:
    row = default_row(record, state.opening) if state.row is None else state.row
    layers = None if state.layer is None else (state.layer, state.layer + 1)
    return MapSpec(view=state.view, rows=row, layers=layers, head_mode=state.head_mode, head=state.head)


# ---- steps: each returns the next state ----------------------------------------------------------
def show_record(state: ViewState, record: AttentionRecord) -> ViewState:
    """Keep what still applies to a new record (view, head mode, paint); reset the row and clamp the rest."""
    layer = state.layer if state.layer is None or state.layer < record.num_layers else None
    limit = head_count(state.head_mode, record)
    view = state.view if state.view in available_views(record) else "answer"
    return state.with_(layer=layer, head=min(state.head, limit - 1), row=default_row(record, state.opening), view=view)


def step_layer(state: ViewState, record: AttentionRecord, step: int) -> ViewState:
    stops: list[int | None] = [None, *range(record.num_layers)]
    return state.with_(layer=stops[(stops.index(state.layer) + step) % len(stops)])


def all_layers(state: ViewState) -> ViewState:
    return state.with_(layer=None)


def head_count(mode: str, record: AttentionRecord) -> int:
    if mode == "group":
        return record.model.num_kv_heads
    if mode == "head":
        return record.num_heads
    return 1


def step_head(state: ViewState, record: AttentionRecord, step: int) -> ViewState:
    if state.head_mode == "mean":
        return state.with_(head_mode="head", head=0 if step > 0 else record.num_heads - 1)
    count = head_count(state.head_mode, record)
    return state.with_(head=(state.head + step) % count)


def cycle_head_mode(state: ViewState, record: AttentionRecord) -> ViewState:
    """mean -> group -> head -> mean; the group of the current head is kept, and the first head of a group."""
    per_group = record.model.heads_per_group
    if state.head_mode == "mean":
        return state.with_(head_mode="group", head=0)
    if state.head_mode == "group":
        return state.with_(head_mode="head", head=state.head * per_group)
    return state.with_(head_mode="mean", head=0)


def step_row(state: ViewState, record: AttentionRecord, step: int) -> ViewState:
    rows = token_rows(record)
    if not rows:
        raise ValueError(BLIND_ROW)
    current = default_row(record, state.opening) if state.row is None else state.row
    index = rows.index(current) if current in rows else 0
    return state.with_(row=rows[(index + step) % len(rows)])


def choose_row(state: ViewState, record: AttentionRecord, row: int) -> ViewState:
    if not 0 <= row < len(record.query_positions):
        raise ValueError(f"row {row} is not a query row of this record")
    if row not in token_rows(record):
        raise ValueError(BLIND_ROW)
    return state.with_(row=row)


def cycle_view(state: ViewState, record: AttentionRecord, step: int = 1) -> ViewState:
    views = available_views(record)
    index = views.index(state.view) if state.view in views else -1
    return state.with_(view=views[(index + step) % len(views)])


def cycle_overlay(state: ViewState) -> ViewState:
    return state.with_(overlay=OVERLAYS[(OVERLAYS.index(state.overlay) + 1) % len(OVERLAYS)])


def toggle_scale(state: ViewState) -> ViewState:
    return state.with_(scale="range" if state.scale == "max" else "max")


def toggle_masks(state: ViewState) -> ViewState:
    return state.with_(masks=not state.masks)


def cycle_colormap(state: ViewState, names: list[str], step: int = 1) -> ViewState:
    index = names.index(state.colormap) if state.colormap in names else -1
    return state.with_(colormap=names[(index + step) % len(names)])


def change_alpha(state: ViewState, delta: float) -> ViewState:
    return state.with_(alpha=round(float(np.clip(state.alpha + delta, 0.0, 1.0)), 2))


def move_cursor(state: ViewState, record: AttentionRecord, drow: int, dcol: int) -> ViewState:
    rows, cols = record.grid
    r, c = state.cursor if state.cursor is not None else (rows // 2, cols // 2)
    return state.with_(cursor=(int(np.clip(r + drow, 0, rows - 1)), int(np.clip(c + dcol, 0, cols - 1))))


# ---- what the status line reads ------------------------------------------------------------------
def layer_part(state: ViewState, record: AttentionRecord) -> str:
    total = record.num_layers
    if state.layer is None:
        return f"layer all/{total}"
    return f"layer {state.layer}/{total}"


def head_part(state: ViewState, record: AttentionRecord) -> str:
    if state.view == "rollout":
        return "head mean (rollout)"
    return head_label(record, state.head_mode, state.head, totals=True)


def token_part(state: ViewState, record: AttentionRecord) -> str:
    if state.view == "question":
        return "token question rows"
    row = default_row(record, state.opening) if state.row is None else state.row
    text = token_text(record, row)
    return f"token {text!r}" if is_answer_row(record, row) else f"token {text!r} (question)"


def status_line(state: ViewState, record: AttentionRecord | None) -> str:
    """``layer 12/34 · head mean · token 'yes' · view gated``."""
    if record is None:
        return SEP.join(("layer -", "head -", "token -", f"view {state.view}"))
    return SEP.join(
        (layer_part(state, record), head_part(state, record), token_part(state, record), f"view {state.view}")
    )
