"""A plain `pip install .` ships every subpackage, the demo bundle and the themes."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "medgemma_tui").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found - listed == set()


def test_fixtures_and_themes_are_found_from_the_package():
    from medgemma_tui.colormaps import available
    from medgemma_tui.resources import demo_dataset_csv, demo_model_dir, themes_dir

    assert (demo_model_dir() / "model.safetensors").exists()
    assert demo_dataset_csv().exists()
    assert list(themes_dir().glob("*.toml"))
    assert {"magma", "viridis", "gray", "jet"} <= set(available())


def test_the_command_list_of_help_cuts_no_description_at_80_columns():
    from click.testing import CliRunner

    from cli.main import main

    result = CliRunner().invoke(main, ["--help"], terminal_width=80)
    commands = result.output.split("Commands:", 1)[1].strip().splitlines()
    assert len(commands) >= 7 and not any(line.endswith("...") for line in commands), commands


def test_eval_takes_no_plots_as_merge_does_and_tui_refuses_an_images_folder_that_is_not_there(tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    assert "--no-plots" in CliRunner().invoke(main, ["eval", "--help"]).output
    result = CliRunner().invoke(main, ["tui", "--images", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "does not exist" in result.output
