"""One vision pass per film: a row answered with the film's reused image features has the same record as
one answered from scratch, and a batch computes each film's features once."""

from __future__ import annotations

import numpy as np
import pytest

from medgemma_tui.data.images import load_image
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.engine.extract import extract_record
from medgemma_tui.engine.vision import VisionCache
from medgemma_tui.pipeline.batch import film_order, run_batch
from medgemma_tui.pipeline.rows import RowSettings
from medgemma_tui.resources import fixtures_dir
from tests.support import demo_subset_csv, needs_feature_reuse

QUESTIONS = ("Is there a nodule?", "Is there a pleural effusion in the left lung?", "Is the heart enlarged?")
ARRAYS = ("input_ids", "answer_ids", "answer_logprobs", "query_positions", "image_attn", "question_attn", "shares",
          "layer_mean_attn")


@needs_feature_reuse
def test_a_record_from_reused_features_equals_the_record_from_scratch(demo_model):
    film = load_image(fixtures_dir() / "phantoms" / "p0003.png")
    cache = VisionCache()
    for question in QUESTIONS:
        scratch = extract_record(demo_model, film.rgb, question, max_new_tokens=4)
        reused = extract_record(demo_model, film.rgb, question, max_new_tokens=4, vision=cache)
        assert reused.answer == scratch.answer
        for name in ARRAYS:
            np.testing.assert_allclose(getattr(reused, name), getattr(scratch, name), atol=1e-6, rtol=0,
                                       err_msg=f"{question}: {name}")
    assert (cache.misses, cache.hits) == (1, len(QUESTIONS) - 1)


def test_without_mm_encoder_outputs_a_batch_of_one_film_is_answered_from_its_pixels_alike(demo_model,
                                                                                       monkeypatch):
    from medgemma_tui.engine import vision
    from medgemma_tui.engine.extract import extract_records

    film = load_image(fixtures_dir() / "phantoms" / "p0003.png")
    reused = extract_records(demo_model, film.rgb, list(QUESTIONS[:2]), max_new_tokens=3)
    monkeypatch.setattr(vision, "takes_features", lambda model: False)  # a transformers whose Gemma 3 lacks it
    cache = VisionCache()
    pixels = extract_records(demo_model, film.rgb, list(QUESTIONS[:2]), max_new_tokens=3, vision=cache)
    assert cache.misses == cache.hits == 0  # no features handed over: each row's vision pass ran in the model
    for a, b in zip(reused, pixels, strict=True):
        assert a.answer == b.answer
        for name in ARRAYS:
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), atol=1e-5, rtol=0, err_msg=name)


@needs_feature_reuse
def test_another_film_is_a_new_vision_pass(demo_model):
    cache = VisionCache()
    for name in ("p0003.png", "p0004.png", "p0003.png"):
        extract_record(demo_model, load_image(fixtures_dir() / "phantoms" / name).rgb, QUESTIONS[0], max_new_tokens=2,
                       vision=cache)
    assert (cache.misses, cache.hits) == (3, 0)  # one film kept at a time: coming back is a new pass


def test_rows_are_scheduled_film_by_film_in_order_of_first_appearance():
    class Row:
        def __init__(self, key, image):
            self.key, self.image = key, image

    rows = [Row("a1", "a"), Row("b1", "b"), Row("a2", "a"), Row("c1", "c"), Row("b2", "b")]
    assert [r.key for r in film_order(rows)] == ["a1", "a2", "b1", "b2", "c1"]


@needs_feature_reuse
def test_a_batch_computes_each_films_features_and_masks_once(demo_model, tmp_path, monkeypatch):
    calls = []
    real = demo_model.model.get_image_features

    def counted(pixel_values, **kwargs):
        calls.append(1)
        return real(pixel_values, **kwargs)

    monkeypatch.setattr(demo_model.model, "get_image_features", counted)
    import medgemma_tui.analysis.record_analysis as sample_analysis

    masked = []
    real_masks = sample_analysis.anatomy_masks

    def counted_masks(pixels):
        masked.append(1)
        return real_masks(pixels)

    monkeypatch.setattr(sample_analysis, "anatomy_masks", counted_masks)
    samples = load_dataset(demo_subset_csv(tmp_path, tuple(range(10))), fixtures_dir()).samples
    films = {s.image for s in samples}
    assert len(films) < len(samples)  # several questions per film

    class Sink:
        done: list = []

        def finished(self, result):
            self.done.append(result)

        def failed(self, sample, error):
            pytest.fail(error)

    counts = run_batch(demo_model, film_order(samples), RowSettings(max_new_tokens=2), Sink())
    assert counts.done == len(samples) and len(calls) == len(films) and len(masked) == len(films)
