"""The dataset CSV (MIMIC-CXR hard-positive schema): samples, keys, variant groups, strategy kinds.

The delimiter (comma, semicolon, tab or pipe) is detected from the header; the file is UTF-8 (a byte
order mark is allowed). Header names match case-insensitively, surrounding spaces ignored, inner spaces
and hyphens read as ``_`` ("Image Path" is ``image_path``). Columns:

- required: ``question``, ``answer`` (also accepted: ``ground_truth``, ``label``, ``correct_answer``),
  and the film: ``image_path`` (relative to the images root) or ``dicom_id``. The film is looked up as
  ``image_path``, else ``{dicom_id}``, else ``{dicom_id}`` with ``.jpg``, ``.png``, ``.dcm``
  (``film_lookup``); ``Sample.image_found`` says which found it;
- the label column: where ``answer`` holds free text (a model's answer, as in a results CSV written by
  the system medtui replaces) and an alias holds yes/no labels, the alias is the label and ``answer``
  is kept as ``original_answer`` (``label_column``);
- filled when missing: ``study_id`` / ``dicom_id`` (""), ``baseline_question`` (= ``question``),
  ``variant_index`` (0), ``question_variant`` ("original" for index 0, else "hard_positive"),
  ``strategy`` ("");
- optional: ``bbox`` (``x,y,w,h`` in image pixels, boxes separated by ``;``) and ``finding``;
- anything else is kept, as text, in ``Sample.extra``.

Values: ``answer`` spellings of yes and no (``Yes``, ``NO``, `` yes ``, ``true``, ``1``) become
``yes``/``no``; other values (``maybe``) are kept and the row is not scored. ``strategy`` is stored
cleaned (``clean_strategy``). A bad row is kept with ``Sample.problem`` set (see ``load_dataset``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from medgemma_tui.data.film_lookup import find_film, unlist_path
from medgemma_tui.errors import MedtuiError, first_line

Box = tuple[float, float, float, float]  # x, y, w, h in image pixels

REQUIRED = ("question", "answer")
FILM_COLUMNS = ("image_path", "dicom_id")  # at least one names the film (film_lookup)
TEXT_ANSWER_NAME = "original_answer"  # where a free-text ``answer`` goes when an alias holds the labels
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


# The longest question a row may ask, in characters. A VQA question is a sentence or two (the hard-positive
# paraphrases run to about 150 characters); the record grows with the square of the prompt's length (the
# head-mean rows of every position, the question tokens' rows), so a pasted page would cost gigabytes.
MAX_QUESTION_CHARS = 1000


def question_problem(question: str) -> str | None:
    """Why ``question`` cannot be put to the model ("empty 'question'", too long), or None."""
    if not question.strip():
        return "empty 'question'"
    if len(question) > MAX_QUESTION_CHARS:
        return f"the question has {len(question):,} characters, more than the {MAX_QUESTION_CHARS:,} allowed"
    return None


class DatasetError(MedtuiError, ValueError):
    """A dataset CSV that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Sample:
    key: str  # unique per CSV row, filesystem-safe, e.g. s50414267_02aa804e_v0
    row: int  # 0-based data row of the CSV (the header is not a row)
    study_id: str
    dicom_id: str
    image_path: str  # as written in the CSV (a one-item list unwrapped); without one, the dicom_id name found
    image: Path  # the film found under the images root (film_lookup), else where image_path points
    question: str
    answer: str
    baseline_question: str
    question_variant: str
    variant_index: int
    strategy: str  # as written, in lower case with '_'/'-' as spaces (clean_strategy)
    bbox: tuple[Box, ...] = ()
    finding: str = ""
    extra: dict[str, str] = field(default_factory=dict, hash=False)
    line: int = 0  # 1-based line of the CSV file where the row starts (0: not from a file)
    problem: str | None = None  # why the row cannot run ("empty 'question'"); None for a good row
    image_found: str = ""  # how the film was found (film_lookup.FOUND_BY: "image_path", "dicom_id.jpg"); "" not found

    @property
    def is_scored(self) -> bool:
        """Whether the row can count in the accuracy: it can run and its ground truth is yes or no."""
        return self.problem is None and self.answer in (YES, NO)

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
    delimiter: str = ","  # as detected
    label_column: str = "answer"  # the CSV's own header of the ground truth (an alias such as ground_truth)

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
        """Rows that can run but whose image file is not there."""
        return [sample for sample in self.samples if sample.problem is None and not sample.image.is_file()]

    @property
    def problems(self) -> tuple[Sample, ...]:
        """Rows that cannot run (``Sample.problem`` says why); a run records each as a failed row."""
        return tuple(sample for sample in self.samples if sample.problem)

    @property
    def scored_count(self) -> int:
        """How many rows can count in the accuracy (yes/no ground truth, no problem)."""
        return sum(sample.is_scored for sample in self.samples)

    def unscored_reason(self) -> str | None:
        """Why no row can be scored, in one line; None when some row can."""
        if self.scored_count:
            return None
        runnable = [sample for sample in self.samples if sample.problem is None]
        values = sorted({sample.answer for sample in runnable})
        shown = ", ".join(repr(v[:40]) for v in values[:3]) + (", ..." if len(values) > 3 else "")
        return (f"no row can be scored: column {self.label_column!r} holds no yes/no label in any of "
                f"{len(runnable)} runnable rows ({shown or 'all empty'}); put the labels in 'answer' or "
                "'ground_truth'")


