"""Everything the tool says about one record: gating, the default map, masks, metrics, the answer label.

``check``, ``eval`` and the app all call ``analyse_record``; nothing here touches the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from medgemma_tui.analysis.answers import HEDGED_DEFAULT, AnswerReading, is_correct, read_answer
from medgemma_tui.analysis.grid import mask_to_grid
from medgemma_tui.analysis.grounding import POINTING_TOLERANCE_PX, boxes_to_grid, pointing_cells
from medgemma_tui.analysis.lexicon import match_terms, tokens_for_matches
from medgemma_tui.analysis.masks import AnatomyMasks, anatomy_masks
from medgemma_tui.analysis.metrics import map_metrics
from medgemma_tui.analysis.views import (
    DECISION_INDEX,
    MapSpec,
    MapView,
    compute_view,
    decision_index,
    layer_summaries,
    mark_decision,
    row_shares,
    select_rows,
)
from medgemma_tui.engine.record import AttentionRecord

# The default map of a sample (grids/, check, the overlay): see the README, "The default map".
# Its row is the one that produced the token carrying the verdict ("no" in "Based on the image, there is
# no effusion."); for a one-word answer that is the first answer row.
DEFAULT_SPEC = MapSpec(view="answer", rows="decision", layers=None, head_mode="mean")


@dataclass
class Gating:
    terms: list[str]  # matched lexicon terms, in question order
    columns: list[int]  # indices into record.question_positions of the gated tokens
    tokens: list[dict[str, Any]]  # each gated token: text, position (in the prompt), term, weight

    def to_json(self) -> dict[str, Any]:
        return {"terms": self.terms, "tokens": self.tokens}


@dataclass
class SampleAnalysis:
    record: AttentionRecord
    view: MapView
    metrics: dict[str, float]
    gating: Gating
    answer_label: str
    correct: bool | None
    masks: AnatomyMasks | None
    box_grid: np.ndarray | None
    answer_reason: str = ""  # the rule or cue that decided answer_label (answers.read_answer)
    answer_hedged: bool = False  # a hedge qualified the verdict ("likely", "suggestive of", "cannot be excluded")
    decision_index: int = 0  # index into the answer tokens of the token carrying the verdict
    decision_token: str = ""  # that token's text
    pointing_cells: np.ndarray | None = None  # the pointing game's hit cells (grounding.pointing_cells)
    box_area_fraction: float = math.nan  # the boxes' share of the grid's cells (grounding.box_area_fraction)
    answer_tokens: int = 0  # the answer's tokens, less the end tokens
    answer_logprob: float = math.nan  # the sum of their log-probabilities
    anatomy: dict[str, Any] = field(default_factory=dict)  # the masks' coverage of the grid (anatomy_grids)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def grid(self) -> np.ndarray:
        return self.view.grid

    @cached_property
    def distribution(self) -> np.ndarray:
        """The map as a distribution over the grid's cells (float64, sums to 1): what ``grids/`` keeps."""
        grid = np.asarray(self.grid, dtype=np.float64)
        return grid / grid.sum()

    @cached_property
    def layer_summary(self) -> dict[str, np.ndarray]:
        """Per layer, head mean over the map's rows: image, BOS and text share, entropy (views.layer_summaries)."""
        return layer_summaries(self.record, self.view.spec.rows)


def gate_question(record: AttentionRecord, terms: list[str] | None = None) -> Gating:
    """Match lexicon terms in the question and map them to prompt tokens through their offsets.

    A gated token's weight is its share of the decision row's attention (head mean, all layers) over
    the gated tokens: the tokens the verdict actually read weigh most. Weights sum to 1.
    """
    matches = match_terms(record.question, terms)
    by_token = tokens_for_matches(matches, record.question_offsets)
    columns = sorted(by_token)
    answer_rows = select_rows(record, "decision")
    reads = record.question_attn[answer_rows].mean(axis=(0, 1, 2))  # [Tq]
    chosen = reads[columns] if columns else np.zeros(0)
    weights = chosen / chosen.sum() if chosen.sum() > 0 else np.full(len(columns), 1 / max(len(columns), 1))
    tokens = [
        {
            "text": record.tokens[int(record.question_positions[c])],
            "position": int(record.question_positions[c]),
            "term": by_token[c],
            "weight": float(w),
        }
        for c, w in zip(columns, weights, strict=True)
    ]
    return Gating(terms=[m.term for m in matches], columns=columns, tokens=tokens)


def attach_gating(record: AttentionRecord, gating: Gating) -> None:
    """The record keeps which tokens are gated, so the gated view and the app need no lexicon."""
    record.extra["gated_columns"] = list(gating.columns)
    record.extra["gated_terms"] = list(gating.terms)


