"""The decision row: the map of the row that produced the answer token carrying the verdict."""

import numpy as np

from medgemma_tui.analysis.record_analysis import DEFAULT_SPEC, analyse_record
from medgemma_tui.analysis.views import (
    MapSpec,
    answer_token_spans,
    compute_view,
    decision_index,
    select_rows,
)
from medgemma_tui.engine.record import AttentionRecord, ModelInfo

END = "<end_of_turn>"
SENTENCE = ["Based", " on", " the", " image", ",", " there", " is", " no", " pneum", "othorax", ".", END]


def record_answering(answer_tokens, question="Is there a pneumothorax?", layers=2, heads=2):
    """A hand-made record whose answer row k looks only at image cell k, so a map names its row."""
    n = 256
    prompt = 6 + n + 4  # bos, turn, 4 question tokens before the image, the image, 4 closing tokens
    a = len(answer_tokens)
    q_positions = np.arange(2, 6)
    query_positions = np.concatenate([q_positions, prompt - 1 + np.arange(a)])
    q = len(query_positions)
    image = np.full((q, layers, heads, n), 1e-4, np.float32)
    for k in range(a):
        image[4 + k, ..., k] = 1.0
    tokens = ["<bos>", "user", "Is", " there", " a", " pneumothorax?"] + ["<img>"] * n + ["x"] * 4
    tokens += list(answer_tokens[:-1])
    answer = "".join(t for t in answer_tokens if t != END).strip()
    ids = np.array([1 if t == END else 5 for t in answer_tokens])  # 1 is the end token's id
    rec = AttentionRecord(
        question=question,
        answer=answer,
        model=ModelInfo("hand-made", layers, heads, 1, (16, 16), ["sliding_attention"] * layers),
        input_ids=np.arange(len(tokens)),
        tokens=tokens,
        prompt_length=prompt,
        answer_ids=ids,
        answer_tokens=list(answer_tokens),
        answer_logprobs=np.zeros(a, np.float32),
        image_token_span=(6, 6 + n),
        question_positions=q_positions,
        question_offsets=[(0, 2), (2, 8), (8, 10), (10, 24)],
        query_positions=query_positions,
        query_kind=["question"] * 4 + ["answer"] * a,
        query_answer_index=np.concatenate([np.full(4, -1), np.arange(a)]),
        image_attn=image,
        question_attn=np.full((q, layers, heads, 4), 0.02, np.float32),
        shares=np.full((q, layers, heads, 3), 1 / 3, np.float32),
        layer_mean_attn=None,
        extra={"end_token_ids": [1]},
    )
    rec.validate()
    return rec


def test_answer_tokens_are_found_in_the_answer_text_and_end_tokens_get_empty_spans():
    answer = "Based on the image, there is no pneumothorax."
    spans = answer_token_spans(answer, SENTENCE)
    assert [answer[s:e] for s, e in spans[:8]] == ["Based", " on", " the", " image", ",", " there", " is", " no"]
    assert spans[-1][0] == spans[-1][1] == len(answer)


def test_the_decision_token_of_a_sentence_is_the_word_carrying_the_verdict():
    rec = record_answering(SENTENCE)
    assert decision_index(rec) == 7  # " no"
    (row,) = select_rows(rec, "decision")
    assert rec.query_answer_index[row] == 7
    # produced by the position of the token before it: answer token 6 " is"
    assert rec.query_positions[row] == rec.prompt_length - 1 + 7
    assert rec.tokens[rec.query_positions[row]] == " is"


def test_the_decision_view_reads_that_row_and_says_so():
    rec = record_answering(SENTENCE)
    view = compute_view(rec, MapSpec(rows="decision"))
    assert np.unravel_index(int(np.argmax(view.grid)), view.grid.shape) == (0, 7)
    assert "answer token 7 ' no' (decision)" in view.description
    first = compute_view(rec, MapSpec(rows="first_answer"))
    assert np.unravel_index(int(np.argmax(first.grid)), first.grid.shape) == (0, 0)


def test_a_one_word_answer_decides_on_its_first_token():
    rec = record_answering(["No", END])
    assert decision_index(rec) == 0
    assert list(select_rows(rec, "decision")) == list(select_rows(rec, "first_answer"))


def test_an_answer_without_a_cue_falls_back_to_the_first_content_token():
    rec = record_answering(["This", " is", " a", " frontal", " view", ".", END])
    assert decision_index(rec) == 0


def test_the_sample_analysis_carries_the_reason_and_the_decision_token():
    rec = record_answering(SENTENCE)
    analysis = analyse_record(rec)
    assert DEFAULT_SPEC.rows == "decision"
    assert analysis.answer_label == "no"
    assert analysis.answer_reason == "negated finding 'pneumothorax'"
    assert (analysis.decision_index, analysis.decision_token) == (7, " no")
    assert np.unravel_index(int(np.argmax(analysis.grid)), analysis.grid.shape) == (0, 7)


def test_the_hedge_setting_decides_the_label_and_leaves_the_decision_token_alone():
    tokens = ["There", " is", " a", " patch", "y", " opacity", ",", " suggest", "ive", " of", " pneum", "onia", ".",
              END]
    rec = record_answering(tokens, question="Is there evidence of pneumonia?")
    strict, lean = analyse_record(rec), analyse_record(rec, hedged_answers="lean")
    assert (strict.answer_label, strict.answer_reason, strict.answer_hedged) == (
        "uncertain", "hedge 'suggestive of'", True)
    assert (lean.answer_label, lean.answer_reason, lean.answer_hedged) == ("yes", "hedge 'suggestive of'", True)
    assert strict.decision_token == lean.decision_token == " suggest"
    assert analyse_record(record_answering(SENTENCE)).answer_hedged is False


