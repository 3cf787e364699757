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
from medgemma_tui.export.study_tables import FAITHFULNESS_COLUMNS, summarise_studies
from medgemma_tui.pipeline.studies import make_studies
from medgemma_tui.pipeline.studies.faithfulness import faithfulness_study
from medgemma_tui.pipeline.studies.robustness import robustness_study
from medgemma_tui.registry import STUDIES

CONFIG = Config().with_overrides({"decoding.max_new_tokens": 3, "faithfulness.steps": 2,
                                  "faithfulness.random_orders": 3})


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
    # 2 shared ends + 1 middle point per curve: the map's and 3 random orders', deletion and insertion; then
    # ERASER's 5 bins (3, 13, 26, 51, 128 of 256 tokens) removed and kept alone for the same 4 orders, less
    # the 128-token bin, which is the curves' middle point
    assert f["sequences"] == 2 + 2 * 1 * (1 + 3) + 2 * 4 * (1 + 3) and f["forward_passes"] == 3
    assert f["deletion_gain"] == pytest.approx(f["deletion_auc_random"] - f["deletion_auc"])
    json.dumps(f, allow_nan=False)


def test_random_baseline_is_reproducible_under_its_seed(seeing_model, wide_result, faithfulness):
    args = (seeing_model, wide_result.film, wide_result.record, wide_result.analysis.grid)
    again = faithfulness_study(*args, CONFIG, batch_size=2)
    assert again["random_orders"] == faithfulness["random_orders"]
    assert again["deletion"]["random"] == pytest.approx(faithfulness["deletion"]["random"], abs=1e-5)
    assert again["insertion"]["random"] == pytest.approx(faithfulness["insertion"]["random"], abs=1e-5)
    assert again["forward_passes"] == 21  # 42 sequences, 2 at a time, the same numbers
    assert again["comprehensiveness_aopc"] == pytest.approx(faithfulness["comprehensiveness_aopc"], abs=1e-5)
    other = faithfulness_study(*args, CONFIG.with_overrides({"faithfulness.seed": 1}))
    assert other["random_orders"] != faithfulness["random_orders"]
    assert other["deletion"]["map"] == pytest.approx(faithfulness["deletion"]["map"], abs=1e-6)


def test_faithfulness_baselines_and_refusals(seeing_model, wide_result):
    args = (seeing_model, wide_result.film, wide_result.record, wide_result.analysis.grid)
    zero = faithfulness_study(*args, CONFIG.with_overrides({"faithfulness.baseline": "zero"}), random_orders=2)
    assert zero["baseline"] == "zero" and len(zero["deletion"]["random_each"]) == 2
    assert zero["sequences"] == 2 + 2 * 1 * 3 + 2 * 4 * 3
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


def test_the_built_studies_file_their_sections_under_their_names(seeing_model, wide_result, faithfulness):
    result = copy.copy(wide_result)
    result.analysis = dataclasses.replace(wide_result.analysis, extras={})
    (faithful,) = make_studies(CONFIG, ["faithfulness"])
    faithful(seeing_model, result)
    only_resize = CONFIG.with_overrides({
        "robustness.preprocessing": ["resize"], "robustness.noise_sigma": 0, "robustness.contrast": 1,
        "robustness.brightness": 0, "robustness.blur_sigma": 0, "robustness.rotation_deg": 0,
        "robustness.pixels_changed": 0})
    (robust,) = make_studies(only_resize, ["robustness"])
    robust(seeing_model, result)
    assert set(result.analysis.extras) == {"faithfulness", "robustness"}
    assert set(result.analysis.extras) <= set(STUDIES)
    stored = result.analysis.extras["faithfulness"]
    assert stored["answer_label"] == wide_result.analysis.answer_label
    assert stored["target"]["index"] == wide_result.analysis.decision_index  # the default map reads the decision row
    if stored["target"]["index"] == faithfulness["target"]["index"]:
        assert stored["deletion"]["map"] == pytest.approx(faithfulness["deletion"]["map"], abs=1e-6)
    assert [e["name"] for e in result.analysis.extras["robustness"]["perturbations"]] == ["resize"]
    tables = summarise_studies([{"key": result.sample.key, **result.analysis.extras}])
    assert tables.faithfulness["key"].tolist() == [result.sample.key]
    row = tables.faithfulness.iloc[0]
    for column in FAITHFULNESS_COLUMNS:  # every column is the study's own number, none left empty
        assert row[column] is not None and row[column] == row[column], column
    assert row["deletion_auc_prob_random"] == pytest.approx(stored["deletion_auc_prob_random"])
    assert row["answer_label"] == wide_result.analysis.answer_label
    assert tables.summary["faithfulness"]["samples"] == 1
    assert tables.summary["robustness"]["by_perturbation"]["resize"]["flip_rate"] == 0.0



