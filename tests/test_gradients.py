"""Model-dependent maps: gradient-weighted attention, Grad-CAM, the generic prompt.

References are computed independently of ``engine.gradients``: derivatives by central finite differences
over the whole fed sequence (the target row chosen by ``views``), the attention from the capture, the
pooling by the model's own ``Gemma3MultiModalProjector``.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from medgemma_tui.analysis.views import MapSpec, available_views, compute_view, select_rows
from medgemma_tui.engine.capture import CAPTURE_ATTENTION
from medgemma_tui.engine.extract import extract_record, model_inputs
from medgemma_tui.engine.gradients import (
    add_model_views,
    attention_gradients,
    first_content_row,
    frozen_for_gradients,
    grad_cam,
    last_vision_layer,
    pool_to_tokens,
    vision_gradients,
)
from medgemma_tui.engine.prompt import GENERIC_PROMPT, build_prompt
from medgemma_tui.engine.reference import text_attention, verify_against_eager
from medgemma_tui.model.info import model_info
from medgemma_tui.model.loading import LoadedModel

NUDGE_ATTENTION = "medtui_test_nudge"
_nudge: dict[str, int | float] = {}  # layer, head, position, column, delta: one attention entry moved


@pytest.fixture(scope="module")
def seeing_model(demo_model):
    """The demo's twin that sees its image and pools: a random projector (a freshly built Gemma3's is zero,
    so its image tokens carry nothing), a quarter of the image tokens so the projector averages 2x2 patches
    into each cell of a smaller grid, and float64 so finite differences are sharp."""
    from transformers import Gemma3Processor

    from tests.support import builder

    demo_bundle = builder("demo_bundle")

    demo = demo_model.processor
    config = demo_bundle.build_config(demo.tokenizer)
    config.mm_tokens_per_image //= 4
    model = demo_bundle.build_model(config, seed=3)
    torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=0.05)
    model.to(torch.float64)
    model.set_attn_implementation({"text_config": CAPTURE_ATTENTION, "vision_config": "sdpa"})
    processor = Gemma3Processor(image_processor=demo.image_processor, tokenizer=demo.tokenizer,
                                chat_template=demo.chat_template, image_seq_length=config.mm_tokens_per_image)
    return LoadedModel(model=model, processor=processor, info=model_info(model, "twin"), source="twin")


@pytest.fixture(scope="module")
def seeing_record(seeing_model, film):
    return extract_record(seeing_model, film, "Is there a nodule in the right lung?", max_new_tokens=3)


@pytest.fixture(scope="module")
def attention_grads(seeing_model, film, seeing_record):
    return attention_gradients(seeing_model, film, seeing_record)


@pytest.fixture(scope="module")
def vision_grads(seeing_model, film, seeing_record):
    return vision_gradients(seeing_model, film, seeing_record)


@pytest.fixture(scope="module")
def seeing_maps(seeing_model, film, seeing_record):
    record = copy.deepcopy(seeing_record)
    add_model_views(seeing_model, film, record)
    return record


# ---- independent references ----------------------------------------------------------------------
def target_logit(loaded: LoadedModel, image, record) -> float:
    """The first non-end answer token's logit at the row that produced it, from a pass over every fed token."""
    row = int(select_rows(record, "first_answer")[0])
    k = int(record.query_answer_index[row])
    inputs = model_inputs(loaded, build_prompt(loaded.processor, loaded.config, image, record.question))
    answer = torch.as_tensor(record.input_ids[record.prompt_length :])[None]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], answer], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    inputs["token_type_ids"] = torch.cat([inputs["token_type_ids"], torch.zeros_like(answer)], dim=1)
    with torch.no_grad():
        logits = loaded.model(**inputs, use_cache=False).logits  # [1, S, vocab]
    return float(logits[0, record.prompt_length - 1 + k, record.answer_ids[k]])


