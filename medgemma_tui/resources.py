"""Where the shipped fixtures (demo bundle) and themes live, for editable and plain installs alike."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _package_dir(package: str, repo_folder: str) -> Path:
    try:
        path = Path(str(resources.files(package)))
        if path.is_dir():
            return path
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / repo_folder


def fixtures_dir() -> Path:
    return _package_dir("medgemma_tui.fixtures", "fixtures")


def themes_dir() -> Path:
    return _package_dir("medgemma_tui.themes", "themes")


def demo_model_dir() -> Path:
    return fixtures_dir() / "demo-model"


def demo_dataset_csv() -> Path:
    return fixtures_dir() / "demo.csv"


def demo_images_dir() -> Path:
    return fixtures_dir() / "phantoms"


def lung_model_dir() -> Path:
    return fixtures_dir() / "lung-model"