def test_the_methods_study_files_each_maps_four_faithfulness_gains_on_the_same_orders(
        seeing_model, wide_result, faithfulness):
    """The answer view's entry holds the gains the faithfulness study gives the same grid: deletion and
    insertion beside ERASER's comprehensiveness and sufficiency, so ``analysis/methods.csv`` can list all four."""
    from medgemma_tui.export.method_tables import FAITHFULNESS_GAINS
    from medgemma_tui.pipeline.studies.methods import methods_study

    result = copy.copy(wide_result)  # the study adds the gradient views to the record: work on a copy
    result.analysis = dataclasses.replace(wide_result.analysis, record=copy.deepcopy(wide_result.record))
    study = methods_study(seeing_model, result, CONFIG, names=(), faithfulness=True)
    answer = study["methods"]["answer"]
    assert set(FAITHFULNESS_GAINS) == {"deletion_gain", "insertion_gain", "comprehensiveness_gain", "sufficiency_gain"}
    for gain in FAITHFULNESS_GAINS:
        assert answer[gain] == pytest.approx(faithfulness[gain], abs=1e-6), gain
    assert all(isinstance(entry[gain], float) for entry in study["methods"].values() if "error" not in entry
               for gain in FAITHFULNESS_GAINS)

# ---- faithfulness that can be read: spread, probability curves, the beats-random rule, splits -------
def test_compare_to_random_known_values():
    from medgemma_tui.pipeline.studies.faithfulness import compare_to_random

    randoms = [0.5, 0.6, 0.4]  # mean 0.5, sample SD 0.1
    strong = compare_to_random(0.2, randoms, lower_is_better=True)
    assert strong["random_mean"] == pytest.approx(0.5) and strong["random_sd"] == pytest.approx(0.1)
    assert strong["gain"] == pytest.approx(0.3) and strong["z"] == pytest.approx(3.0)
    assert strong["orders_beaten"] == 1.0 and strong["beats_random"]
    near = compare_to_random(0.35, randoms, lower_is_better=True)  # beats every order, gain 0.15 < 2 SD
    assert near["orders_beaten"] == 1.0 and not near["beats_random"]
    some = compare_to_random(0.45, randoms, lower_is_better=True)  # beats 2 of 3
    assert some["orders_beaten"] == pytest.approx(2 / 3) and not some["beats_random"]
    insertion = compare_to_random(0.75, randoms, lower_is_better=False)  # higher is better: gain 0.25 > 0.2
    assert insertion["gain"] == pytest.approx(0.25) and insertion["beats_random"]
    assert not compare_to_random(0.2, randoms, lower_is_better=False)["beats_random"]
    one = compare_to_random(0.4, [0.5], lower_is_better=True)  # one order: no SD, beating it is enough
    assert one["random_sd"] is None and one["z"] is None and one["beats_random"]