def test_a_leading_verdict_word_is_the_decision_token():
    tokens = ["Yes", ",", " there", " is", " a", " small", " one", ".", END]
    rec = record_answering(tokens, question="Is there a pleural effusion?")
    assert decision_index(rec) == 0


def test_the_first_content_token_skips_end_tokens():
    assert record_answering(["No", END]).first_content_index == 0
    assert record_answering([END, "No", END]).first_content_index == 1
    assert record_answering([END, END]).first_content_index == 0  # all end tokens: the first one


def test_the_decision_found_when_a_row_is_answered_is_carried_by_the_record_and_not_read_again(monkeypatch):
    import medgemma_tui.analysis.answers as answers
    from medgemma_tui.analysis.views import DECISION_INDEX, opening_row
    from medgemma_tui.pipeline.rows import mark_decision_target

    record = mark_decision_target(record_answering(SENTENCE))
    assert record.extra[DECISION_INDEX] == 7 and record.extra["target_index"] == 7  # "no", the verdict

    def no_second_reading(*args, **kwargs):
        raise AssertionError("the answer was read again")

    monkeypatch.setattr(answers, "_read", no_second_reading)
    assert decision_index(record) == 7
    assert record.query_answer_index[select_rows(record, "decision")[0]] == 7
    assert record.query_answer_index[opening_row(record)] == 7


def test_a_row_analysed_again_keeps_the_decision_its_record_carries_and_its_map_is_of_that_row():
    from medgemma_tui.analysis.views import DECISION_INDEX

    record = record_answering(SENTENCE)
    record.extra[DECISION_INDEX] = 3  # as a tree written by another reader found it
    analysis = analyse_record(record, ground_truth="no")
    assert (analysis.answer_label, analysis.decision_index, analysis.decision_token) == ("no", 3, " image")
    assert np.unravel_index(int(np.argmax(analysis.grid)), analysis.grid.shape) == (0, 3)
    fresh = analyse_record(record_answering(SENTENCE), ground_truth="no")  # nothing carried: read here
    assert fresh.decision_index == 7 and fresh.record.extra[DECISION_INDEX] == 7


def test_the_analysis_scores_the_answer_less_its_end_token_and_measures_the_box_once():
    record = record_answering(SENTENCE)
    record.answer_logprobs = -np.arange(1, len(SENTENCE) + 1, dtype=np.float32) / 8  # the end token's is -1.5
    record.image_size = (320, 320)
    analysis = analyse_record(record, boxes=[(0, 0, 160, 80)])
    assert analysis.answer_tokens == 11
    assert analysis.answer_logprob == -sum(range(1, 12)) / 8  # -8.25: the end token's -1.5 left out
    assert analysis.box_area_fraction == 0.125  # 160 x 80 of 320 x 320
    assert abs(analysis.distribution.sum() - 1) < 1e-12 and analysis.distribution.dtype == np.float64
    assert np.isnan(analyse_record(record_answering(SENTENCE)).box_area_fraction)  # no box: no fraction


def test_the_analysis_keeps_the_masks_coverage_of_the_grid_that_its_metrics_used():
    from medgemma_tui.analysis.masks import AnatomyMasks

    body = np.ones((64, 64), bool)
    right = np.zeros((64, 64), bool)
    right[:, :16] = True  # the film's left quarter: grid columns 0-3
    left = np.zeros((64, 64), bool)
    left[:32, 48:] = True  # the right quarter, top half
    analysis = analyse_record(record_answering(SENTENCE), masks=AnatomyMasks(body, right, left))
    lungs = analysis.anatomy["lungs"]
    assert lungs.shape == (16, 16) and lungs.sum() == 16 * 4 + 8 * 4
    assert lungs[:, :4].all() and lungs[:8, 12:].all() and not lungs[8:, 12:].any()
    assert abs(analysis.metrics["inside_lungs_ratio"] - float((analysis.distribution * lungs).sum())) < 1e-6


def test_a_row_through_the_pipeline_reads_its_answer_once_and_its_target_is_the_verdict(monkeypatch):
    from pathlib import Path

    from PIL import Image

    import medgemma_tui.analysis.answers as answers
    from medgemma_tui.analysis.views import DECISION_INDEX
    from medgemma_tui.data.images import LoadedImage
    from medgemma_tui.data.schema import Sample
    from medgemma_tui.pipeline.rows import RowSettings, analyse_row

    reads = []
    read = answers._read
    monkeypatch.setattr(answers, "_read", lambda *args: reads.append(args) or read(*args))
    pixels = np.zeros((64, 64), np.uint8)
    film = LoadedImage(pixels, Image.fromarray(pixels).convert("RGB"), (64, 64), Path("film.png"), "png")
    sample = Sample("k0", 0, "s0", "d0", "film.png", Path("film.png"), "Is there a pneumothorax?", "no",
                    "Is there a pneumothorax?", "", 0, "original")
    record = record_answering(SENTENCE)
    result = analyse_row(sample, film, record, RowSettings())
    assert len(reads) == 1
    assert record.extra["target_index"] == record.extra[DECISION_INDEX] == result.analysis.decision_index == 7
    assert (result.analysis.answer_label, result.analysis.correct) == ("no", True)