def anatomy_grids(masks: AnatomyMasks | None, grid_shape: tuple[int, int]) -> dict[str, Any]:
    """The masks' coverage of the grid, as ``map_metrics`` takes them (``body``, ``lungs``, ...).

    A film whose masks failed their plausibility check keeps its body but gets no lungs, mediastinum
    or zones, so the metrics on them are NaN rather than wrong.
    """
    out: dict[str, Any] = {"body": None, "lungs": None, "mediastinum": None, "zones": None}
    if masks is None:
        return out
    out["body"] = mask_to_grid(masks.body, grid_shape)
    if masks.ok:
        out["lungs"] = mask_to_grid(masks.lungs, grid_shape)
        out["mediastinum"] = mask_to_grid(masks.mediastinum, grid_shape)
        out["zones"] = {name: mask_to_grid(zone, grid_shape) for name, zone in masks.zones().items()}
    return out


def view_metrics(record: AttentionRecord, view: MapView, box_grid: np.ndarray | None,
                 pointing: np.ndarray | None, anatomy: dict[str, Any]) -> dict[str, float]:
    """Every metric of one view: the map's, against the anatomy (``anatomy_grids``) and the boxes, and the
    raw rows' shares. The app's views go through here too, so a view's numbers are the same everywhere."""
    metrics = map_metrics(view.grid, box=box_grid, pointing=pointing, **anatomy)
    metrics.update(row_shares(record, view.spec))
    return metrics


def answer_score(record: AttentionRecord) -> tuple[int, float]:
    """How many tokens the answer has, less the end tokens, and the sum of their log-probabilities (NaN
    without any)."""
    ends = set(record.extra.get("end_token_ids", []))
    content = [i for i, t in enumerate(record.answer_ids) if int(t) not in ends]
    return len(content), float(np.sum(record.answer_logprobs[content])) if content else math.nan


def analyse_record(
    record: AttentionRecord,
    pixels: np.ndarray | None = None,
    boxes=None,
    ground_truth: Any = None,
    spec: MapSpec = DEFAULT_SPEC,
    terms: list[str] | None = None,
    masks: AnatomyMasks | None = None,
    pointing_tolerance_px: float = POINTING_TOLERANCE_PX,
    hedged_answers: str = HEDGED_DEFAULT,
    reading: AnswerReading | None = None,
) -> SampleAnalysis:
    """Gating, the chosen map, anatomy masks (from ``pixels``, the original film) and every metric.

    The pointing game counts the top cell a hit when its centre lies within ``pointing_tolerance_px``
    of a box, in the original film's pixels, or when it holds part of a box (``grounding.pointing_cells``).
    ``hedged_answers`` says what a leaning hedge reads as (``answers.read_answer``); ``reading`` is the
    answer's reading under it when the caller has read it already (``pipeline.rows.analyse_row``).
    """
    if reading is None:  # the one reading of the answer
        reading = read_answer(record.answer, record.question, hedged_answers)
    label = reading.label
    # the decision token the record carries (found when it was answered, or kept in its tree), else this reading's
    decision = decision_index(record) if DECISION_INDEX in record.extra else mark_decision(record, reading.cue_span)
    gating = gate_question(record, terms)
    attach_gating(record, gating)
    view = compute_view(record, spec)
    if masks is None and pixels is not None:
        masks = anatomy_masks(pixels)
    grid_shape = record.grid
    box_grid = boxes_to_grid(boxes, record.image_size, grid_shape) if boxes and record.image_size else None
    pointing = None if box_grid is None else pointing_cells(boxes, record.image_size, grid_shape,
                                                            pointing_tolerance_px)
    anatomy = anatomy_grids(masks, grid_shape)
    metrics = view_metrics(record, view, box_grid, pointing, anatomy)
    answer_tokens, answer_logprob = answer_score(record)
    return SampleAnalysis(
        record=record,
        view=view,
        metrics=metrics,
        gating=gating,
        answer_label=label,
        correct=is_correct(label, ground_truth) if ground_truth is not None else None,
        masks=masks,
        box_grid=box_grid,
        answer_reason=reading.reason,
        answer_hedged=reading.hedged,
        decision_index=decision,
        decision_token=record.answer_tokens[decision] if decision < len(record.answer_tokens) else "",
        pointing_cells=pointing,
        box_area_fraction=float(box_grid.mean()) if box_grid is not None else math.nan,
        answer_tokens=answer_tokens,
        answer_logprob=answer_logprob,
        anatomy=anatomy,
    )
