"""Robustness and faithfulness studies on the demo bundle, and their summaries across samples."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pytest
from PIL import Image

from medgemma_tui.analysis.grid import regrid
from medgemma_tui.analysis.perturbations import Perturbation, from_config
from medgemma_tui.config import Config
from medgemma_tui.export.study_tables import summarise_studies
from medgemma_tui.pipeline.studies import STUDY_KEYS
from medgemma_tui.pipeline.studies.faithfulness import faithfulness_eval_study, faithfulness_study
from medgemma_tui.pipeline.studies.robustness import robustness_eval_study, robustness_study

CONFIG = Config().with_overrides({"decoding.max_new_tokens": 3, "faithfulness.steps": 2})


@pytest.fixture(scope="module")
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the demo model is tiny: one thread beats two on busy shared cores
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def seeing_model(demo_model, one_thread):
    """The demo model with a random image projector, so its answers depend on the image.

    The embedded bundle's projector may be all zeros (transformers initialises it so), which makes
    every image token the same vector and the image invisible to the decoder.
    """
    import torch

    from medgemma_tui.model.loading import LoadedModel

    model = copy.deepcopy(demo_model.model)
    weight = model.model.multi_modal_projector.mm_input_projection_weight
    with torch.no_grad():
        weight.copy_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)) * 0.1)
    return LoadedModel(model=model, processor=demo_model.processor, info=demo_model.info, source="demo+projector")


@pytest.fixture(scope="module")
def wide_result(seeing_model, tmp_path_factory):
    """One sample of the demo CSV on a wide (400 x 300) film, so pad and crop change the frame."""
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.resources import demo_dataset_csv
    from tests.support import run_sample

    sample = next(s for s in load_dataset(demo_dataset_csv()) if s.bbox)
    film = np.asarray(Image.open(sample.image).convert("L"))
    wide = np.zeros((300, 400), dtype=np.uint8)
    wide[:, 40:360] = np.asarray(Image.fromarray(film).resize((320, 300)))
    path = tmp_path_factory.mktemp("wide") / "wide.png"
    Image.fromarray(wide).save(path)
    x, y, w, h = sample.bbox[0]
    sample = dataclasses.replace(sample, image=path, bbox=((x * 320 / film.shape[1] + 40, y * 300 / film.shape[0],
                                                            w, h),))
    return run_sample(seeing_model, sample, max_new_tokens=CONFIG.decoding.max_new_tokens)


@pytest.fixture(scope="module")
def faithfulness(seeing_model, wide_result):
    return faithfulness_study(seeing_model, wide_result.film, wide_result.record, wide_result.analysis.grid, CONFIG)


def test_deletion_of_every_image_token_moves_the_logprob(faithfulness, wide_result):
    f = faithfulness
    assert f["fractions"] == [0.0, 0.5, 1.0] and f["cells"] == [0, 128, 256]
    # the whole image reproduces the record's own log-probability of its first answer token
    assert f["full_image_logprob"] == pytest.approx(wide_result.record.answer_logprobs[0], abs=1e-4)
    assert f["target"]["position"] == wide_result.record.prompt_length - 1
    assert abs(f["neutral_image_logprob"] - f["full_image_logprob"]) > 1e-3
    for name in ("deletion", "insertion"):
        curve = f[name]
        assert len(curve["map"]) == len(curve["random"]) == 3
        assert f[f"{name}_auc"] == pytest.approx((curve["map"][0] + 2 * curve["map"][1] + curve["map"][2]) / 4)
    # curves share their end points: the whole image and the all-neutral image
    assert f["deletion"]["map"][0] == f["insertion"]["map"][-1] == f["deletion"]["random"][0]
    assert f["deletion"]["map"][-1] == f["insertion"]["map"][0] == f["insertion"]["random"][0]
    assert f["map_order"][0] == int(np.argmax(wide_result.analysis.grid))
    assert f["sequences"] == 6 and f["forward_passes"] == 1  # 2 shared ends + 1 middle point per curve
    assert f["deletion_gain"] == pytest.approx(f["deletion_auc_random"] - f["deletion_auc"])
    json.dumps(f, allow_nan=False)


def test_random_baseline_is_reproducible_under_its_seed(seeing_model, wide_result, faithfulness):
    args = (seeing_model, wide_result.film, wide_result.record, wide_result.analysis.grid)
    again = faithfulness_study(*args, CONFIG, batch_size=2)
    assert again["random_orders"] == faithfulness["random_orders"]
    assert again["deletion"]["random"] == pytest.approx(faithfulness["deletion"]["random"], abs=1e-5)
    assert again["insertion"]["random"] == pytest.approx(faithfulness["insertion"]["random"], abs=1e-5)
    assert again["forward_passes"] == 3  # 6 sequences, 2 at a time, the same numbers
    other = faithfulness_study(*args, CONFIG.with_overrides({"faithfulness.seed": 1}))
    assert other["random_orders"] != faithfulness["random_orders"]
    assert other["deletion"]["map"] == pytest.approx(faithfulness["deletion"]["map"], abs=1e-6)


def test_faithfulness_baselines_and_refusals(seeing_model, wide_result):
    args = (seeing_model, wide_result.film, wide_result.record, wide_result.analysis.grid)
    zero = faithfulness_study(*args, CONFIG.with_overrides({"faithfulness.baseline": "zero"}), random_orders=2)
    assert zero["baseline"] == "zero" and len(zero["deletion"]["random_each"]) == 2
    assert zero["sequences"] == 2 + 2 * 1 * 3
    with pytest.raises(ValueError, match="cells"):
        faithfulness_study(seeing_model, wide_result.film, wide_result.record, np.ones((8, 8)), CONFIG)
    other_film = Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).convert("RGB")
    other = dataclasses.replace(wide_result.record, question="Is the heart enlarged?")
    with pytest.raises(ValueError, match="prompts differ"):
        faithfulness_study(seeing_model, other_film, other, wide_result.analysis.grid, CONFIG)


def test_zero_strength_perturbations_reproduce_the_unperturbed_run(seeing_model, wide_result):
    zero = [Perturbation("noise", 0.0, "sigma"), Perturbation("resize", "resize", "preprocessing")]
    out = robustness_study(seeing_model, wide_result.film, wide_result, CONFIG, perturbations=zero)
    for entry in out["perturbations"]:
        assert entry["pixels_differing"] == 0
        assert not entry["flip"] and not entry["answer_changed"]
        assert entry["js"] == pytest.approx(0.0, abs=1e-9) and entry["top_iou"] == 1.0
        assert all(abs(v) < 1e-6 for v in entry["metric_deltas"].values() if v is not None)
    assert out["flip_rate"] == 0.0


def test_robustness_study_compares_each_perturbation_on_the_common_region(seeing_model, wide_result):
    chosen = [p for p in from_config(CONFIG.robustness) if p.name in ("noise", "pixels", "pad", "crop")]
    out = robustness_study(seeing_model, wide_result.film, wide_result, CONFIG, perturbations=chosen)
    json.dumps(out, allow_nan=False)
    entries = {e["name"]: e for e in out["perturbations"]}
    assert list(entries) == ["noise", "pixels", "pad", "crop"]
    assert out["reference"]["answer_label"] == wide_result.analysis.answer_label
    assert entries["pixels"]["pixels_differing"] == 20
    assert entries["pad"]["compared_on"] == "film" and entries["pad"]["mass_outside_film"] > 0
    assert entries["crop"]["compared_on"] == "centre square" and entries["crop"]["region"] == [50, 0, 350, 300]
    assert entries["crop"]["mass_outside_film"] == pytest.approx(0.0, abs=1e-12)
    for entry in entries.values():
        assert entry["flip"] == (entry["answer_label"] != wide_result.analysis.answer_label)
        assert 0.0 <= entry["js"] <= math.log(2)
        assert "mass_in_box" in entry["metric_deltas"] and "image_share" in entry["share_deltas"]
    assert any(entry["js"] > 1e-6 for entry in entries.values())  # the perturbations reach the map
    assert out["mean_js"] == pytest.approx(np.mean([e["js"] for e in entries.values()]))

    tables = summarise_studies([{"key": "k1", "robustness": out}, {"key": "k2"}])
    assert len(tables.robustness) == 4 and tables.faithfulness.empty
    noise = tables.summary["robustness"]["by_perturbation"]["noise"]
    assert noise["n"] == 1 and noise["mean_js"] == pytest.approx(entries["noise"]["js"])
    assert "faithfulness" not in tables.summary


def test_regrid_known_values():
    grid = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.array_equal(regrid(grid, (0, 0, 2, 2), (0, 0, 2, 2)), grid)
    assert regrid(grid, (0, 0, 2, 2), (0, 0, 1, 1), (1, 1)).item() == 1.0
    assert regrid(grid, (0, 0, 2, 2), (0.5, 0.5, 1.5, 1.5), (1, 1)).item() == pytest.approx(2.5)
    padded = regrid(grid, (0, -1, 2, 3), (0, 0, 2, 2), (1, 2))  # a 2-tall film inside a 4-tall padded square
    assert padded.tolist() == [[2.0, 3.0]]  # half of each row falls on the film


def test_eval_study_callables_store_their_sections(seeing_model, wide_result, faithfulness):
    result = copy.copy(wide_result)
    result.analysis = dataclasses.replace(wide_result.analysis, extras={})
    faithfulness_eval_study(CONFIG)(seeing_model, result)
    only_resize = CONFIG.with_overrides({
        "robustness.preprocessing": ["resize"], "robustness.noise_sigma": 0, "robustness.contrast": 1,
        "robustness.brightness": 0, "robustness.blur_sigma": 0, "robustness.rotation_deg": 0,
        "robustness.pixels_changed": 0})
    robustness_eval_study(only_resize)(seeing_model, result)
    assert set(result.analysis.extras) == set(STUDY_KEYS)
    assert result.analysis.extras["faithfulness"]["deletion"]["map"] == pytest.approx(
        faithfulness["deletion"]["map"], abs=1e-6)
    assert [e["name"] for e in result.analysis.extras["robustness"]["perturbations"]] == ["resize"]
    tables = summarise_studies([{"key": result.sample.key, **result.analysis.extras}])
    assert tables.faithfulness["key"].tolist() == [result.sample.key]
    assert tables.summary["faithfulness"]["samples"] == 1
    assert tables.summary["robustness"]["by_perturbation"]["resize"]["flip_rate"] == 0.0
