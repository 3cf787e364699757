"""The dataset CSV (MIMIC-CXR hard-positive schema): samples, keys, variant groups, strategy kinds.

Columns (header names match case-insensitively, surrounding spaces ignored):

- required: ``image_path`` (relative to the images root), ``question``, ``answer``
  (also accepted: ``ground_truth``, ``label``, ``correct_answer``);
- filled when missing: ``study_id`` / ``dicom_id`` (""), ``baseline_question`` (= ``question``),
  ``variant_index`` (0), ``question_variant`` ("original" for index 0, else "hard_positive"),
  ``strategy`` ("");
- optional: ``bbox`` (``x,y,w,h`` in image pixels, boxes separated by ``;``) and ``finding``;
- anything else is kept, as text, in ``Sample.extra``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from medgemma_tui.errors import MedtuiError

Box = tuple[float, float, float, float]  # x, y, w, h in image pixels

REQUIRED = ("image_path", "question", "answer")
ALIASES: dict[str, tuple[str, ...]] = {
    "answer": ("ground_truth", "label", "correct_answer"),
}
KNOWN = (
    "study_id",
    "dicom_id",
    "image_path",
    "question",
    "answer",
    "baseline_question",
    "question_variant",
    "variant_index",
    "strategy",
    "bbox",
    "finding",
)

STRATEGY_KINDS = (
    "original",
    "phrasing_variation",
    "synonym_replacement",
    "clause_reordering",
    "register_shift",
    "voice_change",
    "other",
)

# Substrings (after lower-casing, '_'/'-' -> ' ') that name each kind.
_STRATEGY_WORDS: dict[str, tuple[str, ...]] = {
    "phrasing_variation": ("phras", "paraphras", "reword", "wording"),
    "synonym_replacement": ("synonym", "lexical substitution", "word substitution"),
    "clause_reordering": ("reorder", "re order", "clause", "word order", "restructur"),
    "register_shift": ("register", "formal", "colloquial", "lay term", "layman", "lay language",
                       "technical", "jargon", "tone"),
    "voice_change": ("voice", "passive", "active"),
    "original": ("original", "baseline", "none", "identity", "unchanged"),
}
_STRATEGY_SPLIT = re.compile(r"\s*(?:\+|,|&|/|;|\|)\s*|\s+and\s+|\s+with\s+")


class DatasetError(MedtuiError, ValueError):
    """A dataset CSV that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Sample:
    key: str  # unique per CSV row, filesystem-safe, e.g. s50414267_02aa804e_v0
    row: int  # 0-based data row of the CSV (the header is not a row)
    study_id: str
    dicom_id: str
    image_path: str  # as written in the CSV
    image: Path  # image_path resolved against the images root
    question: str
    answer: str
    baseline_question: str
    question_variant: str
    variant_index: int
    strategy: str  # free text as written
    bbox: tuple[Box, ...] = ()
    finding: str = ""
    extra: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def is_original(self) -> bool:
        return self.variant_index == 0

    @property
    def strategy_kinds(self) -> tuple[str, ...]:
        """Named kinds of the paraphrase; ("original",) for the original question."""
        if self.is_original and not self.strategy.strip():
            return ("original",)
        return normalise_strategy(self.strategy)

    @property
    def group(self) -> tuple[str, str]:
        return (self.image_path, self.baseline_question)


@dataclass(frozen=True)
class Dataset:
    samples: tuple[Sample, ...]
    path: Path
    images_root: Path
    columns: tuple[str, ...]  # the CSV header as written

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def by_key(self, key: str) -> Sample:
        for sample in self.samples:
            if sample.key == key:
                return sample
        raise KeyError(key)

    def groups(self) -> dict[tuple[str, str], list[Sample]]:
        """(image_path, baseline_question) -> its variants sorted by variant_index (then row)."""
        found: dict[tuple[str, str], list[Sample]] = {}
        for sample in self.samples:
            found.setdefault(sample.group, []).append(sample)
        return {group: sorted(members, key=lambda s: (s.variant_index, s.row))
                for group, members in found.items()}

    def missing_images(self) -> list[Sample]:
        return [sample for sample in self.samples if not sample.image.is_file()]


