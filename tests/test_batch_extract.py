"""Batches: every row of one left-padded ``generate`` has the record it has alone (batch 1), in fp32."""

from __future__ import annotations

import numpy as np
import pytest

from medgemma_tui.data.images import load_image
from medgemma_tui.engine.capture import first_real_query
from medgemma_tui.engine.extract import extract_record, extract_records
from medgemma_tui.resources import fixtures_dir

# four prompt lengths: the shorter rows are padded on the left
QUESTIONS = ("Is there a nodule?", "Is the cardiac silhouette enlarged on this film?",
             "Is there a pleural effusion in the left lung?",
             "Is there consolidation in the right lower lobe of the lung?")
ARRAYS = ("input_ids", "answer_ids", "answer_logprobs", "query_positions", "query_answer_index", "question_positions",
          "image_attn", "question_attn", "shares", "layer_mean_attn")


@pytest.fixture(scope="module")
def phantom():
    return load_image(fixtures_dir() / "phantoms" / "p0003.png").rgb


def assert_same_records(batch, alone):
    assert len(batch) == len(alone)
    for got, want in zip(batch, alone, strict=True):
        assert got.answer == want.answer and got.answer_tokens == want.answer_tokens
        assert got.prompt_length == want.prompt_length and got.image_token_span == want.image_token_span
        assert got.query_kind == want.query_kind
        for name in ARRAYS:  # every layer, head and kept row
            a, b = getattr(got, name), getattr(want, name)
            assert a.shape == b.shape, f"{want.question}: {name}"
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=0, err_msg=f"{want.question}: {name}")


def test_the_first_real_query_follows_the_left_padding():
    assert first_real_query([0, 0, 0, 1, 2]) == 2  # two padding queries (position 0), then positions 0..2
    assert first_real_query([0, 1, 2, 3]) == 0  # no padding
    assert first_real_query([7]) == 0  # a decode step


def test_every_row_of_a_batch_has_its_batch_1_record(demo_model, phantom, monkeypatch):
    alone = [extract_record(demo_model, phantom, q, max_new_tokens=4) for q in QUESTIONS]
    assert len({r.prompt_length for r in alone}) == len(QUESTIONS)  # every row padded differently
    calls = []
    real = demo_model.model.get_image_features
    monkeypatch.setattr(demo_model.model, "get_image_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    batch = extract_records(demo_model, phantom, list(QUESTIONS), max_new_tokens=4)
    assert len(calls) == 1  # one vision pass for the film's rows
    assert all(r.extra["batch_rows"] == len(QUESTIONS) for r in batch)
    assert_same_records(batch, alone)


def test_each_row_keeps_its_own_sliding_window_in_a_batch(short_window_model, phantom):
    """A 64-token window, shorter than every prompt: prefill and decode rows of the sliding layers, per row."""
    config = short_window_model.config.get_text_config()
    alone = [extract_record(short_window_model, phantom, q, max_new_tokens=5) for q in QUESTIONS[:3]]
    assert min(r.prompt_length for r in alone) > config.sliding_window
    assert "sliding_attention" in config.layer_types and all(len(r.answer_ids) == 5 for r in alone)
    assert_same_records(extract_records(short_window_model, phantom, list(QUESTIONS[:3]), max_new_tokens=5), alone)


def test_rows_that_stop_at_different_lengths_keep_their_own_answers(short_window_model, phantom, monkeypatch):
    """Each row ends at its own end token: the rows after it in the batch do not lengthen it."""
    questions = list(QUESTIONS[:3])
    free = extract_records(short_window_model, phantom, questions, max_new_tokens=6)
    stop = int(free[0].answer_ids[2])  # the random model's third token of the first row becomes an end token
    monkeypatch.setattr(short_window_model.model.generation_config, "eos_token_id", [stop])
    alone = [extract_record(short_window_model, phantom, q, max_new_tokens=6) for q in questions]
    lengths = [len(r.answer_ids) for r in alone]
    assert len(set(lengths)) > 1 and max(lengths) == 6 and alone[0].answer_ids[-1] == stop
    assert_same_records(extract_records(short_window_model, phantom, questions, max_new_tokens=6), alone)


def test_auto_batch_size_is_1_on_a_cpu_and_what_half_the_free_gpu_memory_holds(demo_model, monkeypatch):
    import types

    import torch

    from medgemma_tui.engine.extract import AUTO_BATCH_MAX, auto_batch_size, batch_size_for, row_bytes

    assert auto_batch_size(demo_model, 24) == 1 and batch_size_for("auto", demo_model, 24) == 1
    assert batch_size_for(3, demo_model, 24) == 3
    per_row = row_bytes(demo_model.model.config, 24, 4)
    on_gpu = types.SimpleNamespace(device="cuda:0", model=demo_model.model)
    for free, rows in ((0, 1), (2 * 3 * per_row + 1, 3), (10 ** 15, AUTO_BATCH_MAX)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device, free=free: (free, 10 ** 15))
        assert auto_batch_size(on_gpu, 24) == rows
