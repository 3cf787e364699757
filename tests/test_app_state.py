"""The inspector's headless core: view-state steps, the status line, the half-block picture, the redraw measure.

Records here are built by hand with MedGemma's shape (34 layers, 8 query heads in 4 GQA groups, a
16x16 grid), so every expected value is known without running a model.
"""

from __future__ import annotations

import numpy as np
import pytest

from medgemma_tui.app import state as st
from medgemma_tui.app.picture import HALF, Paint, half_block_strips, picture_strips, xterm256
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.model.info import ModelInfo

LAYERS, HEADS, KV, N = 34, 8, 4, 256


def medgemma_shaped_record(answer_tokens=("yes", "<end_of_turn>"), image_first: bool = False) -> AttentionRecord:
    """Prompt: <bos> Is there an effusion ? <image x256> (MedGemma's order; ``image_first``: the image
    before the question); the answer 'yes' then an end token."""
    words = ["Is", " there", " an", " effusion", "?"]
    images = ["<image_soft_token>"] * N
    prompt = ["<bos>", *images, *words] if image_first else ["<bos>", *words, *images]
    question_positions = np.arange(1 + N, 6 + N) if image_first else np.arange(1, 6)
    image_span = (1, 1 + N) if image_first else (6, 6 + N)
    P = len(prompt)
    A = len(answer_tokens)
    tokens = prompt + list(answer_tokens[:-1])
    query_positions = np.concatenate([question_positions, np.arange(P - 1, P - 1 + A)])
    q = len(query_positions)
    rng = np.random.default_rng(0)
    image = rng.random((q, LAYERS, HEADS, N)).astype(np.float32)
    image /= image.sum(-1, keepdims=True) * 2  # half of every row on the image
    shares = np.zeros((q, LAYERS, HEADS, 3), np.float32)
    shares[..., 0], shares[..., 1], shares[..., 2] = 0.4, 0.5, 0.1
    model = ModelInfo("hand-made", LAYERS, HEADS, KV, (16, 16), ["sliding_attention"] * LAYERS)
    return AttentionRecord(
        question="Is there an effusion?",
        answer="yes",
        model=model,
        input_ids=np.arange(len(tokens)),
        tokens=tokens,
        prompt_length=P,
        answer_ids=np.array([*range(10, 10 + A - 1), 1]),  # the last one the end token
        answer_tokens=list(answer_tokens),
        answer_logprobs=np.zeros(A, np.float32),
        image_token_span=image_span,
        question_positions=question_positions,
        question_offsets=[(0, 2), (2, 8), (8, 11), (11, 20), (20, 21)],
        query_positions=query_positions,
        query_kind=["question"] * 5 + ["answer"] * A,
        query_answer_index=np.concatenate([np.full(5, -1), np.arange(A)]),
        image_attn=image,
        question_attn=np.full((q, LAYERS, HEADS, 5), 0.02, np.float32),
        shares=shares,
        layer_mean_attn=None,
        xray=np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1)),
        extra={"end_token_ids": [1]},
    )


@pytest.fixture(scope="module")
def record() -> AttentionRecord:
    rec = medgemma_shaped_record()
    rec.validate()
    return rec


def test_status_line_reads_layer_head_token_view(record):
    state = st.show_record(st.ViewState(view="gated"), record).with_(layer=12)
    assert st.status_line(state, record) == "layer 12/34 · head mean · token 'yes' · view gated"


def test_status_line_says_all_layers_before_a_layer_is_chosen(record):
    state = st.show_record(st.ViewState(), record)
    assert st.status_line(state, record).startswith("layer all/34 · head mean · token 'yes'")


def test_layer_keys_walk_all_then_every_layer_and_back_to_all(record):
    state = st.show_record(st.ViewState(), record)
    seen = []
    for _ in range(LAYERS + 1):
        state = st.step_layer(state, record, 1)
        seen.append(state.layer)
    assert seen == [*range(LAYERS), None]
    assert st.step_layer(st.ViewState(), record, -1).layer == LAYERS - 1
    assert st.all_layers(state.with_(layer=7)).layer is None


