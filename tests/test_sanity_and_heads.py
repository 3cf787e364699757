"""Sanity-check similarity, cascading randomisation on a copy, and the heads that localise."""

from __future__ import annotations

import numpy as np
import pytest

from medgemma_tui.analysis.heads import leave_one_study_out, rank_heads, top_head_weights, top_heads_map
from medgemma_tui.analysis.sanity import spearman, ssim
from medgemma_tui.export.method_tables import heads_table, methods_table, sanity_table


def test_spearman_is_one_for_a_monotone_change_and_minus_one_reversed():
    a = np.arange(16.0).reshape(4, 4)
    assert spearman(a, a**3 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(a, np.ones_like(a)))


def test_ssim_is_one_for_the_same_map_and_lower_for_a_shuffled_one():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16))
    assert ssim(a, 3 * a + 2) == pytest.approx(1.0)  # scaled to [0, 1] first
    assert ssim(a, rng.permutation(a.ravel()).reshape(16, 16)) < 0.3


def test_randomisation_changes_the_copy_never_the_shared_model(demo_model):
    import torch

    from medgemma_tui.engine.attribution.randomise import cascade, cascading_randomisation, randomisable_copy, restore

    before = {k: v.clone() for k, v in demo_model.model.state_dict().items()}
    twin = randomisable_copy(demo_model)
    labels = [label for _, label in cascading_randomisation(twin, seed=0)]
    assert labels == [label for label, _ in cascade(demo_model.model)]
    assert labels[:2] == ["decoder.1", "decoder.0"] and labels[-1] == "vision.0"
    after = demo_model.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    top = "model.language_model.layers.1.self_attn.q_proj.weight"
    assert not torch.equal(twin.model.state_dict()[top], before[top])
    restore(twin, demo_model)
    assert all(torch.equal(before[k], v) for k, v in twin.model.state_dict().items())