def test_faithfulness_reports_every_random_order_its_spread_and_the_probability_curves(faithfulness):
    f = faithfulness
    assert f["random_order_count"] == 3 and len(f["random_orders"]) == 3
    fractions = np.asarray(f["fractions"])
    for name in ("deletion", "insertion"):
        curve = f[name]
        each = np.asarray(curve["random_each"])
        assert each.shape == (3, 3)
        np.testing.assert_allclose(curve["random"], each.mean(axis=0))
        np.testing.assert_allclose(curve["random_sd"], each.std(axis=0, ddof=1))
        np.testing.assert_allclose(curve["map_prob"], np.exp(curve["map"]))
        np.testing.assert_allclose(curve["random_prob"], np.exp(each).mean(axis=0))  # mean probability
        aucs = [float(np.trapezoid(r, fractions)) for r in each]
        assert f[f"{name}_auc_random_each"] == pytest.approx(aucs)
        assert f[f"{name}_auc_random"] == pytest.approx(np.mean(aucs))
        assert f[f"{name}_auc_random_sd"] == pytest.approx(np.std(aucs, ddof=1))
        assert f[f"{name}_auc_prob"] == pytest.approx(float(np.trapezoid(np.exp(curve["map"]), fractions)))
        prob_aucs = [float(np.trapezoid(np.exp(r), fractions)) for r in each]
        assert f[f"{name}_auc_prob_random"] == pytest.approx(np.mean(prob_aucs))
        sign = -1 if name == "deletion" else 1
        for kind, auc, rand in (("", f[f"{name}_auc"], aucs), ("_prob", f[f"{name}_auc_prob"], prob_aucs)):
            gain = sign * (auc - np.mean(rand))
            assert f[f"{name}_gain{kind}"] == pytest.approx(gain)
            beats = all(sign * (auc - r) > 0 for r in rand) and gain > 2 * np.std(rand, ddof=1)
            assert f[f"{name}_beats_random{kind}"] == beats
    assert f["full_image_prob"] == pytest.approx(math.exp(f["full_image_logprob"]))
    assert "2 SD" in f["beats_random_rule"]


def test_followed_token_is_the_one_whose_row_the_map_read(wide_result):
    from medgemma_tui.analysis.views import MapSpec
    from medgemma_tui.pipeline.studies.faithfulness import followed_index

    analysis = wide_result.analysis
    record = analysis.record
    last_row = int(record.answer_rows[-1])

    def with_rows(rows, decision=1):
        view = dataclasses.replace(analysis.view, spec=MapSpec(rows=rows))
        return dataclasses.replace(analysis, view=view, decision_index=decision)

    assert followed_index(with_rows("decision", decision=2)) == 2
    assert followed_index(with_rows("first_answer", decision=2)) == record.first_content_index
    assert followed_index(with_rows(last_row)) == int(record.query_answer_index[last_row])
    assert followed_index(with_rows("answer", decision=2)) == 2
    assert followed_index(with_rows(int(record.question_rows[0]), decision=2)) == 2


def test_faithfulness_follows_a_later_answer_token_fed_the_tokens_before_it(seeing_model, wide_result):
    record = wide_result.record
    assert len(record.answer_ids) >= 2
    args = (seeing_model, wide_result.film, record, wide_result.analysis.grid)
    second = faithfulness_study(*args, CONFIG, random_orders=1, token_index=1)
    assert second["target"]["index"] == 1 and second["target"]["position"] == record.prompt_length
    # the whole image reproduces the record's own log-probability of that token
    assert second["full_image_logprob"] == pytest.approx(record.answer_logprobs[1], abs=1e-4)
    with pytest.raises(ValueError, match="answer token"):
        faithfulness_study(*args, CONFIG, random_orders=1, token_index=len(record.answer_ids))


def test_faithfulness_summary_splits_by_answer_label_and_finding():
    def study(gain: float, beats: bool, label: str, finding: str) -> dict:
        numbers = {f"{c}_gain{k}": gain for c in ("deletion", "insertion") for k in ("", "_prob")}
        numbers.update({f"{c}_gain": gain / 10 for c in ("comprehensiveness", "sufficiency")})
        flags = {f"{c}_beats_random{k}": beats for c in ("deletion", "insertion") for k in ("", "_prob")}
        flags.update({f"{c}_beats_random": beats for c in ("comprehensiveness", "sufficiency")})
        return {"faithfulness": {**numbers, **flags, "answer_label": label, "finding": finding,
                                 "random_order_count": 8, "target": {"text": "No"},
                                 "beats_random_rule": "the rule"}}

    files = [{"key": "a", **study(0.3, True, "yes", "nodule")}, {"key": "b", **study(0.1, False, "yes", "effusion")},
             {"key": "c", **study(-0.2, False, "no", "nodule")}]
    tables = summarise_studies(files, labels={"c": {"answer_label": "uncertain", "finding": "nodule"}})
    assert tables.faithfulness["answer_label"].tolist() == ["yes", "yes", "uncertain"]  # the CSV wins
    assert tables.faithfulness["target_token"].tolist() == ["No"] * 3
    summary = tables.summary["faithfulness"]
    assert summary["samples"] == 3 and summary["random_orders"] == 8 and summary["beats_random_rule"] == "the rule"
    assert summary["mean_deletion_gain"] == pytest.approx(0.2 / 3)
    assert summary["deletion_beats_random"] == pytest.approx(1 / 3)
    assert summary["deletion_gain_positive"] == pytest.approx(2 / 3)
    assert summary["mean_comprehensiveness_gain"] == pytest.approx(0.02 / 3)
    assert summary["sufficiency_beats_random"] == pytest.approx(1 / 3)
    assert summary["sufficiency_gain_positive"] == pytest.approx(2 / 3)
    by_label = summary["by_answer_label"]
    assert set(by_label) == {"yes", "uncertain"}
    assert by_label["yes"]["samples"] == 2 and by_label["yes"]["mean_deletion_gain"] == pytest.approx(0.2)
    assert by_label["yes"]["insertion_beats_random_prob"] == pytest.approx(0.5)
    assert by_label["uncertain"]["deletion_gain_positive"] == 0.0
    by_finding = summary["by_finding"]
    assert by_finding["nodule"]["samples"] == 2 and by_finding["nodule"]["mean_deletion_gain"] == pytest.approx(0.05)
    assert by_finding["effusion"]["deletion_beats_random"] == 0.0


