"""The tree keeps every mask a row was analysed with, and the app reads them back as they were."""

from __future__ import annotations

import numpy as np
from PIL import Image

from medgemma_tui.app.session import tree_masks
from medgemma_tui.export.reader import read_results
from tests.support import demo_subset_csv, eval_config, run_tree


def test_each_mask_part_and_its_check_are_written_and_read_back(tmp_path, demo_model):
    counts, samples = run_tree(demo_model, demo_subset_csv(tmp_path, (0,)), tmp_path / "out",
                               eval_config(tmp_path, full=False, tokens=2))
    key = samples[0].key
    reader = read_results(tmp_path / "out")
    row, meta = reader.row(key), reader.load_meta(key)
    assert row["mask_quality"] == "ok" and meta["masks"]["quality"] == "ok"
    parts = {part: np.asarray(Image.open(tmp_path / "out" / "masks" / f"{key}_{part}.png")) > 127
             for part in ("body", "lungs", "lung_right", "lung_left", "mediastinum")}
    assert (parts["lungs"] == (parts["lung_right"] | parts["lung_left"])).all()
    assert parts["mediastinum"].any() and not (parts["mediastinum"] & parts["lungs"]).any()
    width = parts["lungs"].shape[1]
    assert np.flatnonzero(parts["lung_left"].any(axis=0)).mean() > width / 2  # the patient's left: image right
    masks = tree_masks(reader, key, reader.load_record(key))
    assert (masks.mediastinum == parts["mediastinum"]).all() and masks.quality == "ok"
    assert meta["masks"]["mediastinum"] == float(parts["mediastinum"].mean())