def duplicate_rows(samples: Iterator[Sample] | tuple[Sample, ...] | list[Sample]) -> list[tuple[Sample, Sample]]:
    """Each row that asks an earlier row's question (spaces and case aside) about the same film, with that
    earlier row. Both are kept, run and scored as rows of their own: the CSV's word is taken as given."""
    first: dict[tuple[str, str], Sample] = {}
    out = []
    for sample in samples:
        if sample.problem:
            continue
        key = (str(sample.image), " ".join(sample.question.lower().split()))
        if key in first:
            out.append((sample, first[key]))
        else:
            first[key] = sample
    return out


def load_dataset(csv_path: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None
                 ) -> Dataset:
    """Read the CSV; images_root defaults to the CSV's folder.

    Raises DatasetError for a file that cannot be used at all (not found, not UTF-8, no header, a
    required column missing, no rows, or no row that can run). A bad row (an empty question or
    image_path, a variant_index that is not a whole number, an unparseable bbox, more cells than the
    header) is kept as a Sample whose ``problem`` says what is wrong, so a run fails that row only.
    """
    path = Path(csv_path)
    if not path.exists():
        raise DatasetError(f"dataset CSV not found: {path}")
    if path.is_dir():
        raise DatasetError(f"dataset CSV is a directory: {path}")
    root = Path(images_root) if images_root is not None else path.parent
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                           "save the CSV as UTF-8") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read CSV ({first_line(exc)})") from exc
    if not text.strip():
        raise DatasetError(f"{path}: empty CSV (no header, no rows)")

    delimiter = detect_delimiter(text)
    try:
        lines = [(number, cells) for number, cells in _records(text, delimiter) if any(c.strip() for c in cells)]
    except csv.Error as exc:
        raise DatasetError(f"{path}: cannot parse CSV ({first_line(exc)})") from exc
    if not lines:
        raise DatasetError(f"{path}: empty CSV (no header, no rows)")
    columns = _unique_names([cell.strip() for cell in lines[0][1]])
    where = _resolve_columns(columns, path, delimiter)
    body = lines[1:]
    if not body:
        raise DatasetError(f"{path}: empty CSV (a header but no rows)")
    where["answer"], text_answer = label_column(columns, [cells for _, cells in body], where["answer"])
    renamed = {text_answer: TEXT_ANSWER_NAME} if text_answer else {}

    raw = [_read_row(row, line, cells, columns, where, root, renamed) for row, (line, cells) in enumerate(body)]
    keys = _unique_keys([_base_key(r, tag) for r, tag in zip(raw, _question_tags(raw), strict=True)],
                        [bool(r["problem"]) for r in raw])
    samples = tuple(Sample(key=key, **fields) for key, fields in zip(keys, raw, strict=True))
    if all(sample.problem for sample in samples):
        first = samples[0]
        raise DatasetError(f"{path}: no row can run; row {first.row} (line {body[0][0]}): {first.problem}")
    return Dataset(samples=samples, path=path, images_root=root, columns=columns, delimiter=delimiter,
                   label_column=where["answer"])


# --- delimiter ----------------------------------------------------------------------------------------

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def detect_delimiter(text: str) -> str:
    """The delimiter of a CSV's text: the one whose header cells name the most known columns.

    Spreadsheets write ``;`` where the decimal mark is a comma, and tab-separated exports are common;
    the header is the one line whose content is known, so it decides. A header naming no known column
    falls back to ``csv.Sniffer`` (Python documentation, ``csv`` module), then to a comma.
    """
    header = next(iter(text.splitlines()), "")
    scores = {d: sum(_norm(c) in _KNOWN_NAMES for c in next(csv.reader([header], delimiter=d), []))
              for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: scores[d])  # ties keep the earlier, a comma first
    if scores[best] > 0:
        return best
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number of the record's first line, its cells) for each record of the CSV."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True, strict=False)
    line = 1
    for cells in reader:
        yield line, cells
        line = reader.line_num + 1


