"""A small question set over real, labelled public chest films, for running ``medtui eval`` on real material.

The films are not in the repository: they are read from a data folder (by default ``../shared/data``
beside the checkout, or ``$MEDTUI_REAL_DATA``) holding

- ``real-cxr/``: four public films, each with a source label: NIH ChestX-ray14 ``00000001_000``
  (labelled cardiomegaly, and nothing else), TBX11K ``h0001`` (healthy), TBX11K ``tb0005`` (active
  tuberculosis, one expert box in ``tbx11k_boxes.json``, COCO ``[x, y, w, h]``) and a SIIM-ACR sample
  DICOM (no label given with it);
- ``lung-masks/``: films of the public COVID-19 image data collection with radiologists' lung masks
  (``manifest.csv``); the manifest carries no finding label.

Each question states its ground truth only where the source's label does (``yes`` for the labelled
finding, ``no`` for a finding the label set rules out: a TBX11K "healthy" film has no tuberculosis, an
NIH film labelled only cardiomegaly has no pneumothorax); every other row's answer is ``unlabelled``,
which ``eval`` runs and does not score. The labelled questions come with hard-positive paraphrases
(the hard-positive schema of the dataset CSV: ``baseline_question``, ``variant_index``, ``strategy``),
and the tuberculosis rows carry the TBX11K box as ``bbox`` with ``finding`` = ``tuberculosis``.

``python -m medgemma_tui.data.real_films OUT.csv`` writes the CSV (image paths relative to the data
folder); then ``medtui eval --data OUT.csv --images DATA --export OUT``. Without the data folder it
says so in one line and exits 2.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

UNLABELLED = "unlabelled"  # kept and run by eval, not scored (data.schema.normalise_answer keeps it as written)
COLUMNS = ("study_id", "dicom_id", "image_path", "question", "answer", "baseline_question", "question_variant",
           "variant_index", "strategy", "finding", "bbox", "source", "label_source")


@dataclass(frozen=True)
class Question:
    """One question with its paraphrases: ``(text, strategy)``, the original first."""

    phrasings: tuple[tuple[str, str], ...]
    answer: str  # yes, no or UNLABELLED
    finding: str = ""
    boxed: bool = False  # the row carries the film's ground-truth box


CARDIOMEGALY = Question((
    ("Is there cardiomegaly?", ""),
    ("Is the heart enlarged?", "synonym replacement"),
    ("Does this radiograph show an enlarged cardiac silhouette?", "register shift"),
    ("Is cardiomegaly present on this film?", "phrasing variation"),
), "yes", "cardiomegaly")
PNEUMOTHORAX_NO = Question((
    ("Is there a pneumothorax?", ""),
    ("Is a pneumothorax present?", "phrasing variation"),
), "no", "pneumothorax")
TUBERCULOSIS_YES = Question((
    ("Is there evidence of tuberculosis?", ""),
    ("Are there signs of pulmonary tuberculosis?", "synonym replacement"),
    ("Does this chest film show tuberculosis?", "phrasing variation"),
    ("Tuberculosis: is it seen on this radiograph?", "clause reordering"),
), "yes", "tuberculosis", boxed=True)
TUBERCULOSIS_NO = Question(TUBERCULOSIS_YES.phrasings, "no", "tuberculosis")
NORMAL_YES = Question((
    ("Is this chest radiograph normal?", ""),
    ("Does this chest film look normal?", "phrasing variation"),
), "yes", "normal")
UNLABELLED_QUESTIONS = (
    Question((("Is there a pleural effusion?", ""),), UNLABELLED, "pleural effusion"),
    Question((("Is there a consolidation?", ""),), UNLABELLED, "consolidation"),
)
PNEUMOTHORAX_UNLABELLED = Question((("Is there a pneumothorax?", ""),), UNLABELLED, "pneumothorax")

# (study id, film under real-cxr/, source, what the source's label says, questions)
REAL_CXR = (
    ("nih-00000001", "nih_00000001_000.png", "NIH ChestX-ray14 00000001_000", "labels: Cardiomegaly",
     (CARDIOMEGALY, PNEUMOTHORAX_NO, *UNLABELLED_QUESTIONS)),
    ("tbx11k-h0001", "tbx11k_h0001.png", "TBX11K h0001", "category: healthy",
     (TUBERCULOSIS_NO, NORMAL_YES)),
    ("tbx11k-tb0005", "tbx11k_tb0005.png", "TBX11K tb0005", "category: active tuberculosis, one expert box",
     (TUBERCULOSIS_YES, *UNLABELLED_QUESTIONS)),
    ("siim-pa-chest", "siim_pa_chest.dcm", "SIIM-ACR pneumothorax challenge sample", "none given with the file",
     (PNEUMOTHORAX_UNLABELLED, *UNLABELLED_QUESTIONS)),
)
MASK_FILM_QUESTIONS = (Question((("Is there a consolidation?", ""), ("Is there an airspace opacity?",
                                                                     "synonym replacement")), UNLABELLED,
                                "consolidation"),)


class RealDataMissing(FileNotFoundError):
    """The data folder, or the part of it a question set needs, is absent."""


def default_root() -> Path:
    """``$MEDTUI_REAL_DATA``, else ``../shared/data`` beside the checkout, else ``/work/shared/data``."""
    if os.environ.get("MEDTUI_REAL_DATA"):
        return Path(os.environ["MEDTUI_REAL_DATA"])
    beside = Path(__file__).resolve().parents[3] / "shared" / "data"
    return beside if beside.is_dir() else Path("/work/shared/data")


def tbx11k_boxes(root: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """File name -> its COCO ``[x, y, w, h]`` boxes (in the film's pixels) from ``tbx11k_boxes.json``."""
    coco = json.loads((root / "real-cxr" / "tbx11k_boxes.json").read_text(encoding="utf-8"))
    names = {image["id"]: image["file_name"] for image in coco.get("images", [])}
    boxes: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in names.values()}
    for annotation in coco.get("annotations", []):
        x, y, w, h = (float(v) for v in annotation["bbox"])
        boxes.setdefault(names[annotation["image_id"]], []).append((x, y, w, h))
    return boxes


