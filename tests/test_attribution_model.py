"""The attribution methods on the demo model: the probe reads the record's own probability, every
method is a view that sums to 1, and the head gallery sorts the heads that localise first."""

from __future__ import annotations

import copy
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from medgemma_tui.analysis.views import MapSpec, available_views, compute_view
from medgemma_tui.config import Config
from medgemma_tui.engine.attribution.integrated_gradients import ig_map
from medgemma_tui.engine.attribution.methods import ATTRIBUTION_METHODS, add_method_maps
from medgemma_tui.engine.attribution.probe import pixel_probe, token_probe
from medgemma_tui.engine.gradients import first_content_row

FAST = replace(Config().methods, occlusion_window=8, rise_masks=8, ig_steps=2, batch_size=32)


def test_the_probe_with_every_token_kept_gives_the_records_answer_probability(demo_model, film, demo_record):
    probe = token_probe(demo_model, film, demo_record)
    k = int(demo_record.query_answer_index[first_content_row(demo_record)])
    kept = probe.probabilities(np.ones((2, probe.cells)))
    assert kept == pytest.approx([np.exp(demo_record.answer_logprobs[k])] * 2, rel=1e-4)
    removed = probe.probabilities(np.zeros((1, probe.cells)))
    assert 0 <= removed[0] <= 1 and removed[0] != pytest.approx(kept[0], rel=1e-6)


def test_the_pixel_probe_with_every_cell_kept_gives_the_records_answer_probability(demo_model, film, demo_record):
    probe = pixel_probe(demo_model, film, demo_record, batch_size=2)
    k = int(demo_record.query_answer_index[first_content_row(demo_record)])
    p = probe.probabilities(np.stack([np.ones(probe.cells), np.zeros(probe.cells)]))
    assert p[0] == pytest.approx(np.exp(demo_record.answer_logprobs[k]), rel=1e-4)
    assert p[1] != pytest.approx(p[0], rel=1e-6)  # the film of its mean pixel is another film


def test_integrated_gradients_on_the_demo_model_close_the_completeness_gap_as_steps_grow(demo_model):
    # on this film and question ("There is cardiomegaly.", the decision token "cardi") the path from the
    # blurred film jumps (p 0.01 -> 0.99): 3 midpoints are off by 0.88, and tripling the steps twice
    # closes the gap to within the stated tolerance
    from PIL import Image

    from medgemma_tui.engine.extract import extract_record
    from medgemma_tui.pipeline.rows import mark_decision_target
    from medgemma_tui.resources import fixtures_dir
    from tests.support import ANSWER_TOKENS

    film = Image.open(fixtures_dir() / "phantoms" / "p0006.png").convert("RGB")
    record = mark_decision_target(extract_record(demo_model, film, "Is there cardiomegaly?",
                                                 max_new_tokens=ANSWER_TOKENS))
    assert record.extra["target_index"] > 0  # the verdict of a sentence, not its first word
    tokens, check = ig_map(demo_model, film, record, steps=3, baseline="blur", batch_size=27, tolerance=0.1,
                           max_steps=27)
    gaps = [abs(gap) for _, gap in check["history"]]
    difference = check["f_x"] - check["f_baseline"]
    assert difference > 0.9 and gaps[0] > 0.5 * difference
    assert gaps == sorted(gaps, reverse=True) and len(gaps) == 3
    assert check["converged"] and abs(check["gap"]) <= 0.1 * difference
    assert float(tokens.sum()) == pytest.approx(difference, abs=0.1 * difference)


def test_every_method_is_a_view_of_the_record_that_sums_to_one(demo_model, film, demo_record):
    record = copy.deepcopy(demo_record)
    notes = add_method_maps(demo_model, film, record, ATTRIBUTION_METHODS, FAST)
    assert set(notes) == set(ATTRIBUTION_METHODS) and all(n["seconds"] >= 0 for n in notes.values())
    assert set(ATTRIBUTION_METHODS) <= set(available_views(record))
    assert "top_heads" not in available_views(record)  # no heads chosen for this record
    for name in ATTRIBUTION_METHODS:
        view = compute_view(record, MapSpec(view=name))
        assert view.grid.shape == tuple(record.grid) and view.grid.sum() == pytest.approx(1.0, abs=1e-5)
        assert (view.grid >= 0).all()
    assert set(record.extra["ig_completeness"]) >= {"sum", "f_x", "f_baseline", "gap"}


def test_the_top_heads_view_averages_the_chosen_heads(demo_record):
    record = copy.deepcopy(demo_record)
    weights = np.zeros((record.num_layers, record.num_heads), dtype=np.float32)
    weights[1, 0] = weights[0, 3] = 1
    record.maps["top_heads"] = weights
    view = compute_view(record, MapSpec(view="top_heads", rows="first_answer"))
    row = first_content_row(record)
    expected = record.image_attn[row, 1, 0] + record.image_attn[row, 0, 3]
    np.testing.assert_allclose(view.grid.ravel(), expected / expected.sum(), rtol=1e-5)
    assert "L0H3" in view.description and "L1H0" in view.description


def test_the_gallery_sorts_heads_that_point_into_the_box_first(demo_record):
    from medgemma_tui.app.screens.gallery import SORTS, head_tiles

    record = demo_record
    row = first_content_row(record)
    target = np.argmax(record.image_attn[row, 1, 5])  # the box: head (1, 5)'s own top cell
    box = np.zeros(record.grid)
    box.flat[target] = 1
    frame = SimpleNamespace(record=record, spec=MapSpec(rows=int(row)),
                            analysis=SimpleNamespace(box_grid=box, pointing_cells=box > 0))
    sort = [name for name, _, _ in SORTS].index("localises")
    tiles = head_tiles(frame, sort)
    first = tiles[0].key
    assert int(np.argmax(record.image_attn[row][first])) == target
    assert len(tiles) == record.num_layers * record.num_heads


def test_the_methods_screen_has_a_tile_per_view_with_this_rows_pointing(demo_record):
    from medgemma_tui.app.screens.methods import method_tiles

    record = demo_record
    box = np.zeros(record.grid)
    box[:4, :4] = 1
    frame = SimpleNamespace(record=record, spec=MapSpec(rows="first_answer"),
                            analysis=SimpleNamespace(box_grid=box, pointing_cells=box > 0))
    from medgemma_tui.app.state import available_views as app_views

    tiles = method_tiles(frame)
    assert [t.key for t in tiles] == list(app_views(record))
    assert all(t.note.split()[0] in ("hit", "miss") for t in tiles if t.grid is not None)
