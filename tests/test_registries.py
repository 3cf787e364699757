"""One place for each method and study: a toy method and a toy study declared in one module
(``tests/toy_entries.py``) show up in `medtui eval --help`, the config's checks, the results tree, the
map views and the app's method tiles, and the built-in names are spelled in few modules."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.analysis.views import VIEWS, MapSpec, available_views, compute_view
from medgemma_tui.config import Config, ConfigError, load_config
from medgemma_tui.engine.attribution.methods import add_method_maps
from medgemma_tui.export.reader import read_results
from medgemma_tui.pipeline.studies import make_studies, study_names, with_studies
from medgemma_tui.registry import METHODS, STUDIES, UnknownNameError, chosen_method_names
from tests.toy_entries import TOY_METHOD, TOY_STUDY

ROOT = Path(__file__).resolve().parents[1]
CODE = [*sorted((ROOT / "medgemma_tui").rglob("*.py")), *sorted((ROOT / "cli").rglob("*.py"))]


@pytest.fixture
def toys():
    """The toy method and study registered for one test (the registries as they were afterwards)."""
    with METHODS.added(TOY_METHOD), STUDIES.added(TOY_STUDY):
        yield


@pytest.fixture
def demo_loader(demo_model, monkeypatch):
    import medgemma_tui.engine.loading as loading

    monkeypatch.setattr(loading, "load_for_capture", lambda *a, **k: demo_model)
    return demo_model


def test_the_toys_appear_in_eval_help_with_their_flag_and_name(toys):
    result = CliRunner().invoke(main, ["eval", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    flag = next(line for line in result.output.splitlines() if line.strip().startswith("--toy-length"))
    assert TOY_STUDY.help in flag
    assert "gradcam, toy_centre (default" in " ".join(result.output.split())  # --methods lists the registry


def test_eval_help_has_no_toy_once_it_is_unregistered():
    result = CliRunner().invoke(main, ["eval", "--help"], terminal_width=200)
    assert "--toy-length" not in result.output and "toy_centre" not in result.output
    assert "--robustness" in result.output and "--sanity" in result.output


def test_the_config_accepts_a_registered_method_and_names_the_registry_for_an_unknown_one(tmp_path, toys):
    path = tmp_path / "medtui.toml"
    path.write_text('[methods]\nnames = ["toy_centre", "ig"]\nsanity_methods = ["answer", "toy_centre"]\n')
    config = load_config(path)
    assert config.methods.names == ("toy_centre", "ig")
    assert config.methods.sanity_methods == ("answer", "toy_centre")
    path.write_text('[methods]\nnames = ["toy_center"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "from occlusion, rise, ig, gradcampp, gradient, gradcam, toy_centre" in str(info.value)
    with pytest.raises(ConfigError, match="toy_centre"):
        Config().with_overrides({"methods.names": ["nonesuch"]})


def test_the_config_rejects_the_toy_once_it_is_unregistered():
    with pytest.raises(ConfigError, match="from occlusion, rise, ig, gradcampp, gradient, gradcam, got"):
        Config().with_overrides({"methods.names": ["toy_centre"]})


def test_a_config_checks_method_names_before_any_engine_or_pipeline_module_is_imported():
    script = ("import sys\n"
              "from medgemma_tui.config import Config\n"
              "c = Config().with_overrides({'methods.names': ['ig', 'occlusion'],\n"
              "                             'methods.sanity_methods': ['answer']})\n"
              "assert c.methods.names == ('ig', 'occlusion')\n"
              "try:\n    Config().with_overrides({'methods.names': ['nonesuch']})\nexcept ValueError as e:\n"
              "    print(e)\n"
              "print(sorted(m for m in sys.modules if m.startswith(('medgemma_tui.engine', 'medgemma_tui.pipeline',"
              " 'medgemma_tui.analysis', 'torch'))))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    message, loaded = out.strip().splitlines()
    assert "from occlusion, rise, ig, gradcampp, gradient, gradcam" in message
    assert loaded == "[]"


def test_an_unknown_name_is_a_one_line_error_listing_the_registry(toys):
    with pytest.raises(UnknownNameError) as info:
        STUDIES["toy_lenght"]
    assert str(info.value) == ("unknown study 'toy_lenght' (known: robustness, one_pixel, faithfulness, methods, "
                               "heads, sanity, toy_length)")
    assert "toy_centre" in chosen_method_names() and "toy_lenght" not in STUDIES


def test_the_toy_study_is_chosen_by_its_flag_and_built_by_the_one_function_ray_uses(toys, demo_record):
    config = Config()
    assert study_names(config) == []
    assert study_names(config, asked={TOY_STUDY.name, "robustness"}) == ["robustness", TOY_STUDY.name]
    (study,) = make_studies(config, [TOY_STUDY.name])
    result = SimpleNamespace(analysis=SimpleNamespace(record=demo_record, extras={}))
    study(None, result)
    assert result.analysis.extras == {TOY_STUDY.name: {"answer_tokens": len(demo_record.answer_tokens)}}
    from medgemma_tui.pipeline import ray_eval

    assert ray_eval.make_studies is make_studies


def test_a_flag_sets_only_the_config_switches_another_study_reads():
    names = study_names(Config(), asked={"robustness", "faithfulness", "heads"})
    assert names == ["robustness", "faithfulness", "heads"]
    config = with_studies(Config(), names)
    assert config.faithfulness.enabled  # the methods study's deletion/insertion gains read it
    assert not config.robustness.enabled and not config.methods.heads  # run.json's config as the flags left it


def test_the_toy_method_is_a_map_view_with_its_own_description(toys, demo_record):
    record = copy.deepcopy(demo_record)
    assert TOY_METHOD.name in VIEWS and TOY_METHOD.name not in available_views(record)
    with pytest.raises(ValueError, match="needs maps computed with the model"):
        compute_view(record, MapSpec(view=TOY_METHOD.name))
    notes = add_method_maps(None, None, record, [TOY_METHOD.name], None)
    assert notes[TOY_METHOD.name]["cell"] == [record.grid[0] // 2, record.grid[1] // 2]
    assert list(available_views(record))[-1] == TOY_METHOD.name
    view = compute_view(record, MapSpec(view=TOY_METHOD.name))
    expected = np.zeros(record.grid, dtype=np.float32)
    expected[record.grid[0] // 2, record.grid[1] // 2] = 1.0
    np.testing.assert_array_equal(view.grid, expected)
    assert view.description == TOY_METHOD.description


def test_the_app_has_a_tile_for_the_toy_method(toys, demo_record):
    from medgemma_tui.app.screens.methods import method_tiles

    record = copy.deepcopy(demo_record)
    add_method_maps(None, None, record, [TOY_METHOD.name], None)
    box = np.zeros(record.grid)
    box[record.grid[0] // 2, record.grid[1] // 2] = 1  # the toy points into this box
    frame = SimpleNamespace(record=record, spec=MapSpec(rows="first_answer"),
                            analysis=SimpleNamespace(box_grid=box, pointing_cells=box > 0))
    tile = next(t for t in method_tiles(frame) if t.key == TOY_METHOD.name)
    assert tile.label == "toy" and tile.note.startswith("hit")  # the label the registry gives it


def test_eval_writes_the_toy_study_section_and_compares_the_toy_method(tmp_path, toys, demo_loader):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--export", str(out), "--limit", "1", "--toy-length", "--methods",
                                       TOY_METHOD.name, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    tree = read_results(out)
    key = tree.keys[0]
    study = json.loads((out / "robustness" / f"{key}.json").read_text())
    answer_tokens = json.loads((out / "grids" / f"{key}_meta.json").read_text())["answer_token_list"]
    assert study[TOY_STUDY.name] == {"answer_tokens": len(answer_tokens)}
    compared = study["methods"]["methods"]
    assert compared[TOY_METHOD.name]["description"] == TOY_METHOD.description
    table = pd.read_csv(out / "analysis" / "methods.csv")  # summed up by the study's table, as a built-in method
    assert TOY_METHOD.name in table["method"].tolist()
    run = json.loads((out / "run.json").read_text())
    assert TOY_STUDY.name in run["studies"] and run["config"]["methods"]["names"] == [TOY_METHOD.name]


def string_literals(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


@pytest.mark.parametrize("name", [name for name in METHODS if name != "answer"])
def test_each_built_in_methods_name_is_spelled_in_at_most_four_modules(name):
    spelled = [str(path.relative_to(ROOT)) for path in CODE if name in string_literals(path)]
    assert len(spelled) <= 4, spelled


@pytest.mark.parametrize("name", list(STUDIES))
def test_each_built_in_studys_name_is_spelled_in_at_most_four_modules(name):
    spelled = [str(path.relative_to(ROOT)) for path in CODE if name in string_literals(path)]
    assert len(spelled) <= 4, spelled


# the app's methods screen runs the methods study on one row's copied record and files it there itself
OUTSIDE_THE_APP = [path for path in CODE if "app" not in path.relative_to(ROOT).parts[:2]]


def test_the_studies_outputs_are_filed_under_their_names_by_make_studies_alone():
    """No study module files its own output: ``make_studies`` is the one place that writes ``extras``."""
    filing = [str(path.relative_to(ROOT)) for path in OUTSIDE_THE_APP
              if any(isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
                     and isinstance(node.value, ast.Attribute) and node.value.attr == "extras"
                     for node in ast.walk(ast.parse(path.read_text())))]
    assert filing == ["medgemma_tui/pipeline/studies/__init__.py"]


def test_the_toys_names_are_spelled_in_no_module_of_the_package():
    for path in CODE:
        text = path.read_text()
        assert TOY_METHOD.name not in text and TOY_STUDY.name not in text, path


def test_every_built_in_entrys_code_is_where_its_path_says():
    from medgemma_tui.registry import resolve

    for spec in METHODS.values():
        assert callable(resolve(spec.compute)), spec.name
    for spec in STUDIES.values():
        assert callable(resolve(spec.build)), spec.name
        assert spec.figure is None or callable(resolve(spec.figure)), spec.name