def _rows(study: str, image: str, source: str, label: str, questions, boxes) -> Iterator[dict[str, str]]:
    for question in questions:
        baseline = question.phrasings[0][0]
        for index, (text, strategy) in enumerate(question.phrasings):
            yield {
                "study_id": study, "dicom_id": Path(image).stem, "image_path": image, "question": text,
                "answer": question.answer, "baseline_question": baseline,
                "question_variant": "original" if index == 0 else f"hard_positive_{index}",
                "variant_index": str(index), "strategy": strategy, "finding": question.finding,
                "bbox": ";".join(",".join(f"{v:.2f}" for v in box) for box in boxes) if question.boxed else "",
                "source": source, "label_source": label,
            }


def real_film_rows(root: Path | None = None, mask_films: int = 4) -> list[dict[str, str]]:
    """The question set's rows (``COLUMNS``), image paths relative to ``root``.

    ``mask_films``: how many films of ``lung-masks/manifest.csv`` to add, unlabelled, evenly spaced
    over the manifest (0 for none, all of them for as many or more). Raises ``RealDataMissing`` when
    ``root/real-cxr`` is absent (or the manifest, when mask films are asked for).
    """
    root = Path(root) if root is not None else default_root()
    if not (root / "real-cxr").is_dir():
        raise RealDataMissing(f"no real films at {root / 'real-cxr'} (set MEDTUI_REAL_DATA to the data folder)")
    boxes = tbx11k_boxes(root)
    rows: list[dict[str, str]] = []
    for study, name, source, label, questions in REAL_CXR:
        if (root / "real-cxr" / name).exists():
            rows.extend(_rows(study, f"real-cxr/{name}", source, label, questions, boxes.get(name, [])))
    if mask_films:
        manifest = root / "lung-masks" / "manifest.csv"
        if not manifest.exists():
            raise RealDataMissing(f"no lung-mask films at {manifest}")
        with manifest.open(encoding="utf-8", newline="") as handle:
            films = list(csv.DictReader(handle))
        # spread over the manifest, which mixes sizes (255 px to 3000 px) and modes (RGB, RGBA, gray)
        count = min(mask_films, len(films))
        films = [films[i * len(films) // count] for i in range(count)] if count else []
        for film in films:
            rows.extend(_rows(f"lungmask-{film['id']}", f"lung-masks/{film['image']}",
                              "COVID-19 image data collection (lung-masks)", "none in the manifest",
                              MASK_FILM_QUESTIONS, []))
    return rows


def real_film_csv(root: Path | None = None, mask_films: int = 4) -> str:
    """The question set as CSV text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(real_film_rows(root, mask_films))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m medgemma_tui.data.real_films",
                                     description="Write a question set over the real labelled films.")
    parser.add_argument("out", help="the CSV to write")
    parser.add_argument("--root", default=None, help="the data folder (default: $MEDTUI_REAL_DATA, ../shared/data)")
    parser.add_argument("--mask-films", type=int, default=4, help="unlabelled lung-mask films to add (default 4)")
    args = parser.parse_args(argv)
    root = Path(args.root) if args.root else default_root()
    try:
        text = real_film_csv(root, args.mask_films)
    except RealDataMissing as exc:
        print(f"real films: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_text(text, encoding="utf-8")
    rows = text.count("\n") - 1
    print(f"{args.out}: {rows} rows; run: medtui eval --data {args.out} --images {root} --export OUT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
