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
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from medgemma_tui.analysis.heads import row_head_scores
from medgemma_tui.analysis.masks import AnatomyMasks, anatomy_masks
from medgemma_tui.analysis.record_analysis import SampleAnalysis, analyse_record
from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.config import Config
from medgemma_tui.data.images import load_image
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.export.columns import cell_value
from medgemma_tui.pipeline.batch import film_order, run_batch
from medgemma_tui.pipeline.rows import RowSettings, answer_row
from medgemma_tui.pipeline.shards import films_of

NOT_RUN, QUEUED, RUNNING, DONE, FAILED = "not run", "queued", "running", "done", "failed"
THUMBNAIL_SIDE = 128  # px: a summary's film, for the tiles of the variants and robustness screens


def film_thumbnail(xray: np.ndarray | None, side: int = THUMBNAIL_SIDE) -> np.ndarray | None:
    """The film as the model saw it, shrunk to at most ``side`` px a side: what a tile of a few dozen
    terminal cells can show, at 1/49 of MedGemma's 896 px film's memory."""
    if xray is None or max(xray.shape[:2]) <= side:
        return xray
    from PIL import Image

    height, width = xray.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(xray).resize(size, Image.Resampling.BOX))


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
    xray: np.ndarray | None  # the film as the model saw it, as a thumbnail (film_thumbnail)
    heads: dict[str, np.ndarray] | None = None  # per layer x head pointing and lift on the box (boxed rows)

    @classmethod
    def of(cls, analysis: SampleAnalysis) -> Summary:
        heads = row_head_scores(analysis.record, analysis.view.spec.rows, analysis.box_grid, analysis.pointing_cells)
        return cls(analysis.answer_label, analysis.correct, dict(analysis.metrics), analysis.grid,
                   film_thumbnail(analysis.record.xray), heads)


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
    config: Config = field(default_factory=Config)  # the map spec, terms, decoding: as for ``eval``
    tree: Any = None  # export.reader.ResultsReader in tree mode
    loaded: Any = None  # model.loading.LoadedModel once loaded
    entries: dict[str, Entry] = field(default_factory=dict)
    keep: int = 32  # finished samples whose whole record stays in memory (MedGemma: ~25 MB each)
    pinned: str | None = None  # the sample on screen: never dropped
    robustness: dict[str, dict] = field(default_factory=dict)  # key -> robustness study run here (live)
    robustness_films: dict[str, list] = field(default_factory=dict)  # key -> its perturbed films as the model saw them
    _model_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _model_ready: threading.Event = field(default_factory=threading.Event, repr=False)
    _recent: list[str] = field(default_factory=list, repr=False)
    _index: dict[str, Item] = field(default_factory=dict, repr=False)  # key -> item
    # film -> the one thumbnail its rows share
    _thumbnails: dict[Any, np.ndarray] = field(default_factory=dict, repr=False)

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
    def from_tree(cls, out_dir: str | Path, config: Config | None = None) -> Session:
        """The finished samples of a results tree written by ``medtui eval`` (no model needed), analysed
        under ``config``, by default the config the tree was written with (its ``run.json``)."""
        from medgemma_tui.export.reader import read_results

        tree = read_results(out_dir, config.analysis.hedged_answers if config is not None else None)
        items = []
        rows = {str(row["key"]): row for row in tree.rows.to_dict("records")}  # one pass, not a search per key
        for key in tree.keys:
            cell = partial(cell_value, rows[key])  # typed as export.columns declares each column
            question = cell("question")
            items.append(
                Item(
                    key=key,
                    study=cell("study_id"),
                    variant=cell("variant_index") or 0,
                    strategy=cell("strategy"),
                    question=question,
                    truth=cell("ground_truth"),
                    group=(cell("image_path") if "image_path" in rows[key] else key,
                           cell("baseline_question") or question),
                    answer_label=cell("answer_label"),
                    correct=cell("correct"),
                )
            )
        config = config if config is not None else (tree.config or Config())
        return cls(items=items, source=str(out_dir), model_source=None, tree=tree, config=config)

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
    def settings(self) -> RowSettings:
        """How a row is answered and analysed: from the config, as ``eval`` and ``check`` read it."""
        return RowSettings.from_config(self.config)

    @property
    def needs_model(self) -> bool:
        return self.model_source is not None

    @property
    def is_tree(self) -> bool:
        return self.tree is not None

    def item(self, key: str) -> Item:
        """The item of ``key``, by an index (a run-all of many rows asks for every row's)."""
        if len(self._index) != len(self.items):
            self._index = {item.key: item for item in self.items}
        return self._index[key]

    def group_of(self, key: str) -> list[Item]:
        group = self.item(key).group
        return sorted((i for i in self.items if i.group == group), key=lambda i: (i.variant, i.key))

    def pending(self) -> list[str]:
        return [i.key for i in self.items if self.entries[i.key].status in (NOT_RUN, QUEUED, FAILED)]

    def done(self) -> list[str]:
        return [i.key for i in self.items if self.entries[i.key].status == DONE]

    def ask(self, key: str, question: str) -> str:
        """A new row of the session: ``question`` about the film of row ``key`` (the app's own question, as
        the original system's app tab 1 asked it). Not run here (``run`` it in a worker); not scored (no
        ground truth, no box); it joins the film's rows in the table and any export. Returns its key."""
        import dataclasses

        question = " ".join(question.split())
        if not question:
            raise ValueError("the question is empty")
        item = self.item(key)
        if item.sample is None:
            raise RuntimeError("asking about a film needs a live session (medtui tui), not a results tree")
        taken = {i.key for i in self.items}
        number = 1
        while f"{key}_ask{number}" in taken:
            number += 1
        new_key = f"{key}_ask{number}"
        sample = dataclasses.replace(item.sample, key=new_key, question=question, baseline_question=question,
                                     question_variant="custom", variant_index=0, strategy="custom question",
                                     answer="", bbox=(), finding="")
        asked = Item(key=new_key, study=item.study, variant=0, strategy="custom question", question=question,
                     truth="", group=sample.group, sample=sample)
        index = self.items.index(item) + 1
        while index < len(self.items) and self.items[index].key.startswith(f"{key}_ask"):
            index += 1  # after the questions already asked about this row's film
        self.items.insert(index, asked)
        self.entries[new_key] = Entry()
        return new_key

    def finish(self, key: str, analysis: SampleAnalysis) -> Entry:
        """Record a finished sample; drop the records of the oldest beyond ``keep`` (their summaries stay)."""
        entry = self.entries[key]
        entry.finish(analysis)
        if entry.summary.xray is not None:  # the rows of one film share one thumbnail
            film = self.item(key).group[0] if key in self.entries else key
            shared = self._thumbnails.setdefault(film, entry.summary.xray)
            if shared is not entry.summary.xray and shared.shape == entry.summary.xray.shape:
                entry.summary = replace(entry.summary, xray=shared)
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
        from medgemma_tui.engine.loading import load_for_capture

        if not self.needs_model or self.loaded is not None:
            return ""
        source = None if self.model_source in (None, "demo") else self.model_source
        model = self.config.model
        start = time.perf_counter()
        try:
            with self._model_lock:
                self.loaded = load_for_capture(source, device=model.device, dtype=model.dtype,
                                               revision=model.revision, adapter=model.adapter)
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
        return self._answer(self.item(key).sample).analysis

    def _answer(self, sample) -> SampleResult:
        """One row through the pipeline, under the model lock."""
        if self.loaded is None and self.needs_model:
            self._model_ready.wait()
        if self.loaded is None:
            raise RuntimeError("the model did not load")
        with self._model_lock:
            return answer_row(self.loaded, sample, self.settings)

    def _run_tree(self, key: str) -> SampleAnalysis:
        record = self.tree.load_record(key)
        meta = _load_meta(self.tree, key)
        boxes = [tuple(b) for b in meta.get("bbox_boxes", [])] or None
        settings = self.settings
        analysis = analyse_record(record, masks=tree_masks(self.tree, key, record), boxes=boxes,
                                  ground_truth=self.item(key).truth or None, spec=settings.spec,
                                  terms=settings.term_list, pointing_tolerance_px=settings.pointing_tolerance_px,
                                  hedged_answers=settings.hedged_answers)
        return self.tree.with_stored_values(key, analysis)  # the tree's values where its CSV has them (README)

    def run_robustness(self, key: str, config: Config | None = None) -> dict:
        """The robustness study of one live sample, as ``medtui eval --robustness`` makes it; kept per key.

        ``config`` (default: the session's) gives the perturbations (``[robustness]``); the perturbed
        films are answered with the session's decoding and terms, like the sample itself. The sample's
        record in memory is the reference (it is answered first when there is none). Holds the model
        lock throughout: one answer and capture per perturbation.
        """
        from medgemma_tui.analysis.perturbations import from_config
        from medgemma_tui.pipeline.studies.robustness import robustness_study

        item = self.item(key)
        if self.is_tree or not self.needs_model or item.sample is None:
            raise RuntimeError("the robustness study needs a live session with a model")
        config = (config or self.config).with_overrides({
            "robustness.enabled": True, "decoding.max_new_tokens": self.config.decoding.max_new_tokens,
            "analysis.terms": self.config.analysis.terms})
        if not from_config(config.robustness):
            raise ValueError("the config's [robustness] section turns every perturbation off")
        entry = self.entries[key]
        if entry.status == DONE and entry.analysis is not None:
            result = SampleResult(sample=item.sample, film=load_image(item.sample.image), analysis=entry.analysis)
        else:
            result = self._answer(item.sample)
        with self._model_lock:
            films: list[np.ndarray | None] = []
            study = robustness_study(self.loaded, result.film, result, config,
                                     on_record=lambda perturbation, record: films.append(record.xray))
        self.robustness_films[key] = films
        self.robustness[key] = study
        return study

    def run_methods(self, key: str, names: tuple[str, ...]) -> dict:
        """The attribution methods ``names`` of one finished live row, as ``medtui eval --methods`` computes
        them: their maps join the row's record (so ``v`` and the methods screen show them) and their grid
        metrics and seconds go to the row's ``extras["methods"]``. Holds the model lock throughout."""
        from medgemma_tui.pipeline.studies.methods import methods_study

        item = self.item(key)
        if self.is_tree or not self.needs_model or item.sample is None:
            raise RuntimeError("the methods need a live session with a model")
        entry = self.entries[key]
        if entry.status != DONE or entry.analysis is None:
            raise RuntimeError(f"{key} has no answer in memory: run it first (enter)")
        result = SampleResult(sample=item.sample, film=load_image(item.sample.image), analysis=entry.analysis)
        with self._model_lock:
            study = methods_study(self.loaded, result, self.config, names)
        entry.analysis.extras["methods"] = study
        return study

    def run_many(
        self,
        keys: list[str],
        cancelled: Callable[[], bool],
        report: Callable[[int, int, str, Entry | None], None],
    ) -> tuple[int, int]:
        """Run ``keys`` until cancelled, through the pipeline's batch runner (the one ``eval`` uses);
        ``report(done, total, key, entry)`` before and after each. One sample failing does not stop the
        others. Returns (finished, failed).

        Live, rows go film by film (``batch.film_order``) through the runner's own per-film path, as in
        ``eval``: each film read once, its vision pass and masks computed once, ``[decoding] batch_size``
        rows to a generate. The model lock is held for one film at a time, so a single run asked for
        meanwhile waits for one film at most. A tree's rows are read from disk one by one."""
        for key in keys:
            self.entries[key].status = QUEUED
        try:
            if self.is_tree or not self.needs_model:
                return self._read_many(keys, cancelled, report)
            return self._answer_many(keys, cancelled, report)
        finally:
            for key in keys:
                if self.entries[key].status in (QUEUED, RUNNING):
                    self.entries[key].status = NOT_RUN

    def _read_many(self, keys, cancelled, report) -> tuple[int, int]:
        position = {key: i for i, key in enumerate(keys)}
        session = self

        def run_one(loaded, item: Item, settings) -> Item:
            report(position[item.key], len(keys), item.key, None)
            session.run(item.key)
            return item

        class Reporter:  # the batch runner's sink: the entries are already up to date; tell the screen
            def finished(self, item: Item) -> None:
                report(position[item.key] + 1, len(keys), item.key, session.entries[item.key])

            def failed(self, item: Item, error: str) -> None:
                report(position[item.key] + 1, len(keys), item.key, session.entries[item.key])

        counts = run_batch(self.loaded, [self.item(k) for k in keys], self.settings, Reporter(),
                           should_stop=cancelled, answer=run_one)
        return counts.done, counts.failed

    def _answer_many(self, keys, cancelled, report) -> tuple[int, int]:
        if self.loaded is None:
            self._model_ready.wait()
        if self.loaded is None:
            raise RuntimeError("the model did not load")
        items = {item.key: item for item in self.items}
        samples = film_order([items[k].sample for k in keys])
        total, settings = len(samples), self.settings
        state = {"index": 0, "done": 0, "failed": 0}
        session = self

        class Entries:  # the batch runner's sink: each row into its entry, then the screen told
            def finished(self, result: SampleResult) -> None:
                key = result.sample.key
                self._told(key, session.finish(key, result.analysis))

            def failed(self, sample, error: str) -> None:
                entry = session.entries[sample.key]
                entry.status, entry.error = FAILED, error
                self._told(sample.key, entry)

            def _told(self, key: str, entry: Entry) -> None:
                state["index"] += 1
                report(state["index"], total, key, entry)

        def timed(p) -> None:
            if p.event == "sample" and p.key is not None:
                self.entries[p.key].seconds = p.sample_s

        for film in films_of(samples).values():
            if cancelled():
                break
            for sample in film:
                self.entries[sample.key].status = RUNNING
            report(state["index"], total, film[0].key, None)
            with self._model_lock:
                counts = run_batch(self.loaded, film, settings, Entries(), should_stop=cancelled, progress=timed)
            state["done"] += counts.done
            state["failed"] += counts.failed
            if counts.interrupted:
                break
        return state["done"], state["failed"]

    # ---- across samples ---------------------------------------------------------------------------
    def dataset_values(self, metric: str) -> np.ndarray:
        """One metric of every finished sample (NaNs dropped), for the distribution chart."""
        values = [self.entries[k].summary.metrics.get(metric, math.nan) for k in self.done()]
        arr = np.asarray(values, dtype=np.float64)
        return arr[np.isfinite(arr)]