def test_head_keys_enter_single_heads_from_the_mean_and_wrap(record):
    state = st.show_record(st.ViewState(), record)
    state = st.step_head(state, record, 1)
    assert (state.head_mode, state.head) == ("head", 0)
    for _ in range(HEADS):
        state = st.step_head(state, record, 1)
    assert state.head == 0
    assert st.step_head(st.ViewState(), record, -1).head == HEADS - 1


def test_head_mode_cycles_mean_group_head_keeping_the_group(record):
    state = st.cycle_head_mode(st.ViewState(), record)
    assert (state.head_mode, state.head) == ("group", 0)
    state = st.step_head(state, record, 1)  # group 1: heads 2-3
    assert st.head_part(state, record) == "group 1/4 (heads 2-3)"
    state = st.cycle_head_mode(state, record)
    assert (state.head_mode, state.head) == ("head", 2)
    assert st.cycle_head_mode(state, record).head_mode == "mean"


def walk_words(state, record) -> list[str]:
    words = []
    for _ in range(len(st.token_rows(record))):
        state = st.step_row(state, record, 1)
        words.append(st.token_text(record, state.row))
    return words


def test_only_rows_at_or_after_the_image_start_can_see_the_image(record):
    from medgemma_tui.analysis.views import rows_seeing_image

    assert rows_seeing_image(record).tolist() == [5, 6]  # the two answer rows; the question precedes the image
    image_first = medgemma_shaped_record(image_first=True)
    assert rows_seeing_image(image_first).tolist() == list(range(7))


def test_token_keys_walk_only_the_rows_that_can_see_the_image_starting_at_the_first_answer(record):
    state = st.show_record(st.ViewState(), record)
    assert st.token_text(record, state.row) == "yes"
    assert int(record.query_positions[state.row]) == record.prompt_length - 1  # the row that produced 'yes'
    assert walk_words(state, record) == ["yes"]  # the question's tokens come before the image; no end token
    image_first = medgemma_shaped_record(image_first=True)
    state = st.show_record(st.ViewState(), image_first)
    assert walk_words(state, image_first) == ["Is", "there", "an", "effusion", "?", "yes"]
    assert st.token_part(st.step_row(state, image_first, 2), image_first) == "token 'there' (question)"


def test_a_sentence_answer_is_walked_and_shown_without_the_models_end_of_turn_token():
    from types import SimpleNamespace

    from medgemma_tui.app.widgets.tokens import tokens_text

    sentence = ("There", " is", " no", " effusion", ".", "<end_of_turn>")
    record = medgemma_shaped_record(answer_tokens=sentence)
    state = st.show_record(st.ViewState(), record)
    assert walk_words(state, record) == ["is", "no", "effusion", ".", "There"]
    frame = SimpleNamespace(record=record, analysis=SimpleNamespace(answer_label="no", correct=None,
                                                                      gating=SimpleNamespace(terms=())),
                            spec=SimpleNamespace(rows=state.row), state=state)
    shown = tokens_text(frame).plain
    assert "A There is no effusion.\n" in shown and "<end_of_turn>" not in shown


def test_a_question_token_before_the_image_is_refused_with_the_reason(record):
    state = st.show_record(st.ViewState(), record)
    with pytest.raises(ValueError, match="question tokens come before the image: they cannot attend to it"):
        st.choose_row(state, record, int(record.question_rows[1]))
    assert st.unseeing_reason(state.with_(row=int(record.question_rows[1])), record) == st.BLIND_ROW
    assert st.unseeing_reason(state, record) is None


def test_the_question_view_is_offered_only_where_question_tokens_can_see_the_image(record):
    from types import SimpleNamespace

    from medgemma_tui.app.frame import FrameMaker

    assert "question" not in st.available_views(record)
    assert "question" in st.available_views(medgemma_shaped_record(image_first=True))
    assert st.show_record(st.ViewState(view="question"), record).view == "answer"
    state = st.show_record(st.ViewState(), record).with_(view="question")
    with pytest.raises(ValueError, match="cannot attend to it"):  # no uniform map with metrics as if it meant something
        FrameMaker().frame(SimpleNamespace(record=record), state)


