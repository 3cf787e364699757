"""Run configuration: defaults, the example file, overrides, JSON, and one-line errors naming the key."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from medgemma_tui.config import SECTIONS, Config, ConfigError, load_config
from medgemma_tui.resources import fixtures_dir

EXAMPLE = fixtures_dir() / "medtui.example.toml"


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ValueError)
    return message


# --- defaults ---------------------------------------------------------------------------------------


def test_defaults_match_the_research_script_config():
    config = load_config(None)
    assert config == Config()
    assert config.model.name_or_path == "demo"  # the same default for every command: the embedded demo
    assert (config.model.device, config.model.dtype, config.model.revision) == ("auto", "auto", None)
    assert (config.data.csv, config.data.images) == (None, None)
    assert config.decoding.max_new_tokens == 128
    analysis = config.analysis
    assert (analysis.terms, analysis.map_view, analysis.layers, analysis.default_row) == (
        None, "answer", "all", "decision")
    assert analysis.pointing_tolerance_px == 15.0
    assert analysis.hedged_answers == "uncertain"  # a leaning hedge is left open unless asked
    assert analysis.layer_span is None
    r = config.robustness
    assert (r.enabled, r.noise_sigma, r.contrast, r.brightness, r.blur_sigma, r.rotation_deg) == (
        False, 8.0, 0.8, 20.0, 1.5, 3.0)
    assert (r.pixels_changed, r.seed, r.preprocessing) == (20, 0, ("pad", "crop"))
    f = config.faithfulness
    assert (f.enabled, f.steps, f.baseline, f.seed, f.random_orders) == (False, 8, "mean", 0, 8)
    p = config.prompt  # the prompt the code used before it was configurable: question, then image
    assert (p.system, p.instruction, p.order, p.generic_question) == (None, None, "text_first", "Describe the image.")
    v = config.visualization
    assert (v.colormap, v.overlay_alpha, v.save_overlays, v.save_full, v.save_masks) == (
        "magma", 0.45, True, True, True)
    assert (config.app.theme, config.app.color, config.app.keys) == ("medtui-dark", "auto", {})


def test_sections_are_frozen():
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.decoding.max_new_tokens = 3  # type: ignore[misc]


def test_empty_file_gives_defaults_and_remembers_its_source(tmp_path):
    path = write(tmp_path, "")
    config = load_config(path)
    assert config == Config()
    assert config.source == path


# --- the example file -------------------------------------------------------------------------------


def test_example_equals_defaults_except_the_demo_dataset_it_points_at():
    config = load_config(EXAMPLE)
    expected = Config().with_overrides({
        "data.csv": EXAMPLE.resolve().parent / "demo.csv",
        "data.images": EXAMPLE.resolve().parent / "phantoms",
    })
    assert config == expected


def test_example_lists_every_key_with_a_comment():
    lines = EXAMPLE.read_text().splitlines()
    section = None
    documented: set[str] = set()
    for number, line in enumerate(lines):
        header = re.fullmatch(r"\[([a-z_.]+)\]", line.strip())
        if header:
            section = header.group(1)
            continue
        key = re.fullmatch(r"#?\s*([a-z_]+) = .*", line.strip())
        if key and section in SECTIONS:
            documented.add(f"{section}.{key.group(1)}")
            assert lines[number - 1].startswith("#"), f"no comment above {section}.{key.group(1)}"
        elif key and section == "app.keys":
            documented.add("app.keys")
    expected = {f"{name}.{spec.name}" for name, cls in SECTIONS.items() for spec in dataclasses.fields(cls)}
    assert documented == expected


# --- reading values ---------------------------------------------------------------------------------


def test_values_are_read_and_normalised(tmp_path):
    path = write(tmp_path, """
[model]
name_or_path = "demo"
device = "CUDA:1"
dtype = "bfloat16"
revision = "abc123"

[decoding]
max_new_tokens = 8

[analysis]
terms = ["effusion", " pneumothorax "]
layers = [17, 34]
default_row = 3

[robustness]
enabled = true
contrast = 1
preprocessing = ["Pad"]