def nudged_eager_attention(module, query, key, value, attention_mask, **kwargs):
    """Eager attention with one probability moved by ``_nudge["delta"]`` before it weighs the values."""
    from transformers.models.gemma3.modeling_gemma3 import eager_attention_forward, repeat_kv

    output, weights = eager_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if module.layer_idx != _nudge["layer"]:
        return output, weights
    weights = weights.clone()
    weights[0, _nudge["head"], _nudge["position"], _nudge["column"]] += _nudge["delta"]
    output = torch.matmul(weights, repeat_kv(value, module.num_key_value_groups))  # [B, H, q, D]
    return output.transpose(1, 2).contiguous(), weights


def attention_derivative(loaded, image, record, layer, head, column, eps=1e-3) -> float:
    """d(target logit) / d(attention of the target row on ``column``), central differences."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(NUDGE_ATTENTION, nudged_eager_attention)
    AttentionMaskInterface.register(NUDGE_ATTENTION, eager_mask)
    position = int(record.query_positions[select_rows(record, "first_answer")[0]])
    values = []
    with text_attention(loaded.model, NUDGE_ATTENTION):
        for delta in (eps, -eps):
            _nudge.update(layer=layer, head=head, position=position, column=column, delta=delta)
            values.append(target_logit(loaded, image, record))
    return (values[0] - values[1]) / (2 * eps)


def vision_derivative(loaded, image, record, patch, direction, eps=1e-2) -> float:
    """d(target logit) along ``direction`` [channels] of the last SigLIP layer's output at ``patch``."""
    values = []
    for sign in (1, -1):

        def nudge(_module, _args, output, sign=sign):
            output = output.clone()
            output[0, patch] += sign * eps * torch.as_tensor(direction, dtype=output.dtype)
            return output

        handle = last_vision_layer(loaded.model).register_forward_hook(nudge)
        try:
            values.append(target_logit(loaded, image, record))
        finally:
            handle.remove()
    return (values[0] - values[1]) / (2 * eps)


def projector_pooling(loaded, patch_map: np.ndarray) -> np.ndarray:
    """``patch_map`` [patches] pushed through the model's own projector code, read after its average pool."""
    projector = loaded.model.model.multi_modal_projector
    channels = loaded.config.vision_config.hidden_size
    features = torch.zeros((1, len(patch_map), channels), dtype=loaded.model.dtype)  # [1, patches, C]
    features[0, :, 0] = torch.as_tensor(patch_map)
    pooled = []
    handle = projector.avg_pool.register_forward_hook(lambda _m, _a, out: pooled.append(out))
    try:
        with torch.no_grad():
            projector(features)
    finally:
        handle.remove()
    return pooled[0][0, 0].flatten().double().numpy()  # the projector flattens [C, t, t] row-major


# ---- gradient-weighted attention --------------------------------------------------------------------
def test_attention_gradient_equals_finite_differences_of_the_answer_logit(
    seeing_model, film, seeing_record, attention_grads
):
    _, grad = attention_grads
    scale = np.abs(grad).max()
    for layer in (0, seeing_record.num_layers - 1):  # the largest derivative of the first and last layer
        head, column = np.unravel_index(np.abs(grad[layer]).argmax(), grad[layer].shape)
        expected = attention_derivative(seeing_model, film, seeing_record, layer, int(head), int(column))
        assert abs(grad[layer, head, column] - expected) <= 1e-2 * abs(expected) + 1e-4 * scale, (layer, head, column)


def test_gradient_map_is_the_positive_part_of_captured_attention_times_the_derivative(
    seeing_model, film, seeing_record, seeing_maps, attention_grads
):
    record = seeing_record
    row = int(select_rows(record, "first_answer")[0])
    start, end = record.image_token_span
    product = record.image_attn[row] * attention_grads[1][..., start:end]  # attention from the capture
    assert product.max() > 0 > product.min()  # both signs occur, so the positive part is exercised
    for index in (product.argmax(), product.argmin()):
        layer, head, cell = np.unravel_index(index, product.shape)
        derivative = attention_derivative(seeing_model, film, record, int(layer), int(head), start + int(cell))
        expected = max(record.image_attn[row, layer, head, cell] * derivative, 0.0)
        assert seeing_maps.maps["gradient"][layer, head, cell] == pytest.approx(expected, rel=1e-2, abs=1e-7)
    np.testing.assert_allclose(seeing_maps.maps["gradient"], np.clip(product, 0, None), rtol=1e-4, atol=1e-9)


