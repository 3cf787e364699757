"""The one figure style: numbers to their interval's precision, journal widths, readable sizes, letters."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from medgemma_tui.export import dataset_figures
from medgemma_tui.export import figure_style as fs
from tests.test_dataset_figures import SUMMARY


# Cole (2015): the interval's width to its first significant digit, two where that digit is 1
@pytest.mark.parametrize("value, low, high, text", [
    (16.037, 12.090, 21.613, "16.0 [12.1, 21.6]"),  # width 9.5 rounds to 1e1: a leading 1, one more digit
    (0.964, 0.916, 1.0, "0.96 [0.92, 1.00]"),
    (8.0, 6.0, 10.0, "8 [6, 10]"),
    (0.5, 0.375, 0.625, "0.5 [0.4, 0.6]"),
    (0.05, 0.0, 0.1, "0.05 [0.00, 0.10]"),
    (0.02, -0.01, 0.05, "0.02 [-0.01, 0.05]"),
    (-0.003, -0.03, 0.04, "0.00 [-0.03, 0.04]"),  # rounds to zero: no sign
    (0.37, -0.004, 0.8, "0.4 [0.0, 0.8]"),
    (0.1234, 0.1201, 0.1262, "0.123 [0.120, 0.126]"),
    (0.5, None, None, "0.50"),
    (math.nan, None, None, "n/a"),
])
def test_estimates_carry_the_digits_their_interval_justifies(value, low, high, text):
    assert fs.estimate_text(value, low, high) == text


def all_texts(figure):
    return [t for ax in figure.axes for t in ax.texts + [ax.title, ax._left_title, ax.xaxis.label, ax.yaxis.label]
            + ax.get_xticklabels() + ax.get_yticklabels()] + list(figure.texts) + [figure._suptitle]


@pytest.mark.parametrize("make", [
    lambda: dataset_figures.dataset_intervals_figure(SUMMARY),
    lambda: dataset_figures.accuracy_by_strategy_figure(pd.DataFrame({"strategy": ["original", "voice_change"],
                                                              "scored": [6, 4], "accuracy": [0.5, 0.75]})),
])
def test_dataset_figures_fit_a_double_column_with_text_readable_there(make):
    figure = make()
    figure.canvas.draw()
    assert figure.get_figwidth() <= fs.DOUBLE_COLUMN_IN and figure.get_figheight() <= fs.MAX_HEIGHT_IN
    sizes = {t.get_fontsize() for t in all_texts(figure) if t is not None and t.get_text()}
    assert sizes and min(sizes) >= fs.SMALL_PT and max(sizes) <= fs.LETTER_PT


def test_each_panel_of_a_multi_panel_figure_has_its_letter():
    figure = dataset_figures.dataset_intervals_figure(SUMMARY)
    letters = [t.get_text() for ax in figure.axes for t in ax.texts if (t.get_gid() or "").startswith("panel-")]
    assert letters == ["a", "b", "c"]


def test_the_style_changes_no_global_setting():
    import matplotlib

    before = dict(matplotlib.rcParams)
    dataset_figures.dataset_intervals_figure(SUMMARY)
    assert dict(matplotlib.rcParams) == before