def _unique_names(names: list[str]) -> tuple[str, ...]:
    """Header names with repeats told apart as ``name.1``, ``name.2`` (as pandas does)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}.{count}")
    return tuple(out)


# --- columns ----------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    """A header name as matched: case, surrounding spaces, inner spaces or hyphens do not matter."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


_KNOWN_NAMES = frozenset({*KNOWN, *(a for aliases in ALIASES.values() for a in aliases)})


def _resolve_columns(columns: tuple[str, ...], path: Path, delimiter: str = ",") -> dict[str, str]:
    """Canonical name -> the CSV's own header for it; names match case-insensitively."""
    by_norm: dict[str, str] = {}
    for name in columns:
        by_norm.setdefault(_norm(name), name)
    where: dict[str, str] = {}
    for canonical in KNOWN:
        for candidate in (canonical, *ALIASES.get(canonical, ())):
            if candidate in by_norm:
                where[canonical] = by_norm[candidate]
                break
    if not any(name in where for name in FILM_COLUMNS):
        found = ", ".join(repr(c) for c in columns) if columns else "none"
        read = f"; read as {_DELIMITER_NAMES.get(delimiter, repr(delimiter))}-separated"
        raise DatasetError(f"{path}: missing column 'image_path' (or 'dicom_id', whose film is looked up as "
                           f"{{dicom_id}}, {{dicom_id}}.jpg, .png, .dcm; columns found: {found}{read})")
    for canonical in REQUIRED:
        if canonical not in where:
            aliases = ALIASES.get(canonical, ())
            also = f"also accepted: {', '.join(aliases)}; " if aliases else ""
            found = ", ".join(repr(c) for c in columns) if columns else "none"
            read = f"; read as {_DELIMITER_NAMES.get(delimiter, repr(delimiter))}-separated"
            raise DatasetError(f"{path}: missing column '{canonical}' ({also}columns found: {found}{read})")
    return where


def label_column(columns: tuple[str, ...], rows: list[list[str]], chosen: str) -> tuple[str, str | None]:
    """(the header holding the labels, the header of a free-text answer to keep as ``original_answer``).

    ``chosen`` is the column ``_resolve_columns`` picked (``answer`` before its aliases). When it holds
    fewer yes/no labels than an alias column beside it, as in a results CSV where ``answer`` is the
    model's text and ``ground_truth`` the label, the alias with the most labels is the label column and
    ``chosen`` is returned second, to be kept under ``TEXT_ANSWER_NAME``; ``ground_truth`` wins a tie too
    (a model that answered "No." on every row still left the label in ``ground_truth``).
    """
    def labels(name: str) -> int:
        index = columns.index(name)
        return sum(normalise_answer(cells[index] if index < len(cells) else "") in (YES, NO) for cells in rows)

    by_norm = {_norm(name): name for name in reversed(columns)}
    aliases = [by_norm[a] for a in ALIASES["answer"] if a in by_norm and by_norm[a] != chosen]
    if not aliases:
        return chosen, None
    best = max(aliases, key=labels)  # ties keep the earlier alias, ground_truth first
    ahead = labels(best) > labels(chosen)
    # a results CSV (that system's and medtui's own) names the label ground_truth beside the model's answer,
    # even when the model answered in one word
    results_csv = _norm(best) == "ground_truth" and labels(best) >= labels(chosen) > 0
    if ahead or results_csv:
        return best, (chosen if _norm(chosen) == "answer" else None)  # only a free-text answer is renamed
    return chosen, None


def _read_row(row: int, line: int, cells: list[str], columns: tuple[str, ...], where: dict[str, str],
              root: Path, renamed: dict[str, str] | None = None) -> dict:
    problems: list[str] = []
    if len(cells) > len(columns):
        extra_cells = len(cells) - len(columns)
        problems.append(f"{len(cells)} cells where the header has {len(columns)} "
                        f"({extra_cells} too many: a delimiter inside an unquoted cell?)")
    values = dict(zip(columns, [*cells, *[""] * (len(columns) - len(cells))], strict=False))

    def cell(canonical: str) -> str:
        name = where.get(canonical)
        return "" if name is None else values[name].strip()

    image_path, list_problem = unlist_path(cell("image_path"))
    dicom_id = cell("dicom_id")
    question = cell("question")
    if list_problem:
        problems.append(list_problem)
    if not image_path and not dicom_id:
        problems.append("empty 'image_path'" + (" and 'dicom_id'" if "dicom_id" in where else ""))
    image, image_found, relative = find_film(root, image_path, dicom_id)
    if problem := question_problem(question):
        problems.append(problem)

    index_text = cell("variant_index")
    variant_index = 0
    if index_text:
        try:
            number = float(index_text)
        except ValueError:
            number = math.nan
        if number.is_integer():
            variant_index = int(number)
        else:
            problems.append(f"'variant_index' must be a whole number, got {index_text!r}")

    variant = cell("question_variant") or ("original" if variant_index == 0 else "hard_positive")
    bbox_text = cell("bbox")
    try:
        boxes = parse_bbox(bbox_text)
    except ValueError as exc:
        boxes = ()
        problems.append(f"unparseable bbox {bbox_text!r} ({exc})")

    used = set(where.values())
    renamed = renamed or {}
    extra = {renamed.get(name, name): values[name] for name in columns if name not in used}
    return {
        "row": row,
        "study_id": cell("study_id"),
        "dicom_id": dicom_id,
        "image_path": image_path or relative,
        "image": image,
        "image_found": image_found,
        "question": question,
        "answer": normalise_answer(cell("answer")),
        "baseline_question": cell("baseline_question") or question,
        "question_variant": variant,
        "variant_index": variant_index,
        "strategy": clean_strategy(cell("strategy")),
        "bbox": boxes,
        "finding": cell("finding"),
        "extra": extra,
        "line": line,
        "problem": "; ".join(problems) or None,
    }


