"""The app's headless core: the samples, the model, and what has been run. No textual here.

A ``Session`` is either *live* (a dataset CSV and a model: running a sample extracts its record) or a
*tree* (an exported results tree: "running" a sample reads its record from disk, no model). Every
blocking call here is made from a worker thread; the app only reads ``items`` and ``entries``. Model
calls are serialised by one lock, so a single run and "run all" can be asked for together.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medgemma_tui.analysis.masks import AnatomyMasks, anatomy_masks
from medgemma_tui.analysis.sample import SampleAnalysis, analyse_record
from medgemma_tui.engine.record import AttentionRecord

NOT_RUN, QUEUED, RUNNING, DONE, FAILED = "not run", "queued", "running", "done", "failed"


@dataclass(frozen=True)
class Item:
    """One row of the samples table, whatever the source."""

    key: str
    study: str
    variant: int
    strategy: str
    question: str
    truth: str  # ground truth as written ("" when unknown)
    group: tuple[str, str]  # (image, baseline question): the hard-positive group
    sample: Any = None  # data.schema.Sample in a live session
    answer_label: str = ""  # known before the record is read (a tree's CSV row)
    correct: bool | None = None


@dataclass(frozen=True)
class Summary:
    """What the table, the variants screen and the dataset charts need of a finished sample (a few KB)."""

    answer_label: str
    correct: bool | None
    metrics: dict[str, float]
    grid: np.ndarray  # the default map
    xray: np.ndarray | None  # the film as the model saw it

    @classmethod
    def of(cls, analysis: SampleAnalysis) -> Summary:
        return cls(analysis.answer_label, analysis.correct, dict(analysis.metrics), analysis.grid,
                   analysis.record.xray)


@dataclass
class Entry:
    status: str = NOT_RUN
    analysis: SampleAnalysis | None = None  # dropped for all but the most recent samples (memory)
    summary: Summary | None = None  # kept for every finished sample
    error: str | None = None
    seconds: float | None = None

    @property
    def record(self) -> AttentionRecord | None:
        return None if self.analysis is None else self.analysis.record

    def finish(self, analysis: SampleAnalysis) -> None:
        self.analysis, self.summary, self.status, self.error = analysis, Summary.of(analysis), DONE, None


@dataclass
class Session:
    items: list[Item]
    source: str  # what the header says: "demo", a CSV path, or a tree
    model_source: str | None = None  # None: tree mode, no model needed
    device: str = "auto"
    dtype: str = "auto"
    max_new_tokens: int = 24
    terms: list[str] | None = None
    tree: Any = None  # export.tree reader in tree mode
    loaded: Any = None  # model.loading.LoadedModel once loaded
    entries: dict[str, Entry] = field(default_factory=dict)
    keep: int = 32  # finished samples whose whole record stays in memory (MedGemma: ~25 MB each)
    pinned: str | None = None  # the sample on screen: never dropped
    robustness: dict[str, dict] = field(default_factory=dict)  # key -> robustness study run here (live)
    robustness_films: dict[str, list] = field(default_factory=dict)  # key -> its perturbed films as the model saw them
    _model_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _model_ready: threading.Event = field(default_factory=threading.Event, repr=False)
    _recent: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for item in self.items:
            self.entries.setdefault(item.key, Entry())
        for entry in self.entries.values():
            if entry.analysis is not None and entry.summary is None:
                entry.finish(entry.analysis)

    # ---- building ---------------------------------------------------------------------------------
    @classmethod
    def from_dataset(cls, dataset, model_source: str | None = "demo", **options) -> Session:
        """Samples of a dataset, run with ``model_source`` (None: no model, for records handed in)."""
        items = [
            Item(
                key=s.key,
                study=s.study_id,
                variant=s.variant_index,
                strategy=s.strategy or ("original" if s.is_original else ""),
                question=s.question,
                truth=s.answer,
                group=s.group,
                sample=s,
            )
            for s in dataset
        ]
        return cls(items=items, source=str(dataset.path), model_source=model_source, **options)

    @classmethod
    def from_tree(cls, out_dir: str | Path) -> Session:
        """The finished samples of a results tree written by ``medtui eval`` (no model needed)."""
        from medgemma_tui.export.tree import read_results

        tree = read_results(out_dir)
        items = []
        for key in tree.keys:
            row = tree.row(key)
            question = _cell(row, "question", "")
            items.append(
                Item(
                    key=key,
                    study=_cell(row, "study_id", ""),
                    variant=_int(_cell(row, "variant_index", 0)),
                    strategy=_cell(row, "strategy", ""),
                    question=question,
                    truth=_cell(row, "ground_truth", ""),
                    group=(_cell(row, "image_path", key), _cell(row, "baseline_question", question) or question),
                    answer_label=_cell(row, "answer_label", ""),
                    correct=_flag(row.get("correct")),
                )
            )
        return cls(items=items, source=str(out_dir), model_source=None, tree=tree)

    @classmethod
    def with_records(cls, records: dict[str, SampleAnalysis], source: str = "records") -> Session:
        """A session whose samples are already analysed (tests, and records handed over in Python)."""
        items = [
            Item(key=k, study="", variant=0, strategy="", question=a.record.question, truth="", group=(k, k))
            for k, a in records.items()
        ]
        session = cls(items=items, source=source, model_source=None)
        for key, analysis in records.items():
            session.finish(key, analysis)
        return session

    # ---- facts ------------------------------------------------------------------------------------
    @property
    def needs_model(self) -> bool:
        return self.model_source is not None

    @property
    def is_tree(self) -> bool:
        return self.tree is not None

    def item(self, key: str) -> Item:
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(key)

    def group_of(self, key: str) -> list[Item]:
        group = self.item(key).group
        return sorted((i for i in self.items if i.group == group), key=lambda i: (i.variant, i.key))

    def pending(self) -> list[str]:
        return [i.key for i in self.items if self.entries[i.key].status in (NOT_RUN, QUEUED, FAILED)]

    def done(self) -> list[str]:
        return [i.key for i in self.items if self.entries[i.key].status == DONE]

    def finish(self, key: str, analysis: SampleAnalysis) -> Entry:
        """Record a finished sample; drop the records of the oldest beyond ``keep`` (their summaries stay)."""
        entry = self.entries[key]
        entry.finish(analysis)
        if key in self._recent:
            self._recent.remove(key)
        self._recent.append(key)
        while len(self._recent) > self.keep:
            old = next((k for k in self._recent if k != self.pinned), None)
            if old is None:
                break
            self._recent.remove(old)
            self.entries[old].analysis = None
        return entry

    def touch(self, key: str) -> None:
        """A sample was shown: it becomes the most recent."""
        if key in self._recent:
            self._recent.remove(key)
            self._recent.append(key)

    # ---- blocking work (worker threads only) ------------------------------------------------------
    def load_model(self) -> str:
        """Load the model; returns one line saying what was loaded."""
        from medgemma_tui.model.loading import load_model

        if not self.needs_model or self.loaded is not None:
            return ""
        source = None if self.model_source in (None, "demo") else self.model_source
        start = time.perf_counter()
        try:
            with self._model_lock:
                self.loaded = load_model(source, device=self.device, dtype=self.dtype)
        finally:
            self._model_ready.set()  # a run waiting for the model goes on (and fails clearly if it did not load)
        info = self.loaded.info
        return (f"{info.name_or_path} on {info.device} ({info.dtype}): {info.num_layers} layers, "
                f"{info.num_heads} heads, loaded in {time.perf_counter() - start:.1f}s")

    def run(self, key: str) -> Entry:
        """Extract (live) or read (tree) one sample and analyse it. Raises on failure, entry marked failed."""
        entry = self.entries[key]
        entry.status, entry.error = RUNNING, None
        start = time.perf_counter()
        try:
            analysis = self._run_tree(key) if self.is_tree else self._run_live(key)
        except BaseException as exc:
            entry.status, entry.error = FAILED, str(exc).strip().splitlines()[0] if str(exc).strip() else type(
                exc
            ).__name__
            raise
        self.finish(key, analysis)
        entry.seconds = time.perf_counter() - start
        return entry

    def _run_live(self, key: str) -> SampleAnalysis:
        from medgemma_tui.runner import run_sample

        if self.loaded is None and self.needs_model:
            self._model_ready.wait()
        if self.loaded is None:
            raise RuntimeError("the model did not load")
        with self._model_lock:
            result = run_sample(self.loaded, self.item(key).sample, max_new_tokens=self.max_new_tokens,
                                terms=self.terms)
        return result.analysis

    def _run_tree(self, key: str) -> SampleAnalysis:
        record = self.tree.load_record(key)
        meta = _load_meta(self.tree, key)
        boxes = [tuple(b) for b in meta.get("bbox_boxes", [])] or None
        return analyse_record(record, masks=tree_masks(self.tree, key, record), boxes=boxes,
                              ground_truth=self.item(key).truth or None, terms=self.terms)

    def run_robustness(self, key: str, config) -> dict:
        """The robustness study of one live sample, as ``medtui eval --robustness`` makes it; kept per key.

        ``config`` (a ``medgemma_tui.config.Config``) gives the perturbations (``[robustness]``); the
        perturbed films are answered with this session's ``max_new_tokens`` and terms, like the sample
        itself. The sample's record in memory is the reference (it is answered first when there is none).
        Holds the model lock throughout: one answer and capture per perturbation.
        """
        from medgemma_tui.analysis.perturbations import from_config
        from medgemma_tui.data.images import load_image
        from medgemma_tui.runner import SampleResult, run_sample
        from medgemma_tui.studies import robustness_study

        item = self.item(key)
        if self.is_tree or not self.needs_model or item.sample is None:
            raise RuntimeError("the robustness study needs a live session with a model")
        config = config.with_overrides({"robustness.enabled": True, "decoding.max_new_tokens": self.max_new_tokens,
                                        "analysis.terms": self.terms})
        if not from_config(config.robustness):
            raise ValueError("the config's [robustness] section turns every perturbation off")
        if self.loaded is None:
            self._model_ready.wait()
        if self.loaded is None:
            raise RuntimeError("the model did not load")
        with self._model_lock:
            entry = self.entries[key]
            if entry.status == DONE and entry.analysis is not None:
                result = SampleResult(sample=item.sample, film=load_image(item.sample.image), analysis=entry.analysis)
            else:
                result = run_sample(self.loaded, item.sample, max_new_tokens=self.max_new_tokens, terms=self.terms)
            films: list[np.ndarray | None] = []
            study = robustness_study(self.loaded, result.film, result, config,
                                     on_record=lambda perturbation, record: films.append(record.xray))
        self.robustness_films[key] = films
        self.robustness[key] = study
        return study

    def run_many(
        self,
        keys: list[str],
        cancelled: Callable[[], bool],
        report: Callable[[int, int, str, Entry | None], None],
    ) -> tuple[int, int]:
        """Run ``keys`` in order until cancelled; ``report(done, total, key, entry)`` after each.

        One sample failing does not stop the others. Returns (finished, failed).
        """
        for key in keys:
            self.entries[key].status = QUEUED
        finished = failed = 0
        for i, key in enumerate(keys):
            if cancelled():
                break
            report(i, len(keys), key, None)
            try:
                entry = self.run(key)
                finished += 1
            except Exception:
                entry = self.entries[key]
                failed += 1
            report(i + 1, len(keys), key, entry)
        for key in keys:
            if self.entries[key].status == QUEUED:
                self.entries[key].status = NOT_RUN
        return finished, failed

    # ---- across samples ---------------------------------------------------------------------------
    def dataset_values(self, metric: str) -> np.ndarray:
        """One metric of every finished sample (NaNs dropped), for the distribution chart."""
        values = [self.entries[k].summary.metrics.get(metric, math.nan) for k in self.done()]
        arr = np.asarray(values, dtype=np.float64)
        return arr[np.isfinite(arr)]


# ---- tree helpers ---------------------------------------------------------------------------------
def tree_masks(tree, key: str, record: AttentionRecord) -> AnatomyMasks | None:
    """The tree's body and lung masks; its lung mask is one image, split at the film's midline into
    the patient's right (image left) and left lung. Without mask files: masks of the film the model saw."""
    from PIL import Image

    body_path, lungs_path = tree.tree.body_mask_path(key), tree.tree.lungs_mask_path(key)
    if body_path.exists() and lungs_path.exists():
        body = np.asarray(Image.open(body_path).convert("L")) > 127
        lungs = np.asarray(Image.open(lungs_path).convert("L")) > 127
        left_half = np.arange(lungs.shape[1])[None, :] < lungs.shape[1] / 2
        return AnatomyMasks(body=body, lung_right=lungs & left_half, lung_left=lungs & ~left_half,
                            fallback=("lungs split at the image midline",))
    if record.xray is None:
        return None
    return anatomy_masks(record.xray)


