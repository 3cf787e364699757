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
from medgemma_tui.config import PromptConfig
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
    relevancy_matrix,
    vision_gradients,
)
from medgemma_tui.engine.prompt import GENERIC_PROMPT, build_prompt, generic_settings
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


def attention_derivative(loaded, image, record, layer, head, column, eps=1e-3, position=None) -> float:
    """d(target logit) / d(attention of the target row (or of ``position``) on ``column``), central differences."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(NUDGE_ATTENTION, nudged_eager_attention)
    AttentionMaskInterface.register(NUDGE_ATTENTION, eager_mask)
    if position is None:
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
        # the logit comes back through float32 (noise about 1e-7 / 2 eps = 5e-6 here): a small patch
        # gradient (the corner's, 1.4e-3) is held to 0.5%, which another patch's gradient misses by far
        assert np.abs(grad[patch]).sum() == pytest.approx(expected, rel=5e-3), patch


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
    assert {"map_gradient", "map_gradcam", "map_generic", "map_relevancy"} <= record.timings_s.keys()
    assert {"relative", "gradient", "relevancy", "gradcam"} <= set(available_views(record))
    assert record.maps["relevancy"].shape == (N,)
    for view in ("relative", "gradient", "relevancy", "gradcam"):
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


# ---- relevancy through every layer (Chefer et al. 2021) -----------------------------------------------
def test_relevancy_matrix_known_values():
    """Two layers, two heads, two tokens, by hand: R = I; R += mean_h((G*A)^+) R, layer by layer."""
    layer0 = (np.array([[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]]]),  # A [H, S, S]
              np.array([[[1.0, 1.0], [2.0, -2.0]], [[-1.0, 0.0], [0.0, 2.0]]]))  # dy/dA
    # G*A per head: [[1, 0], [1, -1]] and [[-1, 0], [0, 1]]; positive parts, then the head mean:
    # A_bar0 = [[0.5, 0], [0.5, 0.5]] (the mean before the positive part would be [[0, 0], [0.5, 0]])
    # A_bar1 = [[0, 1], [0, 0]]
    layer1 = (np.array([[[0.5, 0.5], [1.0, 0.0]]] * 2), np.array([[[0.0, 2.0], [0.0, 0.0]]] * 2))
    # R0 = I + A_bar0 = [[1.5, 0], [0.5, 1.5]]; R1 = R0 + A_bar1 R0 = R0 + [[0.5, 1.5], [0, 0]]
    np.testing.assert_allclose(relevancy_matrix([layer0, layer1]), [[2.0, 1.5], [0.5, 1.5]])
    # the layers in the other order give another matrix: the order is the forward order
    np.testing.assert_allclose(relevancy_matrix([layer1, layer0]), [[1.5, 1.5], [0.5, 2.0]])
    with pytest.raises(ValueError, match="no layers"):
        relevancy_matrix([])


def relevancy_reference(loaded: LoadedModel, image, record) -> np.ndarray:
    """Relevancy from an eager pass over the whole fed sequence, its autograd, and a plain numpy loop."""
    row = int(select_rows(record, "first_answer")[0])
    k, position = int(record.query_answer_index[row]), int(record.query_positions[row])
    inputs = model_inputs(loaded, build_prompt(loaded.processor, loaded.config, image, record.question))
    answer = torch.as_tensor(record.input_ids[record.prompt_length :])[None]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], answer], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    inputs["token_type_ids"] = torch.cat([inputs["token_type_ids"], torch.zeros_like(answer)], dim=1)
    with text_attention(loaded.model, "eager"), torch.enable_grad():
        out = loaded.model(**inputs, output_attentions=True, use_cache=False)
        grads = torch.autograd.grad(out.logits[0, position, record.answer_ids[k]], out.attentions)
    S = inputs["input_ids"].shape[1]
    relevance = np.eye(S)
    for attn, grad in zip(out.attentions, grads, strict=True):
        a = attn[0].detach().double().numpy()
        g = grad[0].double().numpy()
        a_bar = np.zeros((S, S))
        for h in range(a.shape[0]):
            a_bar += np.maximum(g[h] * a[h], 0) / a.shape[0]
        relevance = relevance + a_bar @ relevance
    start, end = record.image_token_span
    return relevance[position, start:end], out.attentions, grads


def test_relevancy_view_equals_a_numpy_propagation_over_every_layer(seeing_model, film, seeing_record, seeing_maps):
    expected, attentions, grads = relevancy_reference(seeing_model, film, seeing_record)
    got = seeing_maps.maps["relevancy"]
    assert seeing_record.num_layers >= 2 and expected.max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9 * expected.max())
    # with two layers R = I + A0 + A1 + A1 A0: beyond each layer's own (direct, "gradient") term, the
    # propagated product A1 A0 over the rows between the target and the image
    assert seeing_record.num_layers == 2
    start, end = seeing_record.image_token_span
    row = int(select_rows(seeing_record, "first_answer")[0])
    a_bar = [np.maximum(g[0].double().numpy() * a[0].detach().double().numpy(), 0).mean(0)
             for a, g in zip(attentions, grads, strict=True)]
    position = int(seeing_record.query_positions[row])
    product = (a_bar[1] @ a_bar[0])[position, start:end]
    direct = seeing_maps.maps["gradient"].mean(axis=1).sum(axis=0)  # every layer's own head-mean term
    assert product.max() > 0
    np.testing.assert_allclose(got - direct, product, rtol=1e-3, atol=1e-3 * product.max())
    # the rows other than the target carry the propagation: their gradients are the model's
    # derivatives (central differences at the largest off-target entry of layer 0)
    grad0 = grads[0][0].detach().double().numpy()  # [H, S, S]
    grad0[:, position] = 0
    head, p, column = np.unravel_index(np.abs(grad0).argmax(), grad0.shape)
    assert p != position and abs(grad0[head, p, column]) > 0
    fd = attention_derivative(seeing_model, film, seeing_record, 0, int(head), int(column), position=int(p))
    assert grad0[head, p, column] == pytest.approx(fd, rel=1e-2, abs=1e-6)
    view = compute_view(seeing_maps, MapSpec("relevancy", layers=(0, 1), head_mode="head", head=1))
    np.testing.assert_allclose(view.grid.ravel(), got / got.sum(), rtol=1e-5)  # one map, whatever the choice
    assert "Chefer" in view.description and f"all {seeing_record.num_layers} layers" in view.description
    assert "direct term" in compute_view(seeing_maps, MapSpec("gradient")).description


# ---- the relative view divides like rows by like -------------------------------------------------------
def test_relative_view_divides_each_kind_of_row_by_the_generic_prompts_same_kind(demo_record):
    record = copy.deepcopy(demo_record)
    rows = {"question": record.question_rows, "first_answer": record.content_answer_rows[:1],
            "answer": record.content_answer_rows}
    # a generic prompt whose rows equal this record's rows kind by kind: every relative map is uniform
    record.maps["generic_question"] = record.image_attn[rows["question"]].mean(axis=0)
    record.maps["generic"] = record.image_attn[rows["first_answer"][0]]
    record.maps["generic_answers"] = record.image_attn[rows["answer"]].mean(axis=0)
    assert not np.allclose(record.maps["generic"], record.maps["generic_question"])  # a mismatch would show
    for choice in ("question", "first_answer", "answer", int(rows["question"][0]), int(rows["first_answer"][0])):
        grid = compute_view(record, MapSpec("relative", rows=choice)).grid
        np.testing.assert_allclose(grid, 1.0 / grid.size, rtol=1e-4, err_msg=str(choice))
    assert "its question rows" in compute_view(record, MapSpec("relative", rows="question")).description
    del record.maps["generic_question"]
    with pytest.raises(ValueError, match="question rows"):
        compute_view(record, MapSpec("relative", rows="question"))


def test_the_generic_prompt_takes_the_records_system_turn_and_image_order(demo_model, film):
    settings = PromptConfig(system="You are an expert radiologist.", instruction="Answer yes or no.",
                            order="image_first", generic_question="What does this film show?")
    record = extract_record(demo_model, film, "Is there a nodule?", max_new_tokens=2, prompt_settings=settings)
    add_model_views(demo_model, film, record, which=("generic",))
    assert record.extra["generic_prompt"] == "What does this film show?"
    generic = extract_record(demo_model, film, "What does this film show?", max_new_tokens=4, keep_layer_mean=False,
                             prompt_settings=generic_settings(settings))
    assert "Answer yes or no." not in generic.extra["prompt"]["text"]
    assert generic.extra["prompt"]["text"].index("radiologist") < generic.extra["prompt"]["text"].index("What does")
    np.testing.assert_allclose(record.maps["generic_question"], generic.image_attn[generic.question_rows].mean(0),
                               atol=1e-7)
    assert record.maps["generic_question"].sum(axis=-1).min() > 0  # image first: its question rows see the image