# ---- ERASER's comprehensiveness and sufficiency (DeYoung et al. 2020) on the same orders -------------------
def eraser_by_the_letter(probe, order: np.ndarray, full: float) -> tuple[float, float]:
    """(comprehensiveness, sufficiency): p(x) - p(x without r_k) and p(x) - p(r_k alone), averaged over
    k in {1, 5, 10, 20, 50}% of the tokens (r_k: the first round(k n) of ``order``), through the token
    probe: an independent route that replaces image tokens by the film's mean token."""
    n = probe.cells
    removed, alone = [], []
    for k in (0.01, 0.05, 0.10, 0.20, 0.50):
        rationale = order[:max(1, round(k * n))]
        keep = np.ones(n)
        keep[rationale] = 0
        only = 1 - keep
        p_removed, p_alone = probe.probabilities(np.stack([keep, only]))
        removed.append(full - p_removed)
        alone.append(full - p_alone)
    return float(np.mean(removed)), float(np.mean(alone))


def test_comprehensiveness_and_sufficiency_follow_eraser_on_the_maps_and_the_random_orders(
        seeing_model, wide_result, faithfulness):
    from medgemma_tui.engine.attribution.probe import token_probe

    f = faithfulness
    assert f["comprehensiveness"]["cells"] == f["sufficiency"]["cells"] == [3, 13, 26, 51, 128]
    probe = token_probe(seeing_model, wide_result.film.rgb, wide_result.record, baseline="mean")
    full = float(probe.probabilities(np.ones((1, probe.cells)))[0])
    assert full == pytest.approx(f["full_image_prob"], rel=1e-4)
    comprehensiveness, sufficiency = eraser_by_the_letter(probe, np.asarray(f["map_order"]), full)
    assert f["comprehensiveness_aopc"] == pytest.approx(comprehensiveness, abs=1e-5)
    assert f["sufficiency_aopc"] == pytest.approx(sufficiency, abs=1e-5)
    randoms = [eraser_by_the_letter(probe, np.asarray(order), full) for order in f["random_orders"]]
    assert f["comprehensiveness_aopc_random_each"] == pytest.approx([c for c, _ in randoms], abs=1e-5)
    assert f["sufficiency_aopc_random_each"] == pytest.approx([s for _, s in randoms], abs=1e-5)
    # higher comprehensiveness and lower sufficiency are better: the gains are signed so that > 0 is better
    assert f["comprehensiveness_gain"] == pytest.approx(comprehensiveness - np.mean([c for c, _ in randoms]), abs=1e-5)
    assert f["sufficiency_gain"] == pytest.approx(np.mean([s for _, s in randoms]) - sufficiency, abs=1e-5)
    # the 50% bin removes / keeps the same tokens as the curves' middle point (steps 2)
    assert f["comprehensiveness"]["map"][-1] == pytest.approx(full - f["deletion"]["map_prob"][1], abs=1e-6)
    assert f["sufficiency"]["map"][-1] == pytest.approx(full - f["insertion"]["map_prob"][1], abs=1e-6)
