"""The capture is exact: the eager output_attentions path is the reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from medgemma_tui.analysis.views import MapSpec, compute_view, rows_seeing_image
from medgemma_tui.config import PromptConfig
from medgemma_tui.engine.capture import attention_probs_fp32
from medgemma_tui.engine.extract import extract_record
from medgemma_tui.engine.prompt import build_prompt, chat_messages, image_token_span
from medgemma_tui.engine.reference import eager_attentions, record_from_reference


def test_capture_matches_eager_on_every_layer_and_head(demo_model, film, demo_record):
    reference = record_from_reference(demo_record, eager_attentions(demo_model, film, demo_record))
    for name in ("image_attn", "question_attn", "shares", "layer_mean_attn"):
        got, want = getattr(demo_record, name), reference[name]
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=name)


def test_decode_rows_on_sliding_layers_map_keys_to_positions(short_window_model, film):
    """A window (64) far shorter than the sequence: decode-time key j is not sequence position j."""
    model = short_window_model
    config = model.config.get_text_config()
    assert config.sliding_window < 100 and "sliding_attention" in config.layer_types
    record = extract_record(model, film, "Is there a nodule?", max_new_tokens=12)
    reference = record_from_reference(record, eager_attentions(model, film, record))
    rows = record.answer_rows[1:]  # decode steps
    assert len(rows) >= 1 and record.prompt_length > config.sliding_window
    sliding = [i for i, t in enumerate(config.layer_types) if t == "sliding_attention"]
    np.testing.assert_allclose(record.shares[rows][:, sliding], reference["shares"][rows][:, sliding], atol=1e-5)
    np.testing.assert_allclose(record.layer_mean_attn, reference["layer_mean_attn"], atol=1e-5)


def test_every_captured_row_is_a_distribution(demo_record):
    np.testing.assert_allclose(demo_record.shares.sum(-1), 1.0, atol=1e-5)
    assert (demo_record.image_attn >= 0).all()


def test_image_span_comes_from_the_tokens_not_a_fixed_offset(demo_model, film, demo_record):
    config = demo_model.config
    start, end = demo_record.image_token_span
    assert end - start == config.mm_tokens_per_image
    assert (start, end) != (1, 257)
    ids = demo_record.input_ids
    assert (ids[start:end] == config.image_token_index).all()
    assert ids[start - 1] == config.boi_token_index and ids[end] == config.eoi_token_index
    # the question comes first, so a longer question moves the image
    long = build_prompt(demo_model.processor, config, film,
                        "Is there a large pleural effusion at the base of the left lung, or none at all?")
    assert long.image_token_span[0] > start


def test_image_span_rejects_a_split_or_short_block():
    with pytest.raises(ValueError):
        image_token_span(np.array([0, 9, 9, 1, 9]), 9, 3)
    with pytest.raises(ValueError):
        image_token_span(np.array([0, 9, 9, 1]), 9, 3)


def test_answer_rows_are_the_rows_that_produced_each_answer_token(demo_record):
    P = demo_record.prompt_length
    for k, row in enumerate(demo_record.answer_rows):
        assert demo_record.query_positions[row] == P - 1 + k
    # the fed sequence holds the answer tokens that were fed back, the last one never is
    np.testing.assert_array_equal(demo_record.input_ids[P:], demo_record.answer_ids[:-1])


def test_question_rows_sit_on_the_question_tokens(demo_record):
    text = "".join(demo_record.tokens[p] for p in demo_record.question_positions)
    assert text.strip() == demo_record.question


def test_gqa_group_maps_are_the_means_of_their_two_heads(demo_record):
    n = demo_record.model.heads_per_group
    assert n == 2
    last = demo_record.num_layers - 1
    base = MapSpec(rows="first_answer", layers=(last, last + 1))
    for group in range(demo_record.model.num_kv_heads):
        group_map = compute_view(demo_record, base.with_(head_mode="group", head=group)).grid
        raw = demo_record.image_attn[demo_record.answer_rows[0], last, group * n : group * n + n].mean(0)
        np.testing.assert_allclose(group_map.ravel(), raw / raw.sum(), atol=1e-6)
    # the mean of the group means is the plain head mean
    groups = demo_record.image_attn[:, :, :].reshape(*demo_record.image_attn.shape[:2], -1, n, 256).mean(3)
    np.testing.assert_allclose(groups.mean(2), demo_record.image_attn.mean(2), atol=1e-7)


def test_one_hot_attention_on_token_k_lands_in_cell_k_div_16_k_mod_16(demo_record):
    for k in (0, 15, 16, 37, 255):
        one_hot = np.zeros_like(demo_record.image_attn)
        one_hot[..., k] = 1.0
        record = dataclasses.replace(demo_record, image_attn=one_hot)  # the shared record stays untouched
        grid = compute_view(record, MapSpec()).grid
        assert np.unravel_index(grid.argmax(), grid.shape) == (k // 16, k % 16)


def test_image_tokens_are_row_major_with_row_0_at_the_top(demo_model):
    """A bright square in patch (r, c) changes the vision embedding of token r*16 + c only."""
    tower = demo_model.model.model.vision_tower.embeddings
    patch = demo_model.config.vision_config.patch_size
    size = demo_model.config.vision_config.image_size
    base = torch.zeros(1, 3, size, size)
    r, c = 3, 11
    bright = base.clone()
    bright[..., r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = 1.0
    with torch.no_grad():
        diff = (tower(bright) - tower(base)).abs().sum(-1)[0]  # [patches]
    side = size // patch
    assert int(diff.argmax()) == r * side + c
    assert int((diff > 1e-6).sum()) == 1


def test_fp32_probabilities_match_a_hand_computed_softmax_with_gqa():
    torch.manual_seed(0)
    q = torch.randn(1, 4, 3, 8)
    k = torch.randn(1, 2, 5, 8)
    mask = torch.zeros(1, 1, 3, 5)
    mask[..., 4] = torch.finfo(torch.float32).min
    probs = attention_probs_fp32(q, k, mask, scaling=0.5)
    for h in range(4):
        scores = q[0, h] @ k[0, h // 2].T * 0.5
        scores[:, 4] = -torch.inf
        torch.testing.assert_close(probs[0, h], torch.softmax(scores, -1))


# ---- the prompt as a research variable: a system turn, an instruction, the image first ---------------
RADIOLOGIST = PromptConfig(system="You are an expert radiologist.", instruction="Answer yes or no.",
                           order="image_first")


@pytest.fixture(scope="module")
def image_first_record(demo_model, film):
    return extract_record(demo_model, film, "Is there a nodule in the left lung?", max_new_tokens=4,
                          prompt_settings=RADIOLOGIST)


def test_default_prompt_is_the_question_then_the_image_with_no_system_turn():
    assert chat_messages("Is there a nodule?") == [
        {"role": "user", "content": [{"type": "text", "text": "Is there a nodule?"}, {"type": "image"}]}]
    assert PromptConfig().order == "text_first" and PromptConfig().system is None


def test_prompt_settings_shape_the_chat_messages():
    assert chat_messages("Is there a nodule?", RADIOLOGIST) == [
        {"role": "system", "content": [{"type": "text", "text": "You are an expert radiologist."}]},
        {"role": "user", "content": [{"type": "image"},
                                     {"type": "text", "text": "Is there a nodule? Answer yes or no."}]}]


def test_capture_matches_eager_with_a_system_turn_an_instruction_and_the_image_first(
        demo_model, film, image_first_record):
    record = image_first_record
    reference = record_from_reference(record, eager_attentions(demo_model, film, record))
    for name in ("image_attn", "question_attn", "shares", "layer_mean_attn"):
        np.testing.assert_allclose(getattr(record, name), reference[name], atol=1e-5, err_msg=name)
    text = record.extra["prompt"]["text"]
    assert text.index("You are an expert radiologist.") < text.index("<start_of_image>") < text.index("nodule")
    assert text.index("left lung? Answer yes or no.") > 0


def test_image_first_moves_the_image_before_the_question_found_by_ids_and_offsets(
        demo_model, image_first_record, demo_record):
    record = image_first_record
    config = demo_model.config
    start, end = record.image_token_span
    assert (record.input_ids[start:end] == config.image_token_index).all()
    assert record.input_ids[start - 1] == config.boi_token_index and record.input_ids[end] == config.eoi_token_index
    assert record.question_positions.min() > end  # the question now follows the image
    # the question's own tokens, not the instruction's or the system turn's
    assert "".join(record.tokens[p] for p in record.question_positions).strip() == record.question
    assert demo_record.question_positions.max() < demo_record.image_token_span[0]  # the default: question first


def test_with_the_image_first_the_question_rows_see_the_image(image_first_record, demo_record):
    record = image_first_record
    assert set(record.question_rows) <= set(rows_seeing_image(record))
    assert record.shares[record.question_rows][..., 1].min() > 0  # real attention on the image tokens
    grid = compute_view(record, MapSpec("question")).grid
    assert not np.allclose(grid, 1.0 / grid.size, atol=1e-4)  # a real map, not the uniform fallback
    # text first (the default): the question rows cannot reach the image, their map is uniform
    assert not set(demo_record.question_rows) & set(rows_seeing_image(demo_record))
    np.testing.assert_allclose(compute_view(demo_record, MapSpec("question")).grid, 1.0 / grid.size, atol=1e-6)


def test_a_system_turn_that_quotes_the_question_does_not_move_the_question_tokens(demo_model, film):
    question = "Is there a nodule?"
    quoting = PromptConfig(system=f"Answer questions such as '{question}' briefly.")
    prompt = build_prompt(demo_model.processor, demo_model.config, film, question, quoting)
    # Gemma 3's template opens the user turn with the system prompt and a blank line, then the question
    tokenizer = demo_model.processor.tokenizer
    system_end = len(tokenizer(f"<bos><start_of_turn>user\n{quoting.system}", add_special_tokens=False)["input_ids"])
    assert prompt.question_positions.min() > system_end
    assert demo_model.processor.tokenizer.decode(prompt.input_ids[prompt.question_positions]).strip() == question
