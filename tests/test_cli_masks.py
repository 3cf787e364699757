"""`medtui masks`: masks at each film's size, a contact sheet, JSON lines, and one line per bad file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import main
from medgemma_tui.resources import demo_images_dir

FILMS = ("p0001.png", "p0002.png")


def run_masks(*args: str):
    return CliRunner().invoke(main, ["masks", *args], catch_exceptions=False)


def _folder_with_a_bad_file(tmp_path):
    src = tmp_path / "films"
    src.mkdir()
    for name in FILMS:
        shutil.copy(demo_images_dir() / name, src / name)
    wide = np.array(Image.open(demo_images_dir() / "p0003.png").convert("L"))[40:400, :]  # 360 x 448
    Image.fromarray(np.dstack([wide] * 3)).save(src / "wide_rgb.jpg")
    (src / "broken.png").write_bytes(b"not a png at all")
    return src


def test_masks_on_a_folder_writes_every_good_film_and_names_the_bad_one(tmp_path):
    src = _folder_with_a_bad_file(tmp_path)
    out = tmp_path / "out"
    result = run_masks(str(src), "--out", str(out), "--json")
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert len([e for e in errors if "broken.png" in e]) == 1
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert sorted(row["stem"] for row in lines) == ["p0001", "p0002", "wide_rgb"]
    for row in lines:
        assert row["quality"] in ("ok", "implausible") and row["seconds"] >= 0
        assert set(row["areas"]) == {"body", "lung_right", "lung_left", "mediastinum"}
        film = Image.open(src / (row["stem"] + (".jpg" if row["stem"] == "wide_rgb" else ".png")))
        for part in ("body", "lung_left", "lung_right", "mediastinum"):
            with Image.open(out / f"{row['stem']}_{part}.png") as im:
                m = np.array(im)
            assert im.size == film.size and im.mode == "L"
            assert set(np.unique(m)) <= {0, 255}
            assert (m > 0).mean() == pytest.approx(row["areas"][part], abs=1e-4)
    with Image.open(out / "p0001_lung_left.png") as im:  # the patient's left lung: image right
        cols = np.nonzero(np.array(im))[1]
        assert cols.mean() > im.size[0] / 2
    assert (out / "contact_sheet.png").exists()
    assert not (out / "broken_body.png").exists()


def test_masks_reads_the_films_of_a_dataset_csv_once_each(tmp_path):
    src = tmp_path / "films"
    src.mkdir()
    shutil.copy(demo_images_dir() / FILMS[0], src / FILMS[0])
    csv = tmp_path / "data.csv"
    csv.write_text(f"image_path,question,answer\n{FILMS[0]},Is there a nodule?,no\n{FILMS[0]},Is the heart big?,no\n")
    result = run_masks("--data", str(csv), "--images", str(src), "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 1
    assert (tmp_path / "out" / "p0001_mediastinum.png").exists()


def test_masks_without_films_is_a_usage_error_in_one_line(tmp_path):
    result = run_masks("--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "medtui: error:" in result.stderr


def test_masks_command_does_not_import_textual():
    code = ("from click.testing import CliRunner\nfrom cli.main import main\n"
            "assert CliRunner().invoke(main, ['masks', '--help']).exit_code == 0\n"
            "import sys\nprint('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