[app.keys]
quit = "ctrl+q"
layer_next = "]"
""")
    config = load_config(path)
    assert (config.model.name_or_path, config.model.device, config.model.dtype) == ("demo", "cuda:1", "bf16")
    assert config.model.revision == "abc123"
    assert config.decoding.max_new_tokens == 8
    assert config.analysis.terms == ("effusion", "pneumothorax")
    assert config.analysis.layers == (17, 34) and config.analysis.layer_span == (17, 34)
    assert config.analysis.default_row == 3
    assert config.robustness.enabled is True
    assert config.robustness.contrast == 1.0 and isinstance(config.robustness.contrast, float)
    assert config.robustness.preprocessing == ("pad",)
    assert config.app.keys == {"quit": "ctrl+q", "layer_next": "]"}


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(folder, '[data]\ncsv = "sets/hp.csv"\nimages = "/abs/images"\n'
                         '[model]\nname_or_path = "./weights/medgemma"\n')
    config = load_config(path)
    assert config.data.csv == folder.resolve() / "sets/hp.csv"
    assert config.data.images == Path("/abs/images")
    assert config.model.name_or_path == str(folder.resolve() / "weights/medgemma")


def test_hub_ids_are_not_treated_as_paths(tmp_path):
    path = write(tmp_path, '[model]\nname_or_path = "google/medgemma-4b-it"\n')
    assert load_config(path).model.name_or_path == "google/medgemma-4b-it"


# --- overrides --------------------------------------------------------------------------------------


def test_with_overrides_returns_a_new_config_and_keeps_the_original():
    base = Config()
    changed = base.with_overrides(**{"model.name_or_path": "x", "decoding.max_new_tokens": 8})
    assert changed.model.name_or_path == "x"
    assert changed.decoding.max_new_tokens == 8
    assert changed.model.device == "auto"
    assert base.model.name_or_path == "demo" and base.decoding.max_new_tokens == 128
    assert changed.robustness is base.robustness


def test_with_overrides_accepts_a_mapping_and_checks_values():
    changed = Config().with_overrides({"model.dtype": "float16", "analysis.layers": [0, 5]})
    assert changed.model.dtype == "fp16"
    assert changed.analysis.layers == (0, 5)
    with pytest.raises(ConfigError, match=r"'decoding.max_new_tokens' in the command's flags must be an integer"):
        Config().with_overrides({"decoding.max_new_tokens": "8"})


def test_with_overrides_sets_one_key_binding_and_keeps_the_rest():
    base = Config().with_overrides({"app.keys": {"quit": "ctrl+q"}})
    changed = base.with_overrides({"app.keys.help": "f1"})
    assert changed.app.keys == {"quit": "ctrl+q", "help": "f1"}
    assert base.app.keys == {"quit": "ctrl+q"}


def test_with_overrides_names_unknown_keys():
    known = r"\(known: max_new_tokens, batch_size\)"
    with pytest.raises(ConfigError, match=r"unknown key 'decoding.max_tokens' in the command's flags " + known):
        Config().with_overrides({"decoding.max_tokens": 8})
    with pytest.raises(ConfigError,
                       match=r"unknown key 'modle.device' in the command's flags \(known sections: model,"):
        Config().with_overrides({"modle.device": "cpu"})


# --- JSON ---------------------------------------------------------------------------------------------


def test_to_json_is_plain_json_and_round_trips(tmp_path):
    config = load_config(write(tmp_path, '[data]\ncsv = "a.csv"\n[analysis]\nlayers = [2, 4]\nterms = ["x"]\n'
                                          '[app.keys]\nquit = "q"\n'))
    data = config.to_json()
    text = json.dumps(data)
    assert set(data) == set(SECTIONS)
    assert data["data"]["csv"] == str(tmp_path.resolve() / "a.csv")
    assert data["analysis"]["layers"] == [2, 4]
    assert data["robustness"]["preprocessing"] == ["pad", "crop"]
    assert data["model"]["revision"] is None
    assert Config.from_json(json.loads(text)) == config


# --- errors -------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    message = error_of(tmp_path / "nope.toml")
    assert "not found" in message and "nope.toml" in message


def test_directory(tmp_path):
    assert "directory" in error_of(tmp_path)


def test_unknown_key_is_named_with_the_known_ones(tmp_path):
    path = write(tmp_path, "[decoding]\nmax_tokens = 8\n")
    assert error_of(path) == f"unknown key 'decoding.max_tokens' in {path} (known: max_new_tokens, batch_size)"


def test_unknown_section_is_named(tmp_path):
    path = write(tmp_path, "[modle]\ndevice = 'cpu'\n")
    message = error_of(path)
    assert "unknown section '[modle]'" in message and str(path) in message
    assert "known: " + ", ".join(SECTIONS) in message and "model" in SECTIONS


def test_top_level_key_that_is_not_a_section_is_rejected(tmp_path):
    path = write(tmp_path, 'model = "google/medgemma-4b-it"\n')
    assert "'model'" in error_of(path) and "must be a table" in error_of(path)


@pytest.mark.parametrize(("toml", "key", "expected"), [
    ('[decoding]\nmax_new_tokens = "24"', "decoding.max_new_tokens", "an integer >= 1"),
    ("[decoding]\nmax_new_tokens = 0", "decoding.max_new_tokens", "an integer >= 1"),
    ("[decoding]\nmax_new_tokens = 2.5", "decoding.max_new_tokens", "an integer >= 1"),
    ('[robustness]\nenabled = "yes"', "robustness.enabled", "true or false"),
    ("[robustness]\nnoise_sigma = -1", "robustness.noise_sigma", "a number >= 0"),
    ("[robustness]\ncontrast = 0", "robustness.contrast", "a number > 0"),
    ("[robustness]\nseed = true", "robustness.seed", "an integer >= 0"),
    ('[robustness]\npreprocessing = ["pad", "squash"]', "robustness.preprocessing", "pad, crop, resize"),
    ('[robustness]\npreprocessing = "pad"', "robustness.preprocessing", "an array of strings"),
    ("[visualization]\noverlay_alpha = 1.5", "visualization.overlay_alpha", "a number >= 0 and <= 1"),
    ('[model]\ndevice = "gpu"', "model.device", "auto, cpu, cuda, cuda:N or cuda:auto"),
    ('[model]\ndtype = "int8"', "model.dtype", "one of auto, bf16, fp16, fp32"),
    ("[model]\nname_or_path = 3", "model.name_or_path", "a non-empty string"),
    ("[analysis]\nlayers = [5, 2]", "analysis.layers", '"all" or [start, end]'),
    ('[analysis]\nlayers = "some"', "analysis.layers", '"all" or [start, end]'),
    ("[analysis]\nterms = []", "analysis.terms", "an array of non-empty strings"),
    ('[analysis]\ndefault_row = "last"', "analysis.default_row", "one of decision, first_answer, answer, question"),
    ('[faithfulness]\nbaseline = "noise"', "faithfulness.baseline", "one of mean, zero, blur"),
    ('[analysis]\nhedged_answers = "yes"', "analysis.hedged_answers", "one of uncertain, lean"),
    ("[faithfulness]\nrandom_orders = 0", "faithfulness.random_orders", "an integer >= 1"),
    ('[prompt]\norder = "image_last"', "prompt.order", "one of text_first, image_first"),
    ('[prompt]\nsystem = ""', "prompt.system", "a non-empty string"),
    ('[prompt]\ngeneric_question = 1', "prompt.generic_question", "a non-empty string"),
    ('[app]\ncolor = "rainbow"', "app.color", "one of auto, truecolor, 256, 16, none"),
    ('[app]\nkeys = "q"', "app.keys", "a table"),
    ("[app.keys]\nquit = 1", "app.keys.quit", "a key string"),
])
def test_wrong_type_names_the_key_and_the_expected_type(tmp_path, toml, key, expected):
    path = write(tmp_path, toml + "\n")
    message = error_of(path)
    assert message.startswith(f"'{key}' in {path} must be "), message
    assert expected in message, message
    assert ", got " in message


def test_invalid_toml_gives_file_line_and_reason(tmp_path):
    path = write(tmp_path, '[model]\ndevice = "cpu"\ndtype = bf16\n')
    message = error_of(path)
    assert message.startswith(f"{path}: invalid TOML at line 3, column 9: "), message
    assert "Invalid value" in message


def test_duplicate_key_is_invalid_toml(tmp_path):
    path = write(tmp_path, "[decoding]\nmax_new_tokens = 8\nmax_new_tokens = 9\n")
    assert "invalid TOML at line 3" in error_of(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_bytes(b"[model]\nname_or_path = \"\xff\"\n")
    assert "not UTF-8" in error_of(path)
