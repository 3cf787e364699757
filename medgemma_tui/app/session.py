"""The app's headless core: the samples, the model, and what has been run. No textual here.

A ``Session`` is either *live* (a dataset CSV and a model: running a sample extracts its record) or a
*tree* (an exported results tree: "running" a sample reads its record from disk, no model). The blocking
calls a worker thread makes (``analyse``, ``answer_many``, ``robustness_of``, ``methods_of``) only read
the session and return what they made; the thread that owns the session (the app's UI thread) files it
(``apply``, ``adopt``, ``keep_robustness``, ``add_methods``), so its state changes on one thread only.
``run`` and ``run_many`` do both, for callers with no UI thread. Model calls are serialised by one lock, so
a single run and "run all" can be asked for together.
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

from medgemma_tui.analysis.masks import AnatomyMasks, anatomy_masks
from medgemma_tui.analysis.record_analysis import SampleAnalysis, analyse_record
from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.app.entries import DONE, FAILED, IN_TREE, NOT_RUN, QUEUED, RUNNING, Entry, Item, RowOutcome
from medgemma_tui.config import Config
from medgemma_tui.data.images import load_image
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.errors import first_line
from medgemma_tui.export.columns import cell_value
from medgemma_tui.pipeline.batch import film_order, run_batch
from medgemma_tui.pipeline.rows import RowSettings, answer_row
from medgemma_tui.pipeline.shards import films_of
from medgemma_tui.registry import METHODS_STUDY


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
    # told of each analysis the session lets go (``keep``), so caches of it can let it go too
    on_drop: list[Callable[[SampleAnalysis], None]] = field(default_factory=list, repr=False)

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

    def status_text(self, key: str) -> str:
        """The row's status as the table, the variants' tiles and the compare screen say it: a tree's rows are
        finished there, so one not read yet is "in tree", never "not run"."""
        status = self.entries[key].status
        return IN_TREE if status == NOT_RUN and self.is_tree else status

    def item(self, key: str) -> Item:
        """The item of ``key``, by an index (a run-all of many rows asks for every row's)."""
        if len(self._index) != len(self.items):
            self._index = {item.key: item for item in self.items}
        return self._index[key]

    def boxes(self, key: str) -> list:
        """A sample's ground-truth boxes (x, y, w, h in its film's pixels): the dataset row's ``bbox`` in a
        live session, the meta's ``bbox_boxes`` in a results tree; none when the sample has no box."""
        item = self.item(key)
        if item.sample is not None:
            return [tuple(b) for b in (item.sample.bbox or ())]
        return [tuple(b) for b in _load_meta(self.tree, key).get("bbox_boxes") or []] if self.is_tree else []

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
            self._let_go(old)
        return entry

    def _let_go(self, key: str) -> None:
        self._replace_analysis(key, None)

    def _replace_analysis(self, key: str, analysis: SampleAnalysis | None) -> None:
        """``key``'s analysis becomes ``analysis``; whoever holds the one it replaces (``on_drop``) is told."""
        entry = self.entries[key]
        old, entry.analysis = entry.analysis, analysis
        if old is not None and old is not analysis:
            for tell in self.on_drop:
                tell(old)

    def start(self, key: str) -> Entry:
        entry = self.entries[key]
        entry.status, entry.error = RUNNING, None
        return entry

    def fail(self, key: str, error: str) -> Entry:
        entry = self.entries[key]
        entry.status, entry.error = FAILED, error
        return entry

    def apply(self, outcome: RowOutcome) -> Entry:
        """File a worker's outcome: the row finished (its record kept under ``keep``) or failed."""
        if outcome.analysis is not None:
            entry = self.finish(outcome.key, outcome.analysis)
        else:
            entry = self.fail(outcome.key, outcome.error or "failed")
        entry.seconds = outcome.seconds
        return entry

    def queue(self, keys: list[str]) -> None:
        for key in keys:
            self.entries[key].status = QUEUED

    def unqueue(self, keys: list[str]) -> None:
        """Rows a run did not reach (cancelled, or it failed) go back to "not run"."""
        for key in keys:
            if self.entries[key].status in (QUEUED, RUNNING):
                self.entries[key].status = NOT_RUN

    def touch(self, key: str) -> None:
        """A sample was shown: it becomes the most recent."""
        if key in self._recent:
            self._recent.remove(key)
            self._recent.append(key)

    # ---- blocking work (worker threads only) ------------------------------------------------------
    def load_model(self) -> tuple[Any, str]:
        """Load the model, to be kept with ``adopt``; returns it and one line saying what was loaded. If it
        does not load, the runs waiting for it go on (and fail clearly)."""
        from medgemma_tui.engine.loading import load_for_capture

        if not self.needs_model or self.loaded is not None:
            return self.loaded, ""
        source = None if self.model_source in (None, "demo") else self.model_source
        model = self.config.model
        start = time.perf_counter()
        try:
            loaded = load_for_capture(source, device=model.device, dtype=model.dtype, revision=model.revision,
                                      adapter=model.adapter)
        except BaseException:
            self._model_ready.set()
            raise
        info = loaded.info
        return loaded, (f"{info.name_or_path} on {info.device} ({info.dtype}): {info.num_layers} layers, "
                        f"{info.num_heads} heads, loaded in {time.perf_counter() - start:.1f}s")

    def adopt(self, loaded: Any) -> None:
        """Keep the loaded model (``load_model``); the runs waiting for it go on."""
        self.loaded = loaded
        self._model_ready.set()

    def run(self, key: str) -> Entry:
        """``analyse`` one sample and file it. Raises on failure, entry marked failed."""
        self.start(key)
        start = time.perf_counter()
        try:
            analysis = self.analyse(key)
        except BaseException as exc:
            self.fail(key, first_line(exc))
            raise
        return self.apply(RowOutcome(key, analysis, seconds=time.perf_counter() - start))

    def analyse(self, key: str) -> SampleAnalysis:
        """Extract (live) or read (tree) one sample and analyse it; the session is not changed."""
        return self._run_tree(key) if self.is_tree else self._answer(self.item(key).sample).analysis

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
        boxes = self.boxes(key) or None  # the tree's boxes (meta.json), read as the app reads them
        settings = self.settings
        analysis = analyse_record(record, masks=tree_masks(self.tree, key, record), boxes=boxes,
                                  ground_truth=self.item(key).truth or None, spec=settings.spec,
                                  terms=settings.term_list, pointing_tolerance_px=settings.pointing_tolerance_px,
                                  hedged_answers=settings.hedged_answers)
        return self.tree.with_stored_values(key, analysis)  # the tree's values where its CSV has them (README)

    def keep_robustness(self, key: str, study: dict, films: list) -> None:
        self.robustness_films[key] = films
        self.robustness[key] = study

    def robustness_of(self, key: str, config: Config | None = None) -> tuple[dict, list]:
        """The robustness study of one live sample, as ``medtui eval --robustness`` makes it, and the
        perturbed films as the model saw them; the session is not changed.

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
        return study, films

    def add_methods(self, key: str, analysis: SampleAnalysis) -> None:
        """The row's analysis with its methods (``methods_of``) in place of the one without."""
        self._replace_analysis(key, analysis)

    def methods_of(self, key: str, names: tuple[str, ...]) -> SampleAnalysis:
        """The row's analysis with the attribution methods ``names``, as ``medtui eval --methods`` computes
        them: their maps join a copy of the row's record (so ``v`` and the methods screen show them once
        filed) and their grid metrics and seconds its methods study section of ``extras``; the session is
        not changed. Holds the model lock throughout."""
        from medgemma_tui.pipeline.studies.methods import methods_study

        item = self.item(key)
        if self.is_tree or not self.needs_model or item.sample is None:
            raise RuntimeError("the methods need a live session with a model")
        entry = self.entries[key]
        if entry.status != DONE or entry.analysis is None:
            raise RuntimeError(f"{key} has no answer in memory: run it first (enter)")
        shown = entry.analysis
        record = replace(shown.record, maps=dict(shown.record.maps), timings_s=dict(shown.record.timings_s),
                         extra=dict(shown.record.extra))
        analysis = replace(shown, record=record, extras=dict(shown.extras))
        result = SampleResult(sample=item.sample, film=load_image(item.sample.image), analysis=analysis)
        with self._model_lock:
            analysis.extras[METHODS_STUDY] = methods_study(self.loaded, result, self.config, names)
        return analysis

    def run_many(
        self,
        keys: list[str],
        cancelled: Callable[[], bool],
        report: Callable[[int, int, str, Entry | None], None],
    ) -> tuple[int, int]:
        """``answer_many`` with each outcome filed as it comes; ``report(done, total, key, entry)`` before
        and after each row (entry None before). Returns (finished, failed)."""
        self.queue(keys)

        def started(index: int, total: int, key: str) -> None:
            self.start(key)
            report(index, total, key, None)

        def finished(index: int, total: int, outcome: RowOutcome) -> None:
            report(index, total, outcome.key, self.apply(outcome))

        try:
            return self.answer_many(keys, cancelled, started, finished)
        finally:
            self.unqueue(keys)

    def answer_many(
        self,
        keys: list[str],
        cancelled: Callable[[], bool],
        started: Callable[[int, int, str], None],
        finished: Callable[[int, int, RowOutcome], None],
    ) -> tuple[int, int]:
        """Answer ``keys`` until cancelled, through the pipeline's batch runner (the one ``eval`` uses),
        telling ``started(index, total, key)`` before a row and ``finished(index, total, outcome)`` after;
        the session is not changed. One sample failing does not stop the others. Returns (finished, failed).

        Live, rows go film by film (``batch.film_order``) through the runner's own per-film path, as in
        ``eval``: each film read once, its vision pass and masks computed once, ``[decoding] batch_size``
        rows to a generate. The model lock is held for one film at a time, so a single run asked for
        meanwhile waits for one film at most. A tree's rows are read from disk one by one."""
        if self.is_tree or not self.needs_model:
            return self._read_many(keys, cancelled, started, finished)
        return self._answer_many(keys, cancelled, started, finished)

    def _read_many(self, keys, cancelled, started, finished) -> tuple[int, int]:
        position = {key: i for i, key in enumerate(keys)}
        total, session = len(keys), self

        def read_one(loaded, item: Item, settings) -> RowOutcome:
            started(position[item.key], total, item.key)
            start = time.perf_counter()
            return RowOutcome(item.key, session.analyse(item.key), seconds=time.perf_counter() - start)

        class Outcomes:  # the batch runner's sink: each outcome handed on
            def finished(self, outcome: RowOutcome) -> None:
                finished(position[outcome.key] + 1, total, outcome)

            def failed(self, item: Item, error: str) -> None:
                finished(position[item.key] + 1, total, RowOutcome(item.key, error=error))

        counts = run_batch(self.loaded, [self.item(k) for k in keys], self.settings, Outcomes(),
                           should_stop=cancelled, answer=read_one)
        return counts.done, counts.failed

    def _answer_many(self, keys, cancelled, started, finished) -> tuple[int, int]:
        if self.loaded is None:
            self._model_ready.wait()
        if self.loaded is None:
            raise RuntimeError("the model did not load")
        samples = film_order([self.item(k).sample for k in keys])
        total, settings = len(samples), self.settings
        state = {"index": 0, "done": 0, "failed": 0}
        made: dict[str, RowOutcome] = {}  # a row's outcome waits for its seconds (the runner's progress)

        class Outcomes:  # the batch runner's sink
            def finished(self, result: SampleResult) -> None:
                made[result.sample.key] = RowOutcome(result.sample.key, result.analysis)

            def failed(self, sample, error: str) -> None:
                made[sample.key] = RowOutcome(sample.key, error=error)

        def timed(p) -> None:
            if p.event == "sample" and p.key in made:
                state["index"] += 1
                finished(state["index"], total, replace(made.pop(p.key), seconds=p.sample_s))

        for film in films_of(samples).values():
            if cancelled():
                break
            for sample in film:
                started(state["index"], total, sample.key)
            with self._model_lock:
                counts = run_batch(self.loaded, film, settings, Outcomes(), should_stop=cancelled, progress=timed)
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
        # a record dropped to save memory is answered again, for this export only
        analysis = entry.analysis if entry.analysis is not None else session.analyse(key)
        results.append(SampleResult(sample=item.sample, film=load_image(item.sample.image), analysis=analysis))
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