def load_dataset(csv_path: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None
                 ) -> Dataset:
    """Read the CSV; images_root defaults to the CSV's folder."""
    path = Path(csv_path)
    if not path.exists():
        raise DatasetError(f"dataset CSV not found: {path}")
    if path.is_dir():
        raise DatasetError(f"dataset CSV is a directory: {path}")
    root = Path(images_root) if images_root is not None else path.parent
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                            skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise DatasetError(f"{path}: empty CSV (no header, no rows)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot parse CSV ({_one_line(exc)})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read CSV ({_one_line(exc)})") from exc

    columns = tuple(str(name) for name in frame.columns)
    where = _resolve_columns(columns, path)
    if frame.empty:
        raise DatasetError(f"{path}: empty CSV (a header but no rows)")

    raw = [_read_row(frame, row, where, path, root) for row in range(len(frame))]
    keys = _unique_keys([_base_key(r, tag) for r, tag in zip(raw, _question_tags(raw), strict=True)])
    samples = tuple(Sample(key=key, **fields) for key, fields in zip(keys, raw, strict=True))
    return Dataset(samples=samples, path=path, images_root=root, columns=columns)


# --- columns ----------------------------------------------------------------------------------------


def _resolve_columns(columns: tuple[str, ...], path: Path) -> dict[str, str]:
    """Canonical name -> the CSV's own header for it; names match case-insensitively."""
    by_norm: dict[str, str] = {}
    for name in columns:
        by_norm.setdefault(name.strip().lower(), name)
    where: dict[str, str] = {}
    for canonical in KNOWN:
        for candidate in (canonical, *ALIASES.get(canonical, ())):
            if candidate in by_norm:
                where[canonical] = by_norm[candidate]
                break
    for canonical in REQUIRED:
        if canonical not in where:
            aliases = ALIASES.get(canonical, ())
            also = f"also accepted: {', '.join(aliases)}; " if aliases else ""
            found = ", ".join(columns) if columns else "none"
            raise DatasetError(f"{path}: missing column '{canonical}' ({also}columns found: {found})")
    return where


def _read_row(frame: pd.DataFrame, row: int, where: dict[str, str], path: Path, root: Path) -> dict:
    record = frame.iloc[row]

    def cell(canonical: str) -> str | None:
        name = where.get(canonical)
        return None if name is None else str(record[name]).strip()

    def place() -> str:
        return f"{path}: row {row} (line {row + 2})"

    image_path = cell("image_path") or ""
    question = cell("question") or ""
    if not image_path:
        raise DatasetError(f"{place()}: empty 'image_path'")
    if not question:
        raise DatasetError(f"{place()}: empty 'question'")

    index_text = cell("variant_index")
    if not index_text:
        variant_index = 0
    else:
        try:
            number = float(index_text)
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise DatasetError(f"{place()}: 'variant_index' must be a whole number, got {index_text!r}")
        variant_index = int(number)

    variant = cell("question_variant") or ("original" if variant_index == 0 else "hard_positive")
    bbox_text = cell("bbox") or ""
    try:
        boxes = parse_bbox(bbox_text)
    except ValueError as exc:
        raise DatasetError(f"{place()}: unparseable bbox {bbox_text!r} ({exc})") from exc

    used = set(where.values())
    extra = {str(name): str(record[name]) for name in frame.columns if name not in used}
    return {
        "row": row,
        "study_id": cell("study_id") or "",
        "dicom_id": cell("dicom_id") or "",
        "image_path": image_path,
        "image": root / image_path,
        "question": question,
        "answer": cell("answer") or "",
        "baseline_question": cell("baseline_question") or question,
        "question_variant": variant,
        "variant_index": variant_index,
        "strategy": cell("strategy") or "",
        "bbox": boxes,
        "finding": cell("finding") or "",
        "extra": extra,
    }


# --- bbox ---------------------------------------------------------------------------------------------


