"""The trained demo model answers in sentences, right, and looks at the finding through the tool's default map.

The demo model's figures on a held-out subset of ``fixtures/demo.csv``, each row run through the real chain
(``run_sample``: film -> prompt -> generate with capture -> record -> analysis). Its answers are sentences
in MedGemma's manner, the verdict mostly past the first token; the default map is the decision row's. The
same records are then read wrong on purpose: the row before the decision row, the image span one token
early or late, the grid transposed. Every wrong reading must miss the pointing bar that the right one
passes, so a tool that made any of these mistakes would fail here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pytest

from medgemma_tui.analysis.metrics import map_metrics
from medgemma_tui.analysis.row_groups import is_focal
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.resources import demo_dataset_csv

ACCURACY_BAR = 0.95
POINTING_BAR = 0.80
CONSISTENCY_BAR = 0.95
# the subset: the original question of every group on the first three films of each kind (the films
# cycle through normal and the six findings), and every variant of the groups on the first film of each
FILMS_ORIGINAL = 21
FILMS_ALL_VARIANTS = 7

WRONG_READINGS = {
    "the row before the decision row": {"row_offset": -1},
    "the image span one token late": {"span_offset": 1},
    "the image span one token early": {"span_offset": -1},
    "the grid transposed": {"transpose": True},
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine a second one mostly spins."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def film_number(image_path: str) -> int:
    """phantoms/p0012.png -> 12"""
    return int(image_path.rsplit("/p", 1)[1].split(".")[0])


def subset():
    dataset = load_dataset(demo_dataset_csv())
    return [s for s in dataset if (s.is_original and film_number(s.image_path) < FILMS_ORIGINAL)
            or film_number(s.image_path) < FILMS_ALL_VARIANTS]


def read_map(record, decision: int, row_offset: int = 0, span_offset: int = 0, transpose: bool = False
             ) -> np.ndarray:
    """The default map (head mean over all layers of the row that produced answer token ``decision``,
    renormalised over the image tokens) rebuilt from the record's per-layer head-mean rows, or read wrong
    as asked."""
    position = record.prompt_length - 1 + decision  # the position before the token it produced
    start, end = record.image_token_span
    row = record.layer_mean_attn[:, position + row_offset, start + span_offset: end + span_offset].mean(axis=0)
    grid = (row / row.sum()).reshape(record.grid)
    return grid.T if transpose else grid


@dataclass
class Figures:
    rows: int
    correct: list[bool]
    labels: dict[tuple[str, str], set[str]]  # hard-positive group -> the answer labels of its rows
    hits: list[float]  # pointing hits of the default map on boxed rows of focal findings
    chance: list[float]  # box area fraction of the same rows
    wrong_hits: dict[str, list[float]]
    largest_map_difference: float  # the rebuilt right reading against the tool's default map
    words: list[int]  # words per answer
    decisions: list[int]  # the decision token's index in each answer


@pytest.fixture(scope="module")
def figures(demo_model) -> Figures:
    from tests.support import run_sample

    samples = subset()
    fig = Figures(len(samples), [], defaultdict(set), [], [], {name: [] for name in WRONG_READINGS}, 0.0, [], [])
    for sample in samples:
        analysis = run_sample(demo_model, sample).analysis
        fig.correct.append(bool(analysis.correct))
        fig.words.append(len(analysis.record.answer.split()))
        fig.decisions.append(analysis.decision_index)
        fig.labels[sample.group].add(analysis.answer_label)
        if analysis.box_grid is None or not is_focal(sample.finding):
            continue
        record = analysis.record
        fig.largest_map_difference = max(fig.largest_map_difference,
                                         float(np.abs(read_map(record, analysis.decision_index) - analysis.grid).max()))
        fig.hits.append(analysis.metrics["pointing_hit"])
        fig.chance.append(analysis.metrics["pointing_chance"])
        for name, wrong in WRONG_READINGS.items():
            wrong_map = read_map(record, analysis.decision_index, **wrong)  # scored by the same pointing rule
            fig.wrong_hits[name].append(map_metrics(wrong_map, box=analysis.box_grid,
                                                    pointing=analysis.pointing_cells)["pointing_hit"])
    return fig


def test_subset_has_every_kind_of_question():
    samples = subset()
    assert 60 <= len(samples) <= 120
    assert {s.finding for s in samples} == {"normal", "nodule", "mass", "consolidation", "effusion",
                                             "pneumothorax", "cardiomegaly"}
    assert any("lung?" in s.question for s in samples)  # place questions
    assert {s.answer for s in samples} == {"yes", "no"}


def test_demo_answers_in_sentences_with_the_verdict_inside(figures):
    sentences = float(np.mean([w >= 4 for w in figures.words]))
    later = float(np.mean([d > 0 for d in figures.decisions]))
    assert sentences >= 0.8, f"{sentences:.0%} of answers have four words or more"
    assert later >= 0.5, f"the verdict is past the first answer token in {later:.0%} of rows"
    assert max(figures.words) >= 12


def test_rebuilt_right_reading_is_the_tool_default_map(figures):
    assert figures.largest_map_difference < 1e-5


def test_demo_model_answers_right(figures):
    accuracy = float(np.mean(figures.correct))
    assert accuracy >= ACCURACY_BAR, f"accuracy {accuracy:.3f} on {figures.rows} held-out rows"


def test_default_map_points_at_the_finding(figures):
    pointing, chance = float(np.mean(figures.hits)), float(np.mean(figures.chance))
    assert len(figures.hits) >= 25
    assert pointing >= POINTING_BAR, f"pointing game {pointing:.3f} (chance {chance:.3f}) on {len(figures.hits)} rows"
    assert chance < 0.1


def test_hard_positive_variants_get_the_same_answer(figures):
    whole = [labels for (image_path, _), labels in figures.labels.items()
             if film_number(image_path) < FILMS_ALL_VARIANTS]  # the groups with every variant run
    assert len(whole) >= 10
    consistency = float(np.mean([len(labels) == 1 for labels in whole]))
    assert consistency >= CONSISTENCY_BAR, f"consistency {consistency:.3f} over {len(whole)} groups"


@pytest.mark.parametrize("reading", list(WRONG_READINGS))
def test_a_map_read_wrong_misses_the_pointing_bar(figures, reading):
    right = float(np.mean(figures.hits))
    wrong = float(np.mean(figures.wrong_hits[reading]))
    assert right >= POINTING_BAR
    assert wrong < POINTING_BAR, f"{reading}: pointing game {wrong:.3f}, the right reading {right:.3f}"