def export_keys(session: Session, keys: list[str], out_dir: Path, cancelled: Callable[[], bool],
                report: Callable[[int, int, str], None], config=None) -> int:
    """Write finished live samples into the standard results tree at ``out_dir``; returns how many.

    ``config`` (a ``medgemma_tui.config.Config``) chooses the figures and colours, as for ``eval``."""
    from medgemma_tui.data.images import load_image
    from medgemma_tui.export.tree import ResultsTree
    from medgemma_tui.runner import SampleResult

    if session.is_tree:
        raise RuntimeError(f"these samples already live in a results tree ({session.source})")
    tree = ResultsTree(out_dir)
    written = 0
    with tree.locked():
        for i, key in enumerate(keys):
            if cancelled():
                break
            report(i, len(keys), key)
            entry, item = session.entries[key], session.item(key)
            if item.sample is None or entry.status != DONE:
                continue
            if entry.analysis is None:  # its record was dropped to save memory: answer it again
                entry = session.run(key)
            film = load_image(item.sample.image)
            tree.write_sample(SampleResult(sample=item.sample, film=film, analysis=entry.analysis), config)
            written += 1
    report(len(keys), len(keys), "")
    return written


def _load_meta(tree, key: str) -> dict:
    try:
        return dict(tree.load_meta(key) or {})
    except (AttributeError, FileNotFoundError, KeyError, ValueError):
        return {}


def _cell(row, name: str, default):
    try:
        value = row[name]
    except (KeyError, IndexError, TypeError):
        return default
    if value is None or isinstance(value, float) and math.isnan(value):
        return default
    return str(value) if isinstance(default, str) else value


def _flag(value) -> bool | None:
    """A CSV's ``correct`` cell (True, False, or missing) as a bool or None."""
    import pandas as pd

    if value is None or pd.isna(value):
        return None
    return bool(value)


def _int(value) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0