# ---- tree helpers ---------------------------------------------------------------------------------
def tree_masks(tree, key: str, record: AttentionRecord) -> AnatomyMasks | None:
    """The tree's masks (``masks/{key}_{part}.png``) and their check from the meta. A tree written before
    the per-lung files has one lungs image, split at the film's midline into the patient's right (image
    left) and left lung. Without mask files: masks of the film the model saw."""
    from PIL import Image

    layout = tree.paths

    def read(part: str) -> np.ndarray | None:
        path = layout.mask_path(key, part)
        return np.asarray(Image.open(path).convert("L")) > 127 if path.exists() else None

    body, right, left = read("body"), read("lung_right"), read("lung_left")
    if body is not None and right is not None and left is not None:
        mediastinum = read("mediastinum")
        checked = (_load_meta(tree, key).get("masks") or {})
        return AnatomyMasks(body=body, lung_right=right, lung_left=left,
                            mediastinum=mediastinum if mediastinum is not None else np.zeros_like(body),
                            fallback=tuple(checked.get("fallback") or ()),
                            quality=checked.get("quality", "ok"),
                            quality_reasons=tuple(checked.get("quality_reasons") or ()))
    lungs = read("lungs")
    if body is not None and lungs is not None:
        left_half = np.arange(lungs.shape[1])[None, :] < lungs.shape[1] / 2
        return AnatomyMasks(body=body, lung_right=lungs & left_half, lung_left=lungs & ~left_half,
                            mediastinum=np.zeros_like(body), fallback=("lungs split at the image midline",))
    if record.xray is None:
        return None
    return anatomy_masks(record.xray)


