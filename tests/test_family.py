"""The Gemma 3 family from its config: each member's head layout (query heads, key/value heads, head width,
query scaling) holds the capture to transformers' eager attention at 1e-5, the views read heads and groups from
the config, and the bf16 weight sizes the README gives are the checkpoints' parameter counts."""

from __future__ import annotations

import numpy as np
import pytest

from medgemma_tui.analysis.views import MapSpec, compute_view
from medgemma_tui.engine.extract import extract_record
from medgemma_tui.engine.loading import prepare_for_capture
from medgemma_tui.engine.reference import eager_attentions, record_from_reference
from medgemma_tui.model.shapes import FAMILY_TEXT, HEADS_SHAPES, bf16_weight_bytes, load_shape

QUESTION = "Is there a small left-sided pleural effusion?"


@pytest.fixture(scope="module", params=sorted(HEADS_SHAPES))
def member(request, film):
    """(shape, the loaded model, its record of one question about the film)."""
    loaded = prepare_for_capture(load_shape(request.param, device="cpu", dtype="fp32"))
    return request.param, loaded, extract_record(loaded, film, QUESTION, max_new_tokens=3)


def test_the_capture_matches_eager_with_each_members_heads(member, film):
    shape, loaded, record = member
    layout = FAMILY_TEXT[HEADS_SHAPES[shape]]
    assert (loaded.info.num_heads, loaded.info.num_kv_heads) == (layout["num_attention_heads"],
                                                                 layout["num_key_value_heads"])
    assert record.image_attn.shape[1:3] == (loaded.info.num_layers, layout["num_attention_heads"])
    reference = record_from_reference(record, eager_attentions(loaded, film, record))
    for name in ("image_attn", "question_attn", "shares", "layer_mean_attn"):
        np.testing.assert_allclose(getattr(record, name), reference[name], atol=1e-5, err_msg=f"{shape} {name}")


def test_the_last_gqa_group_is_the_last_key_value_heads_query_heads(member):
    """Grouped-query attention (Ainslie et al. 2023): query heads g*n .. g*n+n-1 share key/value head g, with
    n = num_attention_heads / num_key_value_heads read from the member's config."""
    shape, _, record = member
    layout = FAMILY_TEXT[HEADS_SHAPES[shape]]
    groups, n = layout["num_key_value_heads"], layout["num_attention_heads"] // layout["num_key_value_heads"]
    row = int(record.answer_rows[0])
    got = compute_view(record, MapSpec(rows=row, head_mode="group", head=groups - 1)).grid
    want = record.image_attn[row, :, (groups - 1) * n: groups * n].astype(np.float64).mean(axis=(0, 1))
    np.testing.assert_allclose(got.ravel(), want / want.sum(), atol=1e-6)
    with pytest.raises(ValueError):
        compute_view(record, MapSpec(rows=row, head_mode="group", head=groups))


@pytest.mark.parametrize("hub_id, parameters", [
    ("google/medgemma-4b-it", 4_300_079_472),  # the hub's safetensors parameter counts
    ("google/gemma-3-12b-it", 12_187_325_040),
    ("google/medgemma-27b-it", 27_432_406_640),
])
def test_bf16_weights_are_two_bytes_per_checkpoint_parameter(hub_id, parameters):
    assert bf16_weight_bytes(hub_id) == 2 * parameters


def test_gradient_views_and_methods_read_the_27b_layout():
    """The gradient view, Grad-CAM and Grad-CAM++ on the tower and RISE on the decoder run on the layout furthest
    from the demo's (32 query and 16 key-value heads of width 128, queries scaled by 168 ** -0.5) and give a map
    of the config's grid (16 x 16 from mm_tokens_per_image) summing to 1."""
    from medgemma_tui.config import Config
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.pipeline.studies.methods import methods_study
    from medgemma_tui.resources import demo_dataset_csv
    from tests.support import run_sample

    loaded = prepare_for_capture(load_shape("gemma-3-27b-heads", device="cpu", dtype="fp32"))
    sample = next(s for s in load_dataset(demo_dataset_csv()).samples if s.bbox)
    result = run_sample(loaded, sample, max_new_tokens=2)
    config = Config().with_overrides({"methods.rise_masks": 8})
    study = methods_study(loaded, result, config, names=("gradcampp", "rise"))
    side = int(round(loaded.model.config.mm_tokens_per_image ** 0.5))
    for name in ("gradient", "gradcam", "gradcampp", "rise"):
        assert "error" not in study["methods"][name], (name, study["methods"][name])
        grid = compute_view(result.record, result.analysis.view.spec.with_(view=name)).grid
        assert grid.shape == (side, side) and grid.sum() == pytest.approx(1.0, abs=1e-5), name
