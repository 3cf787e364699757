"""Which rows count together: a row's study (what the bootstrap resamples) and whether its finding is focal
(what the pointing game counts)."""

from __future__ import annotations

import pandas as pd

# diffuse findings: the box is most of the film (the whole heart for cardiomegaly), so pointing says little
DIFFUSE_FINDINGS = frozenset({
    "cardiomegaly", "enlarged cardiac silhouette", "enlarged heart", "edema", "pulmonary edema", "emphysema",
    "fibrosis", "interstitial", "no finding", "normal", "support devices",
})


def finished(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that finished (an empty ``error``)."""
    return rows[rows["error"].astype(str) == ""] if "error" in rows and not rows.empty else rows


def is_focal(finding: str) -> bool:
    return str(finding).strip().lower() not in DIFFUSE_FINDINGS


def study_of(rows: pd.DataFrame) -> pd.Series:
    """Each row's study: ``study_id``, else its image (rows without an id group by film)."""
    study = rows["study_id"].astype(str) if "study_id" in rows else pd.Series("", index=rows.index)
    image = rows["image_path"].astype(str) if "image_path" in rows else rows["key"].astype(str)
    return study.where(study.str.strip() != "", image)