def export_keys(session: Session, keys: list[str], out_dir: Path, cancelled: Callable[[], bool],
                report: Callable[[int, int, str], None], config: Config | None = None) -> int:
    """Write finished live samples into a complete results tree at ``out_dir`` (rows, files, ``run.json``,
    ``analysis/``) through the writer ``eval`` uses; returns how many. ``config`` defaults to the session's."""
    from medgemma_tui.export.tree import ResultsTree
    from medgemma_tui.pipeline.evaluation import write_results

    if session.is_tree:
        raise RuntimeError(f"these samples already live in a results tree ({session.source})")
    config = config or session.config
    results = []
    for key in keys:
        entry, item = session.entries[key], session.item(key)
        if item.sample is None or entry.status != DONE:
            continue
        if entry.analysis is None:  # its record was dropped to save memory: answer it again
            entry = session.run(key)
        results.append(SampleResult(sample=item.sample, film=load_image(item.sample.image), analysis=entry.analysis))
    tree = ResultsTree(out_dir)
    run_info = {"command": "medtui (app export)", "dataset": {"csv": session.source, "rows": len(session.items)}}
    with tree.locked():
        counts = write_results(results, tree, config, session.loaded, run_info, should_stop=cancelled,
                               report=report)
    return counts.done


def _load_meta(tree, key: str) -> dict:
    try:
        return dict(tree.load_meta(key) or {})
    except (AttributeError, FileNotFoundError, KeyError, ValueError):
        return {}
