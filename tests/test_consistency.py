"""Hard-positive consistency: answers and maps across a group's variants, and per paraphrase strategy."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from medgemma_tui.analysis.consistency import (
    BY_STRATEGY_COLUMNS,
    HARD_POSITIVE_COLUMNS,
    by_strategy_table,
    consistency_tables,
    hard_positive_table,
    strategy_kinds,
    variant_comparisons,
)

LN2 = math.log(2.0)


def one_hot(cell: int, shape=(16, 16)) -> np.ndarray:
    grid = np.zeros(shape)
    grid.flat[cell] = 1.0
    return grid


def table(rows: list[tuple]) -> pd.DataFrame:
    columns = ("key", "image_path", "baseline_question", "variant_index", "strategy", "answer_label", "correct")
    return pd.DataFrame([dict(zip(columns, r, strict=True)) for r in rows])


@pytest.fixture()
def hand_made():
    """Group A: original (yes) and two variants; group B: original and one variant; group C: no original."""
    rows = table([
        ("a0", "img1", "Is there X?", 0, "", "yes", True),
        ("a1", "img1", "Is there X?", 1, "Synonym Replacement", "yes", True),
        ("a2", "img1", "Is there X?", 2, "synonym replacement + Voice change", "no", False),
        ("b0", "img2", "Is there Y?", 0, "", "no", True),
        ("b1", "img2", "Is there Y?", 1, "voice_change", "no", True),
        ("c1", "img3", "Is there Z?", 1, "phrasing variation", "yes", None),
        ("c2", "img3", "Is there Z?", 2, "phrasing variation", "uncertain", None),
    ])
    grids = {
        "a0": one_hot(0), "a1": one_hot(0), "a2": one_hot(255),  # a1 equals a0; a2 is disjoint
        "b0": one_hot(5), "b1": 0.5 * (one_hot(5) + one_hot(6)),
        "c1": one_hot(9), "c2": one_hot(9),
    }
    return rows, grids


def test_js_and_flip_aggregation_known_values(hand_made):
    rows, grids = hand_made
    groups = hard_positive_table(rows, grids)
    assert list(groups.columns) == list(HARD_POSITIVE_COLUMNS)
    groups = groups.set_index("baseline_question")
    a = groups.loc["Is there X?"]
    assert a["variants"] == 3 and a["labels"] == "yes;yes;no" and not a["consistent"]
    assert a["agree_with_original"] == pytest.approx(0.5)
    assert a["mean_js"] == pytest.approx(2 * LN2 / 3)  # pairs: (a0,a1) 0, (a0,a2) ln2, (a1,a2) ln2
    assert a["mean_js_vs_original"] == pytest.approx(LN2 / 2)
    assert a["mean_top_iou_vs_original"] == pytest.approx(0.5 * (1.0 + 25 / 27))
    # top 26 cells, ties in row-major order: a0 {0..25}, a2 {255, 0..24}
    b = groups.loc["Is there Y?"]
    # JS of (1, 0) against (1/2, 1/2) over the same two cells: 0.5*ln(4/3) + 0.25*ln(2/3) + 0.25*ln 2
    expected = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * LN2
    assert b["consistent"] and b["agree_with_original"] == 1.0
    assert b["mean_js"] == pytest.approx(expected) and b["mean_js_vs_original"] == pytest.approx(expected)
    c = groups.loc["Is there Z?"]
    assert not c["consistent"] and math.isnan(c["agree_with_original"]) and math.isnan(c["mean_js_vs_original"])
    assert c["mean_js"] == 0.0 and c["original_key"] == ""

    strategies = by_strategy_table(rows, grids)
    assert list(strategies.columns) == list(BY_STRATEGY_COLUMNS)
    strategies = strategies.set_index("strategy")
    assert list(strategies.index) == ["original", "phrasing_variation", "synonym_replacement", "voice_change"]
    syn = strategies.loc["synonym_replacement"]
    assert (syn["rows"], syn["scored"], syn["compared"], syn["flips"]) == (2, 2, 2, 1)
    assert syn["accuracy"] == 0.5 and syn["flip_rate"] == 0.5
    assert syn["mean_js_vs_original"] == pytest.approx(LN2 / 2)
    assert syn["raw_strategies"] == "Synonym Replacement (1) | synonym replacement + Voice change (1)"
    voice = strategies.loc["voice_change"]
    assert (voice["rows"], voice["compared"], voice["flips"]) == (2, 2, 1)
    # studies by film here (no study_id): voice change has a row of img1 and one of img2
    assert (voice["studies"], syn["studies"], strategies.loc["original"]["studies"]) == (2, 1, 2)
    # the studies behind the accuracy, as ``scored`` is its n: phrasing variation's rows are not scored
    assert strategies.loc["phrasing_variation"][["rows", "scored", "studies"]].tolist() == [2, 0, 0]
    assert voice["mean_js_vs_original"] == pytest.approx((LN2 + expected) / 2)
    original = strategies.loc["original"]
    assert original["rows"] == 2 and original["accuracy"] == 1.0 and original["compared"] == 0
    assert math.isnan(original["flip_rate"])
    phrasing = strategies.loc["phrasing_variation"]  # group C has no original: nothing to compare against
    assert phrasing["scored"] == 0 and math.isnan(phrasing["accuracy"]) and phrasing["compared"] == 0


def test_summary_numbers_and_json(hand_made):
    rows, grids = hand_made
    result = consistency_tables(rows, grids)
    s = result.summary
    assert s["hard_positive_groups"] == 3
    assert s["hard_positive_answer_consistency"] == pytest.approx(1 / 3)
    assert s["hard_positive_agree_with_original"] == pytest.approx(0.75)
    assert s["hard_positive_variants_compared"] == 3
    assert s["hard_positive_flip_rate"] == pytest.approx(1 / 3)
    assert s["by_strategy"]["synonym_replacement"]["flip_rate"] == 0.5
    assert s["by_strategy"]["original"]["flip_rate"] is None
    json.dumps(s, allow_nan=False)
    assert list(result.comparisons["key"]) == ["a1", "a2", "b1"]
    assert list(result.comparisons["flip"]) == [False, True, False]


def test_failed_rows_and_missing_maps_are_left_out(hand_made):
    rows, grids = hand_made
    rows = rows.assign(error=["", "", "image: missing", "", "", "", ""])
    loaded = []

    def load(key):  # a loader, as the summary writer passes one
        loaded.append(key)
        if key == "b1":
            raise FileNotFoundError(key)
        return grids[key]

    result = consistency_tables(rows, load)
    a = result.groups.set_index("baseline_question").loc["Is there X?"]
    assert a["variants"] == 2 and a["consistent"] and a["mean_js"] == 0.0
    b = result.groups.set_index("baseline_question").loc["Is there Y?"]
    assert b["consistent"] and math.isnan(b["mean_js"])  # the answers count, the missing map does not
    assert sorted(set(loaded)) == sorted(loaded)  # every map read once
    assert "a2" not in loaded


def test_strategy_normalisation_on_messy_strings():
    assert strategy_kinds("", 0) == ("original",)
    assert strategy_kinds(float("nan"), 0) == ("original",)
    assert strategy_kinds(None, "0") == ("original",)
    assert strategy_kinds("Synonym Replacement", 1) == ("synonym_replacement",)
    assert strategy_kinds(" synonym_replacement ", 1) == ("synonym_replacement",)
    assert strategy_kinds("REGISTER_SHIFT", 2) == ("register_shift",)
    assert strategy_kinds("voice change & register shift", 3) == ("register_shift", "voice_change")
    assert strategy_kinds("clause reordering + phrasing variation", 3) == ("phrasing_variation", "clause_reordering")
    assert strategy_kinds("Passive voice, lay terms", 1) == ("register_shift", "voice_change")
    assert strategy_kinds("Re-ordering of clauses / synonym", 1) == ("synonym_replacement", "clause_reordering")
    assert strategy_kinds("emoji swap", 1) == ("other",)
    assert strategy_kinds("synonym replacement and something else", 1) == ("synonym_replacement", "other")


def test_demo_csv_strategies_map_to_named_kinds_and_keep_their_text_as_stored():
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.resources import demo_dataset_csv

    dataset = load_dataset(demo_dataset_csv())
    kinds = {k for s in dataset for k in strategy_kinds(s.strategy, s.variant_index)}
    assert "other" not in kinds and {"original", "synonym_replacement", "voice_change"} <= kinds
    rows = pd.DataFrame([{"key": s.key, "image_path": s.image_path, "baseline_question": s.baseline_question,
                          "variant_index": s.variant_index, "strategy": s.strategy, "answer_label": "yes",
                          "correct": None} for s in dataset])
    strategies = by_strategy_table(rows, {}).set_index("strategy")
    raw = strategies.loc["synonym_replacement", "raw_strategies"]
    # the loader stores strategies in lower case with '_' as spaces: the demo's four spellings of
    # synonym replacement (14 + 14 + 47 + 13 rows) are one text
    assert raw == "synonym replacement (88) | voice change, synonym replacement (21)"
    assert strategies.loc["synonym_replacement", "flip_rate"] == 0.0
    assert math.isnan(strategies.loc["synonym_replacement", "mean_js_vs_original"])  # no maps given


def test_a_group_whose_variants_are_identical_strings_has_js_0_and_full_consistency(demo_model, one_thread):
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.resources import demo_dataset_csv
    from tests.support import run_sample

    dataset = load_dataset(demo_dataset_csv())
    original = next(s for s in dataset if s.variant_index == 0 and s.bbox)
    variants = [dataclasses.replace(original, key=f"{original.key}_copy{i}", variant_index=i,
                                    strategy="" if i == 0 else "phrasing variation") for i in range(3)]
    results = [run_sample(demo_model, s, max_new_tokens=3) for s in variants]
    rows = pd.DataFrame([{"key": r.sample.key, "image_path": r.sample.image_path,
                          "baseline_question": r.sample.baseline_question, "variant_index": r.sample.variant_index,
                          "strategy": r.sample.strategy, "answer_label": r.analysis.answer_label,
                          "correct": r.analysis.correct, "error": ""} for r in results])
    grids = {r.sample.key: r.analysis.grid for r in results}
    result = consistency_tables(rows, grids)
    group = result.groups.iloc[0]
    assert len(result.groups) == 1 and group["variants"] == 3
    assert group["consistent"] and group["agree_with_original"] == 1.0
    assert group["mean_js"] == pytest.approx(0.0, abs=1e-12)
    assert group["mean_js_vs_original"] == pytest.approx(0.0, abs=1e-12)
    assert group["mean_top_iou"] == 1.0
    assert result.summary["hard_positive_answer_consistency"] == 1.0
    assert result.summary["hard_positive_flip_rate"] == 0.0
    comparisons = variant_comparisons(rows, grids)
    assert not comparisons["flip"].any()
