"""One opening row everywhere: the app, ``check`` and ``eval`` show a sentence's decision row.

MedGemma answers in sentences ("Based on the image, there is no clear evidence of ..."): the verdict is
rarely the first answer token, so a front end that opened on the first content token would show another
row's map than the one ``grids/``, ``check`` and the CSV read. A free-text answer of the demo is run
through all three and their maps compared; the first token's map is checked to differ, so the test
would catch a front end that opened there.
"""

from __future__ import annotations

import numpy as np
import pytest

from medgemma_tui.analysis.views import MapSpec, compute_view, content_answer_rows, opening_row
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.resources import demo_dataset_csv
from tests.support import ANSWER_TOKENS, run_sample


@pytest.fixture(scope="module")
def sentence(demo_model):
    """The first demo row whose verdict is past its first answer token, run through the pipeline."""
    for sample in list(load_dataset(demo_dataset_csv()))[:40]:
        result = run_sample(demo_model, sample, max_new_tokens=ANSWER_TOKENS)
        analysis = result.analysis
        if analysis.decision_index > 0 and len(analysis.record.answer.split()) >= 4:
            return result
    pytest.fail("no demo answer among the first 40 rows has its verdict past the first token")


def test_opening_row_is_the_decision_row_of_a_sentence(sentence):
    record, analysis = sentence.analysis.record, sentence.analysis
    row = opening_row(record)
    assert int(record.query_answer_index[row]) == analysis.decision_index > 0
    first = int(content_answer_rows(record)[0])
    assert row != first
    first_map = compute_view(record, MapSpec(view="answer", rows=first)).grid
    assert np.abs(first_map - analysis.grid).max() > 1e-3  # a front end opening on "first" would show this


def test_check_eval_and_the_app_open_on_the_same_map(sentence, demo_model, tmp_path):
    import asyncio

    from medgemma_tui.app.app import MedtuiApp
    from medgemma_tui.app.session import Session
    from medgemma_tui.config.schema import Config
    from medgemma_tui.pipeline.check import check_image
    from medgemma_tui.pipeline.rows import RowSettings
    from tests.support import demo_subset_csv, eval_config, run_tree

    sample, analysis = sentence.sample, sentence.analysis
    # check
    checked = check_image(lambda: demo_model, sample.image, sample.question,
                          RowSettings.from_config(Config().with_overrides({"decoding.max_new_tokens": ANSWER_TOKENS})))
    assert checked.result.analysis.record.answer == analysis.record.answer
    np.testing.assert_allclose(checked.result.analysis.grid, analysis.grid, atol=1e-6)
    # eval
    rows = [i for i, s in enumerate(load_dataset(demo_dataset_csv())) if s.key == sample.key]
    csv = demo_subset_csv(tmp_path, tuple(rows))
    run_tree(demo_model, csv, tmp_path / "out", eval_config(tmp_path, full=False, tokens=ANSWER_TOKENS))
    np.testing.assert_allclose(np.load(tmp_path / "out" / "grids" / f"{sample.key}_grid.npy"), analysis.grid, atol=1e-6)

    # the app: the frame it draws first for this row
    async def drive():
        session = Session.from_dataset(load_dataset(csv), model_source=None)
        session.finish(sample.key, analysis)
        app = MedtuiApp(session)
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(200):
                if app.current_key is not None and app.current_frame() is not None:
                    break
                await pilot.pause(0.05)
            frame = app.current_frame()
            status = str(app.screen.query_one("#status").render())
            return frame.grid, status

    grid, status = asyncio.run(drive())
    np.testing.assert_allclose(grid, analysis.grid, atol=1e-6)
    token = analysis.record.answer_tokens[analysis.decision_index].strip()
    assert f"token '{token}'" in status