def test_views_cycle_over_what_the_record_can_show(record):
    views = st.available_views(record)
    assert "rollout" not in views  # no layer-mean matrices in this record
    assert "relative" not in views
    state = st.ViewState()
    for expected in (*views[1:], views[0]):
        state = st.cycle_view(state, record)
        assert state.view == expected


def test_map_spec_follows_the_state(record):
    state = st.show_record(st.ViewState(), record).with_(layer=5, head_mode="group", head=3)
    spec = st.map_spec(state, record)
    assert spec.layers == (5, 6) and spec.head_mode == "group" and spec.head == 3
    assert spec.rows == state.row


def test_cursor_stays_on_the_grid(record):
    state = st.move_cursor(st.ViewState(), record, -100, 100)
    assert state.cursor == (0, 15)


def test_xterm256_gives_exact_palette_colours_their_index():
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [95, 135, 175], [128, 128, 128], [255, 0, 0]]], np.uint8)
    assert xterm256(rgb).tolist() == [[16, 231, 16 + 36 * 1 + 6 * 2 + 3, 244, 196]]


def test_half_blocks_carry_the_upper_pixel_as_foreground_and_the_lower_as_background():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, :] = (255, 0, 0)
    rgb[1, :] = (0, 0, 255)
    (strip,) = half_block_strips(rgb, Paint(background=(1, 2, 3)), width=4, height=1)
    segments = list(strip)
    picture = [s for s in segments if HALF in s.text]
    assert len(picture) == 1 and picture[0].text == HALF * 2  # one run for two equal cells
    assert picture[0].style.color.triplet == (255, 0, 0)
    assert picture[0].style.bgcolor.triplet == (0, 0, 255)
    padding = [s for s in segments if HALF not in s.text]
    assert padding and all(s.style.bgcolor.triplet == (1, 2, 3) for s in padding)
    assert strip.cell_length == 4


def test_every_cell_of_the_picture_has_an_explicit_background(record):
    grid = np.full((16, 16), 1 / 256, np.float32)
    for colors in ("truecolor", "256"):
        strips = picture_strips(record.xray, grid, Paint(colors=colors), width=30, height=12)
        assert len(strips) == 12 and all(s.cell_length == 30 for s in strips)
        for strip in strips:
            assert all(seg.style is not None and seg.style.bgcolor is not None for seg in strip)


def test_measure_nav_redraw_times_each_key_from_memory(record):
    from medgemma_tui.app.bench import measure_nav_redraw

    times = measure_nav_redraw(record, n=24, width=60, height=30)
    assert len(times) == 24 and all(t > 0 for t in times)
    assert float(np.median(times)) < 100.0  # a sanity bound on a shared CPU; the bench reports the real figure


def test_a_box_on_a_non_square_film_keeps_its_fractions_on_the_square_picture():
    from medgemma_tui.app.picture import box_fractions, compose

    # a 400x300 film is stretched to the square input: x by 1/400, y by 1/300
    boxes = box_fractions([(100, 150, 200, 75)], (400, 300))
    assert boxes == ((0.25, 0.5, 0.75, 0.75),)
    assert box_fractions([(100, 150, 200, 75)], None) == ()
    red = (250, 10, 10)
    film = np.full((64, 64), 128, np.uint8)
    grid = np.full((16, 16), 1 / 256)
    paint = Paint(overlay="film", masks=True, box_colour=red)
    out = compose(film, grid, paint, 64, None, boxes)
    drawn = np.all(out == red, axis=-1)
    expected = np.zeros((64, 64), bool)
    expected[32, 16:48] = expected[47, 16:48] = True  # rows 0.5*64 .. 0.75*64-1
    expected[32:48, 16] = expected[32:48, 47] = True  # columns 0.25*64 .. 0.75*64-1
    assert np.array_equal(drawn, expected)
    hidden = compose(film, grid, Paint(overlay="film", masks=False, box_colour=red), 64, None, boxes)
    assert not np.all(hidden == red, axis=-1).any()  # toggled with the mask outlines (m)
