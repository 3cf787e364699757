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
