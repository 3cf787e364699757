"""The files of the system medtui replaces (UNHSAILLab/lvlm-interpret-medgemma) taken as its users have them:
its dataset CSVs (films found by image_path, else by dicom_id), its results CSV as input (labels from
ground_truth), its JSON config, its results tree. The original files are read from ../shared/data/original-system
when present; the behaviours are also pinned on small CSVs written here."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from medgemma_tui.data.schema import load_dataset
from medgemma_tui.resources import fixtures_dir

ORIGINAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "original-system"
SENTENCE = "Based on the image, there is no clear evidence of a pleural effusion."


def original(name: str) -> Path:
    path = ORIGINAL / name
    if not path.exists():
        pytest.skip(f"{name} of the original system not available at {ORIGINAL}")
    return path


def write(folder: Path, text: str, name: str = "data.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"film")


# ---- where the film is --------------------------------------------------------------------------------


@pytest.mark.parametrize(("present", "found", "how"), [
    (("stale.jpg", "d1", "d1.jpg", "d1.png", "d1.dcm"), "stale.jpg", "image_path"),
    (("d1", "d1.jpg", "d1.png", "d1.dcm"), "d1", "dicom_id"),
    (("d1.jpg", "d1.png", "d1.dcm"), "d1.jpg", "dicom_id.jpg"),
    (("d1.png", "d1.dcm"), "d1.png", "dicom_id.png"),
    (("d1.dcm",), "d1.dcm", "dicom_id.dcm"),
])
def test_the_film_is_image_path_else_dicom_id_else_dicom_id_with_jpg_png_dcm(tmp_path, present, found, how):
    touch(tmp_path / "img", *present)
    path = write(tmp_path, "dicom_id,image_path,question,answer\nd1,stale.jpg,Is there an effusion?,no\n")
    sample = load_dataset(path, tmp_path / "img")[0]
    assert sample.image == tmp_path / "img" / found
    assert sample.image_found == how


def test_a_film_found_nowhere_points_at_image_path_and_says_it_was_not_found(tmp_path):
    path = write(tmp_path, "dicom_id,image_path,question,answer\nd1,gone.jpg,Is there an effusion?,no\n")
    sample = load_dataset(path, tmp_path)[0]
    assert (sample.image, sample.image_found, sample.problem) == (tmp_path / "gone.jpg", "", None)


def test_a_csv_without_image_path_finds_each_film_by_its_dicom_id(tmp_path):
    touch(tmp_path, "a.jpg", "b.png")
    path = write(tmp_path, "dicom_id,question,answer\na,Is there an effusion?,no\nb,Is there a pneumothorax?,yes\n")
    dataset = load_dataset(path)
    assert [(s.image.name, s.image_found, s.image_path) for s in dataset] == [
        ("a.jpg", "dicom_id.jpg", "a.jpg"), ("b.png", "dicom_id.png", "b.png")]


def test_a_csv_with_neither_image_path_nor_dicom_id_names_both(tmp_path):
    from medgemma_tui.data.schema import DatasetError

    path = write(tmp_path, "question,answer\nIs there an effusion?,no\n")
    with pytest.raises(DatasetError, match="missing column 'image_path' \\(or 'dicom_id'"):
        load_dataset(path)


def test_nested_mimic_and_absolute_image_paths_are_kept(tmp_path):
    nested = "files/p10/p10000032/s50414267/02aa804e.jpg"
    touch(tmp_path, nested, "elsewhere/x.png")
    absolute = tmp_path / "elsewhere" / "x.png"
    path = write(tmp_path, f"image_path,question,answer\n{nested},Q?,no\n{absolute},Q?,yes\n")
    assert [s.image for s in load_dataset(path)] == [tmp_path / nested, absolute]


@pytest.mark.parametrize("cell", ["\"['x.jpg']\"", "\"[\"\"x.jpg\"\"]\"", "\"[ 'x.jpg' ]\""])
def test_a_list_valued_image_path_is_read_as_its_one_path(tmp_path, cell):
    touch(tmp_path, "x.jpg")
    path = write(tmp_path, f"image_path,question,correct_answer\n{cell},Is there hernia?,no\n")
    sample = load_dataset(path)[0]
    assert (sample.image_path, sample.image, sample.image_found, sample.answer) == (
        "x.jpg", tmp_path / "x.jpg", "image_path", "no")


def test_a_list_of_two_films_fails_that_row_only(tmp_path):
    path = write(tmp_path, "image_path,question,answer\n\"['x.jpg', 'y.jpg']\",Q?,no\nz.jpg,Q?,yes\n")
    first, second = load_dataset(path)
    assert "lists 2 films" in first.problem
    assert second.problem is None


# ---- which column is the label --------------------------------------------------------------------------


def test_free_text_answer_beside_ground_truth_takes_the_label_from_ground_truth(tmp_path):
    path = write(tmp_path, "image_path,question,answer,ground_truth\n"
                           f"x.png,Is there a pleural effusion?,\"{SENTENCE}\",no\n"
                           "x.png,Is the heart enlarged?,\"Yes, the cardiac silhouette is enlarged.\",yes\n")
    dataset = load_dataset(path)
    assert [s.answer for s in dataset] == ["no", "yes"]
    assert dataset[0].extra["original_answer"] == SENTENCE
    assert "ground_truth" not in dataset[0].extra
    assert dataset.label_column == "ground_truth" and dataset.unscored_reason() is None


def test_one_word_model_answers_beside_ground_truth_still_take_the_label_from_ground_truth(tmp_path):
    path = write(tmp_path, "image_path,question,answer,ground_truth\nx.png,Q?,No.,yes\ny.png,Q?,Yes,yes\n")
    dataset = load_dataset(path)
    assert [s.answer for s in dataset] == ["yes", "yes"]
    assert [s.extra["original_answer"] for s in dataset] == ["No.", "Yes"]


def test_between_two_aliases_the_one_holding_labels_wins_and_the_other_keeps_its_name(tmp_path):
    path = write(tmp_path, f"image_path,question,ground_truth,label\nx.png,Q?,\"{SENTENCE}\",no\n")
    dataset = load_dataset(path)
    assert dataset.label_column == "label" and dataset[0].answer == "no"
    assert dataset[0].extra == {"ground_truth": SENTENCE}


def test_a_csv_whose_labels_are_free_text_says_why_no_row_can_be_scored(tmp_path):
    path = write(tmp_path, f"image_path,question,answer\nx.png,Q?,\"{SENTENCE}\"\n")
    dataset = load_dataset(path)
    reason = dataset.unscored_reason()
    assert dataset.scored_count == 0
    assert "no row can be scored" in reason and "'answer'" in reason and "Based on the image" in reason


# ---- the original's own CSVs -------------------------------------------------------------------------------


def phantom_films(folder: Path, names: list[str]) -> Path:
    """The demo's phantoms under the names the original's CSVs give (its MIMIC films are credentialed)."""
    phantoms = sorted((fixtures_dir() / "phantoms").glob("p*.png"))
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(sorted(set(names))):
        shutil.copy(phantoms[i % len(phantoms)], folder / name)
    return folder


def test_the_original_hard_positive_csv_finds_every_film_with_or_without_image_path(tmp_path):
    source = original("hard_positive_questions.csv")
    rows = list(csv.DictReader(source.open(encoding="utf-8")))
    images = phantom_films(tmp_path / "img", [f"{r['dicom_id']}.jpg" for r in rows])
    as_is = load_dataset(source, images)
    assert len(as_is) == 20 and not as_is.missing_images() and as_is.scored_count == 20
    assert {s.image_found for s in as_is} == {"image_path"}
    without = tmp_path / "without_image_path.csv"
    with without.open("w", newline="", encoding="utf-8") as handle:
        fields = [f for f in rows[0] if f != "image_path"]
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    dataset = load_dataset(without, images)
    assert not dataset.missing_images() and {s.image_found for s in dataset} == {"dicom_id.jpg"}
    assert [s.key for s in dataset] == [s.key for s in as_is]


def test_the_original_one_pixel_csv_reads_its_list_valued_paths_and_correct_answer(tmp_path):
    source = original("one_pixel_questions.csv")
    dataset = load_dataset(source, tmp_path)
    assert len(dataset) == 100 and not dataset.problems
    assert all(not s.image_path.startswith("[") for s in dataset)
    assert dataset.label_column == "correct_answer" and dataset.scored_count == 100


def test_the_original_results_csv_as_input_is_scored_against_ground_truth(tmp_path):
    source = original("old-tree/evaluation_results.csv")
    dataset = load_dataset(source, tmp_path)
    assert dataset.label_column == "ground_truth" and dataset.scored_count == 20
    assert dataset[0].extra["original_answer"] == "[model answer text removed]"


# ---- through medtui eval --------------------------------------------------------------------------------


@pytest.fixture
def demo_loader(demo_model, monkeypatch):
    """The CLI's model load returns the session's demo model (the load is tested elsewhere)."""
    import medgemma_tui.engine.loading as loading

    monkeypatch.setattr(loading, "load_for_capture", lambda *a, **k: demo_model)
    return demo_model


def invoke(*args: str):
    from click.testing import CliRunner

    from cli.main import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_eval_of_the_original_results_csv_scores_rows_and_says_where_each_film_was(tmp_path, demo_loader):
    from tests.support import eval_config

    source = original("old-tree/evaluation_results.csv")
    rows = list(csv.DictReader(source.open(encoding="utf-8")))
    images = phantom_films(tmp_path / "img", [f"{r['dicom_id']}.jpg" for r in rows])
    out = tmp_path / "out"
    result = invoke("eval", "--export", str(out), "--data", str(source), "--images", str(images), "--limit", "2",
                    "--config", str(eval_config(tmp_path, full=False)))
    assert result.exit_code == 0, result.output
    assert "over 2 scored rows" in result.output
    written = list(csv.DictReader((out / "evaluation_results.csv").open(encoding="utf-8")))
    assert [r["image_found"] for r in written] == ["dicom_id.jpg", "dicom_id.jpg"]
    assert [r["ground_truth"] for r in written] == [r["ground_truth"] for r in rows[:2]]
    assert written[0]["original_answer"] == "[model answer text removed]"


def test_eval_of_a_csv_no_row_of_which_can_be_scored_says_why_on_its_last_line_and_in_run_json(tmp_path,
                                                                                               demo_loader):
    import json

    from tests.support import eval_config

    shutil.copy(fixtures_dir() / "phantoms" / "p0001.png", tmp_path / "x.png")
    path = write(tmp_path, f"image_path,question,answer\nx.png,Is there a pleural effusion?,\"{SENTENCE}\"\n")
    out = tmp_path / "out"
    result = invoke("eval", "--export", str(out), "--data", str(path),
                    "--config", str(eval_config(tmp_path, full=False)))
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("accuracy n/a: no row can be scored") and "'answer'" in last
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"]["unscored_reason"].startswith("no row can be scored")


# ---- its JSON config ----------------------------------------------------------------------------------


def test_the_original_json_config_is_mapped_onto_medtui_settings():
    from medgemma_tui.config import load_config

    config = load_config(original("medgemma4b_config.json"))
    assert config.model.name_or_path == "google/medgemma-4b-it"
    assert config.decoding.max_new_tokens == 100 and config.decoding.batch_size == 1
    assert config.data.csv.name == "medical-cxr-vqa-questions_sample_hardpositives.csv"
    assert config.data.images == Path("/home/bsada1/mimic_cxr_hundred_vqa") and config.data.limit is None
    assert config.analysis.terms[:3] == ("effusion", "pneumothorax", "consolidation")
    assert len(config.analysis.terms) == 17
    assert (config.visualization.colormap, config.visualization.overlay_alpha) == ("jet", 0.35)
    assert (config.visualization.save_overlays, config.visualization.save_full) == (True, False)
    rob = config.robustness
    assert rob.enabled and (rob.noise_sigma, rob.contrast) == (1.5, 1.1)
    assert rob.brightness == pytest.approx((0.95 - 1) * 128)  # its factor as an offset about mid-grey
    assert (rob.blur_sigma, rob.rotation_deg, rob.pixels_changed) == (0.0, 0.0, 0)  # it ran only its own list
    assert rob.one_pixel == 3 and rob.one_pixel_max_delta == pytest.approx(0.05 * 255)
    ignored = " ".join(config.ignored)
    for key in ("seeds", "decoding.temperature", "decoding.do_sample", "paths.output_dir",
                "batch_processing.save_every", "logging"):
        assert key in ignored


def test_config_convert_writes_a_toml_that_loads_to_the_same_settings(tmp_path):
    from medgemma_tui.config import load_config

    source = tmp_path / "medgemma4b_config.json"
    shutil.copy(original("medgemma4b_config.json"), source)
    result = invoke("config", "convert", str(source))
    assert result.exit_code == 0, result.output
    toml = source.with_suffix(".toml")
    assert toml.read_text(encoding="utf-8").startswith("# medtui config converted from medgemma4b_config.json")
    assert load_config(toml) == load_config(source)
    assert not load_config(toml).ignored
    again = invoke("config", "convert", str(source))
    assert again.exit_code == 2 and "exists" in again.output


def test_a_json_config_in_a_command_warns_once_naming_every_ignored_key(tmp_path):
    source = original("medgemma4b_config.json")
    result = invoke("eval", "--export", str(tmp_path / "out"), "--config", str(source))
    warnings = [line for line in result.output.splitlines() if "original system's JSON config" in line]
    assert len(warnings) == 1
    for key in ("seeds", "decoding.temperature", "paths.output_dir", "batch_processing.save_every", "logging"):
        assert key in warnings[0]
    assert result.exit_code == 2  # its data_csv is on the original's machine: named, in one line
    assert "hardpositives.csv" in result.output.splitlines()[-1]


def test_a_broken_json_config_is_one_line_naming_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "model_id": "google/medgemma-4b-it",\n}\n', "bad.json")
    result = invoke("eval", "--export", str(tmp_path / "out"), "--config", str(path))
    assert result.exit_code == 2
    assert "invalid JSON at line 3" in result.output and len(result.output.strip().splitlines()) == 1


# ---- the one-pixel attack --------------------------------------------------------------------------------


def needle_score(target: int, flip_below: float | None = None):
    """A toy score whose optimum is known: raising pixel ``target`` lowers the log-probability most, its
    neighbours less (the pixels are in raster order, so neighbouring indices are neighbouring pixels)."""
    def score(candidates):
        closeness = np.exp(-np.abs(candidates[..., 0] - target) / 2.0)
        gain = (closeness * candidates[..., 1] / 255.0).sum(axis=1)
        logprob = -gain
        flipped = logprob < flip_below if flip_below is not None else np.zeros(len(candidates), dtype=bool)
        return logprob, flipped
    return score


def test_differential_evolution_finds_the_one_pixel_that_matters_within_its_budget():
    from medgemma_tui.analysis.one_pixel import Budget, search

    budget = Budget(pixels=1, max_delta=255, population=15, generations=10, seed=0)
    found = search(needle_score(17), 40, budget)
    assert found.candidate[0, 0] == 17 and found.candidate[0, 1] > 128
    assert found.queries == budget.max_queries == 15 * 2 * 11
    assert not found.flipped
    assert found.history == sorted(found.history, reverse=True)  # the best never gets worse


def test_the_search_is_the_same_under_the_same_seed_and_stops_once_a_candidate_flips():
    from medgemma_tui.analysis.one_pixel import Budget, search

    budget = Budget(pixels=2, max_delta=255, population=10, generations=20, seed=3)
    first, again = search(needle_score(5, -0.3), 12, budget), search(needle_score(5, -0.3), 12, budget)
    np.testing.assert_array_equal(first.candidate, again.candidate)
    assert first.flipped and first.logprob < -0.3
    assert first.queries < budget.max_queries and first.queries % (10 * 2 * 2) == 0  # whole generations


def test_pixel_edits_read_each_answer_token_at_its_row_and_give_back_an_8_bit_image_of_the_same_input(
        demo_model, film):
    from medgemma_tui.engine.attribution.probe import processed_pixels
    from medgemma_tui.engine.extract import extract_record
    from medgemma_tui.engine.pixel_edits import pixel_edit_score

    record = extract_record(demo_model, film, "Is there a pleural effusion?", max_new_tokens=8)
    unchanged = (np.array([[3]]), np.array([[4]]), np.array([[0.0]]))
    for index in range(len(record.answer_ids)):  # every token of the answer, sentence or word
        logprob, flipped = pixel_edit_score(demo_model, film, record, index)(*unchanged)
        assert logprob[0] == pytest.approx(record.answer_logprobs[index], abs=1e-4)
        assert not flipped[0]  # greedy: the generated token was the first choice
    score = pixel_edit_score(demo_model, film, record, 0)
    rows, cols, deltas = np.array([10, 200]), np.array([20, 100]), np.array([100.0, -300.0])
    edited = score.edited(rows[None], cols[None], deltas[None])[0]
    changed = np.argwhere((edited != score.pixels).any(dim=0).numpy())
    assert changed.tolist() == [[10, 20], [200, 100]]
    levels = ((edited * score.std + score.mean) * 255).mean(dim=0).numpy()
    before = score.values()
    assert levels[10, 20] == pytest.approx(min(round(before[10, 20]) + 100, 255), abs=1e-3)
    assert levels[200, 100] == pytest.approx(0, abs=1e-3)  # clipped at black
    again = processed_pixels(demo_model, score.edited_image(rows, cols, deltas), record)
    np.testing.assert_allclose(again.numpy(), edited.numpy(), atol=1e-6)


def test_the_one_pixel_attack_writes_each_row_and_its_flip_rate_by_finding_into_the_tree(tmp_path, demo_loader):
    import json

    from tests.support import eval_config

    config = eval_config(tmp_path, full=False, tokens=8, extra=(
        "[robustness]\nenabled = true\nnoise_sigma = 0.0\ncontrast = 1.0\nbrightness = 0.0\nblur_sigma = 0.0\n"
        "rotation_deg = 0.0\npixels_changed = 0\npreprocessing = [\"resize\"]\none_pixel = 2\n"
        "one_pixel_max_delta = 12.75\none_pixel_population = 2\none_pixel_generations = 1\n"))
    images = tmp_path / "img"
    images.mkdir()
    phantoms = sorted((fixtures_dir() / "phantoms").glob("p*.png"))
    for i, name in enumerate(["a.png", "b.png"]):
        shutil.copy(phantoms[i], images / name)
    data = write(tmp_path, "study_id,image_path,question,answer,finding\n"
                           "s1,a.png,Is there a pleural effusion?,no,effusion\n"
                           "s2,b.png,Is there a nodule?,yes,nodule\n")
    out = tmp_path / "out"
    result = invoke("eval", "--export", str(out), "--config", str(config), "--data", str(data), "--images",
                    str(images))
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert "one_pixel" in run["studies"]
    keys = [row["key"] for row in csv.DictReader((out / "evaluation_results.csv").open(encoding="utf-8"))]
    for key in keys:
        attack = json.loads((out / "robustness" / f"{key}.json").read_text())["one_pixel"]
        assert len(attack["pixels"]) == 2 and attack["region"] == "lungs"
        assert all(abs(p["after"] - p["before"]) <= 12.75 + 0.5 for p in attack["pixels"])
        assert 0 < attack["queries"] <= attack["budget"]["max_queries"] == 2 * 4 * 2
        assert isinstance(attack["flip"], bool) and attack["js"] is not None
    table = list(csv.DictReader((out / "analysis" / "one_pixel.csv").open(encoding="utf-8")))
    assert sorted(row["key"] for row in table) == sorted(keys)
    summary = json.loads((out / "analysis" / "summary.json").read_text())["one_pixel"]
    assert summary["samples"] == 2 and summary["studies"] == 2 and summary["flip_rate_interval"] is not None
    assert set(summary["by_finding"]) == {"effusion", "nodule"}


def test_the_original_configs_one_pixel_perturbation_turns_the_attack_on_in_eval(tmp_path):
    from medgemma_tui.config import load_config
    from medgemma_tui.pipeline.studies import study_names
    from medgemma_tui.pipeline.studies.one_pixel import budget_of

    config = load_config(original("medgemma4b_config.json"))
    assert study_names(config) == ["robustness", "one_pixel"]
    assert study_names(load_config(None), asked={"robustness"}) == ["robustness"]  # off unless asked for
    budget = budget_of(config)
    assert (budget.pixels, budget.max_delta) == (3, pytest.approx(12.75))
    assert budget.max_queries == 10 * 6 * 9


# ---- its results tree ---------------------------------------------------------------------------------------


def test_open_on_the_original_tree_says_in_one_line_what_it_is_and_how_to_rerun_it():
    tree = original("old-tree")
    result = invoke("open", str(tree))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output and "KeyError" not in result.output
    assert "original system" in lines[0] and "20 rows" in lines[0] and "1..257" in lines[0]
    assert f"medtui eval --data {tree / 'evaluation_results.csv'}" in lines[0]


def test_a_medtui_tree_is_not_taken_for_the_original_one(tmp_path):
    from medgemma_tui.export.original_tree import original_tree_summary

    (tmp_path / "evaluation_results.csv").write_text("key,image_path,answer,ground_truth,image_span,error\n",
                                                     encoding="utf-8")
    assert original_tree_summary(tmp_path) is None


# ---- choosing the GPU -----------------------------------------------------------------------------------------


def test_cuda_auto_picks_the_gpu_with_the_most_free_memory_lowest_index_on_ties():
    from medgemma_tui.model.loading import most_free_gpu

    gib = 1 << 30
    free = {0: (3 * gib, 80 * gib), 1: (71 * gib, 80 * gib), 2: (40 * gib, 80 * gib), 3: (71 * gib, 80 * gib)}
    assert most_free_gpu(4, free.__getitem__) == 1
    assert most_free_gpu(1, free.__getitem__) == 0


def test_cuda_auto_is_a_device_the_config_accepts_and_a_machine_without_cuda_refuses_in_one_line():
    import torch

    from medgemma_tui.config import Config
    from medgemma_tui.errors import MedtuiError
    from medgemma_tui.model.loading import resolve_device

    assert Config().with_overrides({"model.device": "CUDA:auto"}).model.device == "cuda:auto"
    if not torch.cuda.is_available():
        with pytest.raises(MedtuiError, match="CUDA is not available"):
            resolve_device("cuda:auto")
    else:
        assert resolve_device("cuda:auto").startswith("cuda:")


# ---- what README: "Coming from the original system" says of its numbers ----------------------------------------


def original_grid(study: str) -> np.ndarray:
    grid = np.load(original(f"old-tree/grids/{study}_grid.npy")).astype(np.float64)
    return grid / grid.sum()


def test_every_grid_of_the_original_tree_holds_most_of_its_mass_in_the_chat_header_cell():
    for path in sorted(original("old-tree/grids").glob("*_grid.npy")):
        grid = original_grid(path.name.split("_")[0])
        assert 0.70 < grid[0, 0] < 0.72, path.name
        assert grid[0, 0] == grid.max()


def test_the_originals_border_rule_counts_corners_twice_and_passes_one_where_medtuis_ring_does_not():
    from medgemma_tui.analysis.metrics import map_metrics

    grid = original_grid("50414267")
    counted_twice = grid[0].sum() + grid[-1].sum() + grid[:, 0].sum() + grid[:, -1].sum()  # its rule
    ring = grid.sum() - grid[1:-1, 1:-1].sum()  # each outer cell once
    metrics = map_metrics(grid)
    assert counted_twice == pytest.approx(1.553, abs=1e-3) and counted_twice > 1
    assert metrics["border_fraction"] == pytest.approx(ring) == pytest.approx(0.819, abs=1e-3)
    assert grid[:5].sum() == pytest.approx(0.870, abs=1e-3)  # its apical band of 5 rows
    assert metrics["apical_fraction"] == pytest.approx(0.873, abs=1e-3)  # the upper third, 16/3 rows
    assert metrics["entropy"] == pytest.approx(1.978, abs=1e-3)