# --- answers ------------------------------------------------------------------------------------------

YES, NO = "yes", "no"  # the two labels a ground truth and a read answer take (analysis.answers adds "uncertain")
# The spellings of yes and no in a ground-truth cell, here and for the scorer (analysis.answers.normalise_truth).
YES_WORDS = frozenset({"yes", "y", "true", "t", "1", "positive", "pos", "present", "1.0"})
NO_WORDS = frozenset({"no", "n", "false", "f", "0", "negative", "neg", "absent", "0.0"})


def normalise_answer(text: str | None) -> str:
    """A ground-truth cell as ``"yes"`` or ``"no"`` when it spells one (``Yes``, `` NO ``, ``1``,
    ``true.``); anything else (``maybe``, ``uncertain``, empty) as written, stripped: kept, not scored."""
    value = (text or "").strip()
    key = value.strip(".!").strip().lower()
    if key in YES_WORDS:
        return YES
    if key in NO_WORDS:
        return NO
    return value


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
    def film(r: dict) -> tuple[str, str, str]:
        return (r["study_id"], r["dicom_id"], r["image_path"] or f"row {r['row']}")  # no path: its own film

    questions: dict[tuple[str, str, str], set[str]] = {}
    for r in raw:
        if not r["problem"]:  # a bad row never changes the keys of the good ones
            questions.setdefault(film(r), set()).add(r["baseline_question"].strip().lower())
    tags = []
    for r in raw:
        baseline = r["baseline_question"].strip().lower()
        asked = questions.get(film(r), set())
        tags.append("q" + hashlib.sha1(baseline.encode()).hexdigest()[:6] if len(asked | {baseline}) > 1 else "")
    return tags


def _base_key(fields: dict, question_tag: str = "") -> str:
    study = fields["study_id"]
    if study.isdigit():
        study = f"s{study}"  # MIMIC-CXR's own folder name for a study
    dicom = fields["dicom_id"]
    if _MIMIC_DICOM_ID.match(dicom.lower()):
        dicom = dicom[:8]  # five 8-hex groups: the first is unique in practice; collisions get _r{row}
    if not study and not dicom:
        dicom = Path(fields["image_path"]).stem or f"row{fields['row']}"
    parts = [p for p in (_safe(study), _safe(dicom), question_tag) if p]
    index = fields["variant_index"]
    parts.append(f"v{index}" if index >= 0 else f"vm{-index}")
    return "_".join(parts)


def _unique_keys(bases: list[str], bad: list[bool] | None = None) -> list[str]:
    """The first row with a key keeps it; later rows with the same key get _r{row} appended.

    Good rows come first, so a bad row never takes the key a good row has once the bad one is fixed.
    """
    bad = bad or [False] * len(bases)
    taken = set(bases)
    seen: set[str] = set()
    keys: list[str] = [""] * len(bases)
    for row in sorted(range(len(bases)), key=lambda r: (bad[r], r)):
        base = bases[row]
        key = base
        if key in seen:
            key = f"{base}_r{row}"
            while key in taken:
                key += "x"
        seen.add(key)
        taken.add(key)
        keys[row] = key
    return keys


# --- strategy -----------------------------------------------------------------------------------------


def clean_strategy(text: str | None) -> str:
    """A strategy cell as stored: lower case, ``_``/``-`` as spaces, spaces collapsed, stripped."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", text or "")).strip().lower()


def normalise_strategy(text: str | None) -> tuple[str, ...]:
    """Free-text paraphrase strategy -> kinds from STRATEGY_KINDS, in that canonical order.

    Empty or "original" -> ("original",); text naming no known kind -> ("other",); a combination
    ("Synonym replacement + clause reordering") -> every kind it names, plus "other" for any part
    that names none.
    """
    cleaned = clean_strategy(text)
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