def test_heads_are_ranked_by_pointing_then_lift():
    pointing = np.array([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]])  # rows x L x H
    lift = np.array([[[2.0, 1.0], [3.0, 1.0]], [[2.0, 5.0], [1.0, 1.0]]])
    # means: pointing (0,0)=1, (0,1)=.5, (1,0)=.5, (1,1)=0; lift (0,1)=3, (1,0)=2
    np.testing.assert_array_equal(rank_heads(pointing, lift), [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(top_head_weights(pointing, lift, 2), [[1, 1], [0, 0]])


def test_top_heads_are_chosen_without_the_rows_own_study():
    # study "a" points only with head 0, every other study only with head 1
    pointing = np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
    lift = np.ones_like(pointing)
    chosen = leave_one_study_out(["a", "b", "c"], pointing, lift, k=1)
    np.testing.assert_array_equal(chosen[0], [[0, 1]])  # a's own head 0 is not chosen for a
    assert leave_one_study_out(["a", "a"], pointing[:2], lift[:2], 1) == [None, None]


def test_top_heads_map_is_the_mean_of_the_chosen_heads():
    maps = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    weights = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(top_heads_map(maps, weights), (maps[0, 0] + maps[1, 1]) / 2)


def test_methods_table_ranks_by_pointing_with_intervals_by_study():
    def entry(hit, lift, seconds=0.5):
        return {"pointing_hit": hit, "pointing_chance": 0.1, "mass_in_box_lift": lift, "auroc": 0.5,
                "seconds": seconds}

    entries = [(f"k{i}", f"s{i // 2}", {"methods": {"good": entry(1.0, 4.0), "poor": entry(float(i == 0), 1.0)}})
               for i in range(4)]
    table = methods_table(entries, n_boot=200)
    assert list(table["method"]) == ["good", "poor"]
    good, poor = table.iloc[0], table.iloc[1]
    assert good["pointing_game"] == 1.0 and good["pointing_game_low"] == good["pointing_game_high"] == 1.0
    assert poor["pointing_game"] == 0.25 and poor["pointing_game_low"] <= 0.25 <= poor["pointing_game_high"]
    assert good["seconds_per_row"] == 0.5 and good["studies"] == 2



def test_methods_table_lists_erasers_gains_beside_deletion_and_insertion_with_study_intervals():
    # two studies of two rows: s0's comprehensiveness gains 0.2 and 0.4, s1's 0.6 and 0.8. The mean is 0.5;
    # a replicate draws s0 twice (mean 0.3), s1 twice (0.7) or one of each (0.5), each extreme one time in
    # four, so the 2.5th and 97.5th percentiles are 0.3 and 0.7
    gains = [0.2, 0.4, 0.6, 0.8]
    entries = [(f"k{i}", f"s{i // 2}", {"methods": {"answer": {
        "pointing_hit": 1.0, "pointing_chance": 0.1, "mass_in_box_lift": 2.0, "auroc": 0.9, "seconds": 0.0,
        "deletion_gain": 1.0, "insertion_gain": -1.0, "comprehensiveness_gain": gain, "sufficiency_gain": -gain}}})
        for i, gain in enumerate(gains)]
    row = methods_table(entries, n_boot=400).iloc[0]
    assert row["comprehensiveness_gain"] == pytest.approx(0.5)
    assert (row["comprehensiveness_gain_low"], row["comprehensiveness_gain_high"]) == pytest.approx((0.3, 0.7))
    assert row["sufficiency_gain"] == pytest.approx(-0.5)
    assert (row["sufficiency_gain_low"], row["sufficiency_gain_high"]) == pytest.approx((-0.7, -0.3))
    assert row["deletion_gain"] == 1.0 and row["insertion_gain"] == -1.0
    # a run without the faithfulness study leaves all four empty, not 0
    bare = methods_table([(k, s, {"methods": {"answer": {n: v for n, v in sec["methods"]["answer"].items()
                                                        if not n.endswith("_gain")}}}) for k, s, sec in entries],
                         n_boot=50).iloc[0]
    assert all(np.isnan(bare[c]) for c in ("deletion_gain", "comprehensiveness_gain", "sufficiency_gain_low"))

def test_heads_and_sanity_tables_have_one_row_per_head_and_step():
    pointing = np.zeros((3, 2, 2))
    pointing[:, 1, 0] = 1
    heads = heads_table(["a", "b", "c"], pointing, np.ones_like(pointing), n_boot=50)
    assert len(heads) == 4 and (heads.iloc[0]["layer"], heads.iloc[0]["head"]) == (1, 0)
    section = {"steps": ["original", "decoder.1"], "methods": {"answer": {"spearman": [1.0, 0.2], "ssim": [1.0, 0.4]}}}
    sanity = sanity_table([("k", "s", section)], n_boot=50)
    assert list(sanity["randomised"]) == ["original", "decoder.1"]
    assert list(sanity["spearman"]) == [1.0, 0.2]


def test_the_top_heads_method_scores_each_row_with_heads_chosen_on_other_studies():
    from medgemma_tui.export.method_tables import top_head_weights_for, top_heads_entries

    box = np.zeros((2, 2))
    box[0, 1] = 1  # cell 1 is the box
    maps = np.zeros((1, 2, 4))
    maps[0, 0, 1] = 1.0  # head 0 looks at the box
    maps[0, 1, 2] = 1.0  # head 1 looks elsewhere

    def payload(hits):
        return {"rows": "first_answer", "pointing_hit": [hits], "mass_in_box_lift": [[4.0 * h for h in hits]],
                "box_grid": box.tolist(), "pointing_cells": (box > 0).tolist()}

    # study a's own row says head 1 points, study b's says head 0: each row gets the other study's head
    heads = [("k0", "a", payload([0.0, 1.0])), ("k1", "b", payload([1.0, 0.0]))]
    entries, chosen = top_heads_entries(heads, 1, lambda key, rows: maps)
    hits = {key: section["methods"]["top_heads"]["pointing_hit"] for key, _, section in entries}
    assert hits == {"k0": 1.0, "k1": 0.0}
    assert chosen["leave_one_study_out"] == {"k0": [[0, 0]], "k1": [[0, 1]]}
    assert chosen["all_rows"] == [[0, 0]]  # a tie on every score: the first head
    np.testing.assert_array_equal(top_head_weights_for(chosen, "k0", (1, 2)), [[1.0, 0.0]])
    assert top_head_weights_for(chosen, "missing", (1, 2)) is None


def test_the_heads_intervals_at_once_equal_the_bootstrap_of_each_head_alone():
    from medgemma_tui.analysis.intervals import bootstrap_ci, bootstrap_means_ci

    rng = np.random.default_rng(1)
    values = rng.random((12, 5))
    values[:, 2] = values[:, 2] > 0.5  # a pointing column of hits and misses
    values[3, 4] = np.nan  # a head without a map on one row: its own bootstrap drops that row
    studies = list("aabbccddeeff")
    low, high = bootstrap_means_ci(values, studies, n=300, seed=2)
    expected = np.array([bootstrap_ci(values[:, c], studies, n=300, seed=2) for c in range(5)])
    np.testing.assert_allclose(np.stack([low, high], axis=1), expected, rtol=0, atol=1e-12)
    assert (low < high).all()
