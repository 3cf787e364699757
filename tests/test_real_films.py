"""`medtui eval` on real films: the question set built from the public films' own labels, and a few of its
rows run through eval into a results tree. Skipped where the shared data folder is absent."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from medgemma_tui.data import real_films
from medgemma_tui.data.schema import load_dataset

ROOT = real_films.default_root()
SMALL_RGBA = "41591_2020_819_Fig1_HTML.webp-day10.png"  # 255 x 249, RGBA, from a journal figure
needs_data = pytest.mark.skipif(not (ROOT / "real-cxr").is_dir(), reason=f"no real films at {ROOT}")


def test_without_the_data_folder_the_builder_says_so_in_one_line(tmp_path, capsys):
    assert real_films.main([str(tmp_path / "out.csv"), "--root", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no real films at" in err
    assert not (tmp_path / "out.csv").exists()


@needs_data
def test_the_question_set_states_answers_only_where_the_source_labels_do(tmp_path):
    out = tmp_path / "real.csv"
    assert real_films.main([str(out), "--root", str(ROOT), "--mask-films", "2"]) == 0
    dataset = load_dataset(out, ROOT)
    by_study: dict[str, list] = {}
    for sample in dataset:
        assert sample.problem is None and (ROOT / sample.image_path).exists()
        by_study.setdefault(sample.study_id, []).append(sample)
    cardio = [s for s in by_study["nih-00000001"] if s.finding == "cardiomegaly"]
    assert {s.answer for s in cardio} == {"yes"} and len(cardio) == 4
    assert len({s.group for s in cardio}) == 1 and sorted(s.variant_index for s in cardio) == [0, 1, 2, 3]
    assert {s.answer for s in by_study["tbx11k-h0001"] if s.finding == "tuberculosis"} == {"no"}
    tb = [s for s in by_study["tbx11k-tb0005"] if s.finding == "tuberculosis"]
    # the TBX11K expert box, COCO [x, y, w, h] in the 512 px film, in the image's right half (patient's left)
    assert all(s.answer == "yes" and len(s.bbox) == 1 for s in tb)
    x, y, w, h = tb[0].bbox[0]
    assert (x, y, w, h) == pytest.approx((381.83, 126.87, 40.24, 44.57), abs=0.01) and x > 256
    # no label comes with the DICOM or the lung-mask films: their rows are run, not scored
    assert {s.answer for s in by_study["siim-pa-chest"]} == {real_films.UNLABELLED}
    mask_studies = [k for k in by_study if k.startswith("lungmask-")]
    assert len(mask_studies) == 2
    assert all(not s.is_scored for k in mask_studies for s in by_study[k])
    assert sum(s.is_scored for s in dataset) == 16


@needs_data
def test_eval_runs_real_films_into_a_tree_with_masks_pointing_intervals_and_faithfulness(tmp_path, demo_model,
                                                                                           monkeypatch):
    """Three real films, each a kind the synthetic demo never had: the TBX11K film with its box (RGB
    PNG), the SIIM DICOM (JPEG-compressed, 1024 px) and a small non-square RGBA lung-mask film."""
    import medgemma_tui.engine.loading as loading
    from cli.main import main

    monkeypatch.setattr(loading, "load_for_capture", lambda *a, **k: demo_model)
    rows = real_films.real_film_rows(ROOT, mask_films=100)  # every film of the manifest (CSV rows only)
    wanted = [next(r for r in rows if r["study_id"] == "tbx11k-tb0005" and r["variant_index"] == "0"),
              next(r for r in rows if r["study_id"] == "tbx11k-tb0005" and r["variant_index"] == "1"),
              next(r for r in rows if r["study_id"] == "siim-pa-chest"),
              next(r for r in rows if r["image_path"].endswith(SMALL_RGBA))]
    data = tmp_path / "real.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=real_films.COLUMNS)
        writer.writeheader()
        writer.writerows(wanted)
    config = tmp_path / "medtui.toml"
    config.write_text('[model]\nname_or_path = "demo"\ndevice = "cpu"\ndtype = "fp32"\n[decoding]\nmax_new_tokens = 4\n'
                      "[faithfulness]\nsteps = 2\nrandom_orders = 2\n"
                      "[visualization]\nsave_full = false\nsave_overlays = false\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--export", str(out), "--data", str(data), "--images", str(ROOT),
                                       "--config", str(config), "--faithfulness"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    from medgemma_tui.export.columns import read_rows

    table = read_rows(out / "evaluation_results.csv")
    assert (table["error"] == "").all(), table["error"].tolist()
    sizes = dict(zip(table["study_id"], zip(table["image_width"], table["image_height"], strict=True), strict=False))
    assert sizes["tbx11k-tb0005"] == (512, 512) and sizes["siim-pa-chest"] == (1024, 1024)
    assert sizes["lungmask-41591_2020_819_Fig1_HTML.webp-day10"] == (255, 249)
    assert all(reason for reason in table["answer_reason"])  # every answer says how it was read
    for key in table["key"]:
        meta = json.loads((out / "grids" / f"{key}_meta.json").read_text(encoding="utf-8"))
        assert meta["answer_reason"]
        lungs = np.asarray(Image.open(out / "masks" / f"{key}_lungs.png"))
        assert lungs.shape[:2] == (meta["image_height"], meta["image_width"]) and lungs.max() == 255
        assert (out / "robustness" / f"{key}.json").exists()
    boxed = table[table["study_id"] == "tbx11k-tb0005"]
    # the pointing rule on the 512 px film (32 px cells, centres at 16 + 32 k): the box x 381.8..422.1, y 126.9..171.4
    # is within 15 px of centres x 368, 400, 432 and y 112, 144, 176, less the two top corners (20.3 and 17.9
    # px away): 7 cells; the box also reaches into columns 11..13 of rows 3..5 (row 3 by 1.1 px), which adds
    # those two corners: 9 of 256 cells
    assert (boxed["pointing_chance"] == 9 / 256).all() and boxed["pointing_hit"].isin([0.0, 1.0]).all()
    assert table.loc[table["study_id"] != "tbx11k-tb0005", "pointing_hit"].isna().all()
    summary = json.loads((out / "analysis" / "summary.json").read_text(encoding="utf-8"))
    assert summary["scored"] == 2 and summary["pointing_game_n"] == 2
    assert set(summary["intervals"]) >= {"accuracy", "pointing_game", "mass_in_box_lift", "deletion_gain_prob"}
    assert summary["interval_studies"]["deletion_gain_prob"] == 3 and summary["intervals"]["deletion_gain_prob"]
    assert summary["faithfulness"]["samples"] == 4
    # one boxed study: no interval for the pointing game (resampling one study gives no spread), and said so
    assert summary["intervals"]["pointing_game"] is None and summary["interval_studies"]["pointing_game"] == 1
    assert {"dataset_intervals.png", "faithfulness.png"} <= set(summary["plots"])
    for name in summary["plots"]:
        assert (out / "analysis" / name).stat().st_size > 0