# ---- Grad-CAM ----------------------------------------------------------------------------------------
def test_vision_gradient_equals_finite_differences_of_the_answer_logit(seeing_model, film, seeing_record, vision_grads):
    activations, grad = vision_grads
    config = seeing_model.config.vision_config
    side = config.image_size // config.patch_size
    assert activations.shape == grad.shape == (side * side, config.hidden_size)
    # along sign(dy/dA) on one patch, the derivative is the patch's |dy/dA|_1: the patch of the largest,
    # and the top-right corner (a transposed or flipped patch grid reads another patch's gradient there)
    for patch in (int(np.abs(grad).sum(axis=1).argmax()), side - 1):
        direction = np.sign(grad[patch])
        expected = vision_derivative(seeing_model, film, seeing_record, patch, direction)
        assert np.abs(grad[patch]).sum() == pytest.approx(expected, rel=1e-3), patch


def test_grad_cam_is_relu_of_the_gradient_weighted_channels():
    activations = np.array([[1.0, 2.0], [3.0, -4.0], [0.0, 1.0]])  # [patches, channels]
    gradients = np.array([[1.0, 0.0], [1.0, 3.0], [1.0, 0.0]])  # channel weights: means 1 and 1
    np.testing.assert_allclose(grad_cam(activations, gradients), [3.0, 0.0, 1.0])


def test_pooling_is_row_major_with_row_0_at_the_top(seeing_model):
    config = seeing_model.config
    side = config.vision_config.image_size // config.vision_config.patch_size
    tokens = int(round(config.mm_tokens_per_image**0.5))
    kernel = side // tokens
    assert kernel > 1  # the twin pools, so orientation and averaging are both tested
    top_right = np.zeros((side, side))
    top_right[0, side - 1] = 1.0
    pooled = pool_to_tokens(top_right.ravel(), config)
    assert np.flatnonzero(pooled).tolist() == [tokens - 1] and pooled[tokens - 1] == pytest.approx(1 / kernel**2)
    bottom_left = np.zeros((side, side))
    bottom_left[side - 1, 0] = 1.0
    assert np.flatnonzero(pool_to_tokens(bottom_left.ravel(), config)).tolist() == [(tokens - 1) * tokens]