def parse_bbox(text: str) -> tuple[Box, ...]:
    """'x,y,w,h;x,y,w,h' -> ((x, y, w, h), ...); empty -> (). Raises ValueError saying what is wrong."""
    boxes: list[Box] = []
    for part in text.split(";"):
        part = part.strip().strip("[]()").strip()
        if not part:
            continue
        pieces = [p for p in re.split(r"[,\s]+", part) if p]
        if len(pieces) != 4:
            raise ValueError(f"a box needs 4 numbers x,y,w,h, got {len(pieces)} in {part!r}")
        try:
            x, y, w, h = (float(p) for p in pieces)
        except ValueError:
            raise ValueError(f"not a number in {part!r}") from None
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise ValueError(f"non-finite value in {part!r}")
        if w <= 0 or h <= 0:
            raise ValueError(f"width and height must be positive in {part!r}")
        boxes.append((x, y, w, h))
    return tuple(boxes)


# --- keys ---------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MIMIC_DICOM_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")


def _safe(text: str, limit: int = 48) -> str:
    text = _UNSAFE.sub("_", text.strip())
    text = re.sub(r"_+", "_", text).strip("._-")
    return text[:limit].rstrip("._-")


def _question_tags(raw: list[dict]) -> list[str]:
    """A short stable tag of the baseline question, only for films asked more than one baseline question.

    Keys stay ``study_dicom_vN`` where that is unambiguous; a film with two questions gets
    ``study_dicom_q{hash}_vN`` so its variants never collide, whatever the row order.
    """
    questions: dict[tuple[str, str, str], set[str]] = {}
    for r in raw:
        film = (r["study_id"], r["dicom_id"], r["image_path"])
        questions.setdefault(film, set()).add(r["baseline_question"].strip().lower())
    tags = []
    for r in raw:
        film = (r["study_id"], r["dicom_id"], r["image_path"])
        baseline = r["baseline_question"].strip().lower()
        tags.append("q" + hashlib.sha1(baseline.encode()).hexdigest()[:6] if len(questions[film]) > 1 else "")
    return tags


def _base_key(fields: dict, question_tag: str = "") -> str:
    study = fields["study_id"]
    if study.isdigit():
        study = f"s{study}"  # MIMIC-CXR's own folder name for a study
    dicom = fields["dicom_id"]
    if _MIMIC_DICOM_ID.match(dicom.lower()):
        dicom = dicom[:8]  # five 8-hex groups: the first is unique in practice; collisions get _r{row}
    if not study and not dicom:
        dicom = Path(fields["image_path"]).stem
    parts = [p for p in (_safe(study), _safe(dicom), question_tag) if p]
    index = fields["variant_index"]
    parts.append(f"v{index}" if index >= 0 else f"vm{-index}")
    return "_".join(parts)


def _unique_keys(bases: list[str]) -> list[str]:
    """The first row with a key keeps it; later rows with the same key get _r{row} appended."""
    taken = set(bases)
    seen: set[str] = set()
    keys: list[str] = []
    for row, base in enumerate(bases):
        key = base
        if key in seen:
            key = f"{base}_r{row}"
            while key in taken:
                key += "x"
        seen.add(key)
        taken.add(key)
        keys.append(key)
    return keys


# --- strategy -----------------------------------------------------------------------------------------


def normalise_strategy(text: str | None) -> tuple[str, ...]:
    """Free-text paraphrase strategy -> kinds from STRATEGY_KINDS, in that canonical order.

    Empty or "original" -> ("original",); text naming no known kind -> ("other",); a combination
    ("Synonym replacement + clause reordering") -> every kind it names, plus "other" for any part
    that names none.
    """
    cleaned = re.sub(r"[_\-]+", " ", (text or "")).strip().lower()
    if not cleaned or cleaned in ("nan", "n/a", "na"):
        return ("original",)
    kinds: set[str] = set()
    for part in _STRATEGY_SPLIT.split(cleaned):
        part = re.sub(r"\s+", " ", part).strip()
        if not part:
            continue
        named = {kind for kind, words in _STRATEGY_WORDS.items() if any(w in part for w in words)}
        if len(named) > 1:
            named.discard("original")  # "original phrasing varied" names a change, not the original
        kinds |= named or {"other"}
    if len(kinds) > 1:
        kinds.discard("original")
    return tuple(kind for kind in STRATEGY_KINDS if kind in kinds) or ("original",)


def _one_line(exc: BaseException) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
