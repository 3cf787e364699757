"""A toy attribution method and a toy study, declared here and nowhere else.

``tests/test_registries.py`` registers them (``registry.METHODS.added``, ``registry.STUDIES.added``) and
looks for them wherever the registries feed: `medtui eval --help`, the config's checks, the results
tree, the map views and the app's tiles. No module of the package names them.
"""

from __future__ import annotations

import numpy as np

from medgemma_tui.registry import MethodSpec, StudySpec


def centre_cell_map(loaded, image, record, settings) -> tuple[np.ndarray, dict]:
    """All the mass on the grid's centre cell, whatever the film: a map whose every value is known."""
    rows, cols = record.grid
    flat = np.zeros(rows * cols, dtype=np.float32)
    flat[(rows // 2) * cols + cols // 2] = 1.0
    return flat, {"cell": [rows // 2, cols // 2]}


def answer_length_study(config):
    """A study that counts the answer's tokens (no model pass); ``make_studies`` files it under its name."""

    def study(loaded, result) -> dict:
        return {"answer_tokens": len(result.analysis.record.answer_tokens)}

    return study


TOY_METHOD = MethodSpec("toy_centre", "Toy centre", centre_cell_map,
                        "toy centre: every bit of the map on the grid's centre cell", needs=("record",),
                        tile="toy")
TOY_STUDY = StudySpec("toy_length", answer_length_study, "Count each answer's tokens (a toy study).",
                      flag="--toy-length", needs=("record",), summary="robustness/{key}.json only")