def test_pooling_equals_the_projectors_own_average_pool(seeing_model):
    patches = (seeing_model.config.vision_config.image_size // seeing_model.config.vision_config.patch_size) ** 2
    patch_map = np.random.default_rng(0).random(patches)
    np.testing.assert_allclose(
        pool_to_tokens(patch_map, seeing_model.config), projector_pooling(seeing_model, patch_map), rtol=1e-6
    )


def test_gradcam_map_is_the_patch_map_pooled_by_the_projector(seeing_model, seeing_maps, vision_grads):
    activations, grad = vision_grads
    expected = projector_pooling(seeing_model, grad_cam(activations, grad))
    assert expected.max() > 0
    np.testing.assert_allclose(seeing_maps.maps["gradcam"], expected, rtol=1e-5, atol=1e-9)


# ---- the generic prompt and the three views --------------------------------------------------------
def test_relative_view_of_the_generic_prompt_against_itself_is_uniform(seeing_model, film):
    record = extract_record(seeing_model, film, GENERIC_PROMPT, max_new_tokens=4, keep_layer_mean=False)
    add_model_views(seeing_model, film, record, which=("generic",))
    np.testing.assert_allclose(record.maps["generic"], record.image_attn[first_content_row(record)], atol=1e-7)
    n = record.grid[0] * record.grid[1]
    for spec in (MapSpec("relative"), MapSpec("relative", layers=(0, 1), head_mode="head", head=record.num_heads - 1),
                 MapSpec("relative", head_mode="group", head=record.model.num_kv_heads - 1)):
        np.testing.assert_allclose(compute_view(record, spec).grid, 1.0 / n, rtol=1e-5)


def test_the_three_views_are_grids_that_sum_to_one(seeing_maps):
    record = seeing_maps
    L, H, N = record.image_attn.shape[1:]
    assert record.maps["gradient"].shape == record.maps["generic"].shape == (L, H, N)
    assert record.maps["gradcam"].shape == (N,)
    assert all(m.dtype == np.float32 for m in record.maps.values())
    assert record.extra["generic_prompt"] == GENERIC_PROMPT
    assert {"map_gradient", "map_gradcam", "map_generic"} <= record.timings_s.keys()
    assert {"relative", "gradient", "gradcam"} <= set(available_views(record))
    for view in ("relative", "gradient", "gradcam"):
        grid = compute_view(record, MapSpec(view)).grid
        assert grid.shape == record.grid == (int(round(N**0.5)),) * 2
        assert (grid >= 0).all() and grid.sum() == pytest.approx(1.0, abs=1e-5)
        assert not np.allclose(grid, 1.0 / N)  # a real map, not normalise()'s fallback for all zeros


def test_unknown_map_names_are_refused(seeing_model, film, seeing_record):
    with pytest.raises(ValueError, match="unknown model map"):
        add_model_views(seeing_model, film, copy.deepcopy(seeing_record), which=("gradcam", "saliency"))


# ---- targets, refusals and the model left as it was -----------------------------------------------
def test_target_row_skips_end_tokens_as_the_views_do(demo_record):
    end = demo_record.extra["end_token_ids"][0]
    assert len(demo_record.answer_ids) >= 2
    content = next(int(i) for i in demo_record.answer_ids if int(i) not in demo_record.extra["end_token_ids"])
    first_is_end = replace(demo_record, answer_ids=demo_record.answer_ids.copy())
    first_is_end.answer_ids[0], first_is_end.answer_ids[1] = end, content
    all_end = replace(demo_record, answer_ids=np.full_like(demo_record.answer_ids, end))
    for record, k in ((demo_record, None), (first_is_end, 1), (all_end, 0)):
        row = first_content_row(record)
        assert row == int(select_rows(record, "first_answer")[0])
        if k is not None:
            assert record.query_answer_index[row] == k


def test_a_record_of_another_question_is_refused(demo_model, film, demo_record):
    other = replace(demo_record, question="Is there a nodule?")
    with pytest.raises(ValueError, match="does not match the record"):
        attention_gradients(demo_model, film, other)


def test_failed_gradient_pass_restores_flags_and_mode(demo_model):
    model = demo_model.model
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(RuntimeError), frozen_for_gradients(model):
        assert not any(p.requires_grad for p in model.parameters()) and torch.is_grad_enabled()
        raise RuntimeError("the pass failed")
    assert [p.requires_grad for p in model.parameters()] == flags and not model.training


def test_model_is_left_as_it_was_and_capture_still_matches_eager(demo_model, film, demo_record):
    model = demo_model.model
    frozen = model.model.multi_modal_projector.mm_soft_emb_norm.weight
    frozen.requires_grad_(False)  # a mixed pattern, so the flags are restored, not set to True
    record = copy.deepcopy(demo_record)
    try:
        flags = [p.requires_grad for p in model.parameters()]
        add_model_views(demo_model, film, record, which=("gradient", "gradcam"))  # the two gradient passes
        assert [p.requires_grad for p in model.parameters()] == flags
    finally:
        frozen.requires_grad_(True)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert model.config.get_text_config()._attn_implementation == CAPTURE_ATTENTION
    assert model.config.vision_config._attn_implementation == "sdpa"
    for view in ("gradient", "gradcam"):  # the demo's own grid, whatever its maps hold
        grid = compute_view(record, MapSpec(view)).grid
        assert grid.shape == record.grid and (grid >= 0).all() and grid.sum() == pytest.approx(1.0, abs=1e-5)
    again = extract_record(demo_model, film, demo_record.question, max_new_tokens=2)
    rows = len(demo_record.question_positions) + 2  # the question rows and the first two answer rows
    np.testing.assert_array_equal(again.answer_ids, demo_record.answer_ids[:2])
    np.testing.assert_allclose(again.image_attn, demo_record.image_attn[:rows], atol=1e-6)
    assert verify_against_eager(demo_model, film, again)["max_abs_diff"] < 1e-5
