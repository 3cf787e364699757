"""The figure of one row: the decision token marked on a sentence answer of sub-word pieces, every outline
named in the legend in the colours of the app and ``medtui masks``, equal picture panels, a title that is
the question, and the same figure from the result and from the tree."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from medgemma_tui.colormaps import OUTLINE_COLOURS, outline_rgb
from medgemma_tui.export import sample_sheet
from tests.test_figures import one_hot, phantom

# Gemma 3's pieces of a MedGemma-style sentence: "effusion" in two pieces, the verdict " no" the 8th token
SENTENCE = "Based on the image, there is no clear evidence of a pleural effusion."
PIECES = ("Based", " on", " the", " image", ",", " there", " is", " no", " clear", " evidence", " of", " a",
          " pleural", " eff", "usion", ".", "<end_of_turn>")


def content(masks=("body", "lung_right", "lung_left", "mediastinum"), boxes=None, decision=7, **extra):
    p = phantom(3, "nodule")
    film = p.image
    parts = dict(p.masks)
    if "mediastinum" not in parts:  # the phantom has none: a band between the lungs
        band = np.zeros(film.shape[:2], dtype=bool)
        band[40:90, 55:73] = True
        parts["mediastinum"] = band
    grid = np.random.default_rng(0).random((16, 16)) + one_hot(4, 3) * 5
    fields = dict(question="Is there evidence of a pleural effusion in the right lower zone?", answer=SENTENCE,
                  answer_label="no", ground_truth="yes", correct=False, pixels=sample_sheet.reduced(film),
                  film_size=(film.shape[1], film.shape[0]), grid=grid / grid.sum(),
                  masks={k: sample_sheet.mask_at(parts[k], film.shape[:2]) for k in masks},
                  boxes=tuple(boxes if boxes is not None else (tuple(p.box),)), tokens=PIECES,
                  decision_index=decision, metrics={"pointing_hit": 1.0, "mass_in_box_lift": 3.25,
                                                    "inside_lungs_ratio": 0.614, "entropy_norm": float("nan")})
    fields.update(extra)
    return sample_sheet.RowFigure(**fields)


def texts(figure) -> list:
    return [t for ax in figure.axes for t in ax.texts] + list(figure.texts)


def test_the_decision_token_is_marked_once_on_a_sentence_of_sub_word_pieces():
    figure = sample_sheet.row_figure(content())
    marked = [t for t in texts(figure) if t.get_gid() == "decision-token"]
    assert [t.get_text() for t in marked] == ["no"]
    assert marked[0].get_fontweight() == "bold"
    strip = [t.get_text() for t in figure.axes[3].texts if t.get_gid() in (None, "decision-token")]
    # every piece drawn in order, the end token left out, "eff" + "usion" as the two pieces they are
    assert strip == ["Based", "on", "the", "image", ",", "there", "is", "no", "clear", "evidence", "of", "a",
                     "pleural", "eff", "usion", "."]


def test_a_decision_token_late_in_a_long_answer_is_still_marked():
    long = PIECES[:-1] * 6 + (" no",)
    figure = sample_sheet.row_figure(content(tokens=long, decision=len(long) - 1))
    assert [t.get_text() for t in texts(figure) if t.get_gid() == "decision-token"] == ["no"]


def test_the_legend_names_exactly_the_outlines_drawn():
    figure = sample_sheet.row_figure(content())
    legend = figure.axes[2].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["body", "right lung", "left lung", "mediastinum",
                                                          "ground-truth box"]
    colours = [line.get_color() for line in legend.get_lines()]
    assert colours == [OUTLINE_COLOURS[p] for p in ("body", "lung_right", "lung_left", "mediastinum", "box")]
    without = sample_sheet.row_figure(content(masks=("body", "lung_right", "lung_left"), boxes=()))
    assert [t.get_text() for t in without.axes[2].get_legend().get_texts()] == ["body", "right lung", "left lung"]


def test_outlines_are_drawn_in_the_colours_of_the_app_and_the_masks_sheet():
    from cli.masks import OUTLINES
    from medgemma_tui.app.picture import MASK_COLOURS

    square = np.zeros((40, 40), dtype=bool)
    square[10:30, 10:30] = True
    for part, colour in OUTLINES:
        layer, drawn = sample_sheet.outline_layer({part: square}, square.shape, 1)
        assert drawn == [part]
        edge = tuple(int(v) for v in layer[10, 20, :3])
        assert edge == outline_rgb(part) == colour == MASK_COLOURS[part]
        assert layer[20, 20, 3] == 0 and layer[0, 0, 3] == 0  # inside and outside stay clear


def test_the_three_picture_panels_are_the_same_size_and_lettered():
    figure = sample_sheet.row_figure(content())
    figure.canvas.draw()
    sizes = {(round(ax.get_position().width, 4), round(ax.get_position().height, 4)) for ax in figure.axes[:3]}
    assert len(sizes) == 1
    letters = sorted(t.get_text() for t in texts(figure) if (t.get_gid() or "").startswith("panel-"))
    assert letters == ["a", "b", "c", "d", "e"]


def test_the_title_is_the_question_and_the_verdict_not_the_key():
    figure = sample_sheet.row_figure(content())
    title = next(t for t in figure.texts if t.get_gid() == "title")
    assert title.get_text().startswith("Is there evidence of a pleural effusion")
    words = " ".join(t.get_text() for t in figure.texts)
    assert 'Read as "no"; ground truth "yes": wrong' in words
    assert SENTENCE in words.replace("\n", " ")


@pytest.mark.parametrize("truth, correct, line", [
    ("yes", True, 'Read as "no"; ground truth "yes": correct'),
    ("yes", False, 'Read as "no"; ground truth "yes": wrong'),
    ("unlabelled", None, 'Read as "no"; not scored: ground truth "unlabelled"'),  # a source without a label
    (None, None, 'Read as "no"'),
])
def test_the_verdict_says_correct_wrong_or_why_a_row_was_not_scored(truth, correct, line):
    from dataclasses import replace

    assert sample_sheet.verdict_line(replace(content(), ground_truth=truth, correct=correct)) == line


def test_key_metrics_are_a_short_table_with_undefined_ones_left_out():
    rows = sample_sheet.metric_rows({"pointing_hit": 0.0, "mass_in_box_lift": 3.25, "entropy_norm": float("nan")})
    assert rows == [("pointing game (top cell in box)", "no"), ("mass in box / chance", "3.25")]


def stand_in_result():
    from medgemma_tui.analysis.masks import AnatomyMasks

    p = phantom(3, "nodule")
    masks = AnatomyMasks(body=p.masks["body"], lung_right=p.masks["lung_right"], lung_left=p.masks["lung_left"])
    grid = one_hot(4, 3) + 0.01
    record = SimpleNamespace(question="Is there a nodule in the $right$ lung?", answer=SENTENCE, answer_tokens=PIECES)
    analysis = SimpleNamespace(record=record, grid=grid, view=SimpleNamespace(description="head mean"),
                               metrics={"inside_lungs_ratio": 0.5}, masks=masks, answer_label="no", correct=False,
                               decision_index=7)
    return SimpleNamespace(film=SimpleNamespace(pixels=p.image), analysis=analysis,
                           sample=SimpleNamespace(bbox=(tuple(p.box),), answer="yes", key="s1_d_v0", finding="nodule"))


def test_save_full_figure_writes_every_format_at_the_dpi_asked(tmp_path):
    from medgemma_tui.export.sample_sheet import SHEET_INCHES

    first = sample_sheet.save_full_figure(tmp_path / "s1_d_v0_full.png", stand_in_result(), formats=("png", "pdf"),
                                          dpi=100)
    assert first == tmp_path / "s1_d_v0_full.png"
    with Image.open(first) as image:
        assert image.size == (round(SHEET_INCHES[0] * 100), round(SHEET_INCHES[1] * 100))
    pdf = (tmp_path / "s1_d_v0_full.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf  # text kept as TrueType text, as journals ask


def test_a_failing_vector_format_leaves_no_png_either(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError):
        sample_sheet.save_full_figure(tmp_path / "k_full.png", stand_in_result(), formats=("png", "svg"))
    assert not list(tmp_path.iterdir())
