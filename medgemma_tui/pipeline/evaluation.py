"""A batch of rows into a results tree: ``run.json`` as the run starts and ends, the rows through the one
batch runner, ``analysis/`` at the end. ``medtui eval``, ``medtui check --export`` and the app's export
all write their trees here, so every tree has the same files.

Never lose work: finished keys are skipped; a failing row is recorded with its ``error`` and the run
goes on; Ctrl-C or SIGTERM stops between two atomic writes, so the tree holds only whole rows, and the
next run completes it. ``analysis/`` and the final ``run.json`` are written whatever happened, and
``run.json`` says how the run ended ("done", "failed rows", "interrupted", "disk full", "analysis failed").
A full disk stops the run at the first write that finds no space; ``analysis/`` is then left as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.config import Config
from medgemma_tui.data.schema import Sample
from medgemma_tui.errors import first_line
from medgemma_tui.export.atomic import DiskFullError
from medgemma_tui.export.run_json import environment, model_json, now
from medgemma_tui.export.summary import tree_accuracy, write_analysis
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.model.loading import LoadedModel
from medgemma_tui.pipeline.batch import RunProgress, Study, film_order, run_batch
from medgemma_tui.pipeline.interrupts import interrupts_noted
from medgemma_tui.pipeline.rows import RowSettings, needs_model
from medgemma_tui.pipeline.writers import OverlappedTreeSink


@dataclass
class EvalCounts:
    selected: int  # dataset rows in scope (after --limit)
    done: int = 0  # finished in this run
    failed: int = 0  # failed in this run
    skipped: int = 0  # already finished before this run
    interrupted: bool = False
    signal: int | None = None  # the signal that interrupted the run (SIGINT for Ctrl-C)
    disk_full: str | None = None  # the write that found no space and stopped the run
    wall_s: float = 0.0
    out: str = ""
    accuracy: float | None = None  # over every scored row of the tree
    accuracy_interval: tuple[float, float] | None = None  # its 95% study-bootstrap interval, when one exists
    scored: int = 0  # rows of the tree with a yes/no ground truth and a finished answer
    retried: int = 0  # failed rows of an earlier run, tried again
    analysis_error: str | None = None
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.interrupted:  # the shell's convention: 128 + the signal (130 Ctrl-C, 143 SIGTERM)
            return 128 + (self.signal or 2)
        return 1 if self.failed or self.analysis_error or self.disk_full else 0

    @property
    def status(self) -> str:
        if self.interrupted:
            return "interrupted"
        if self.disk_full:
            return "disk full"
        if self.analysis_error:
            return "analysis failed"
        return "failed rows" if self.failed else "done"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["exit_code"] = self.exit_code
        return out


class TreeSink:
    """A batch's rows into a results tree: every file of a finished row, then its CSV row."""

    def __init__(self, tree: ResultsTree, config: Config):
        self.tree, self.config = tree, config
        self.write_failures: list[dict[str, str]] = []

    def finished(self, result: SampleResult) -> None:
        self.tree.write_sample(result, self.config)

    def failed(self, sample: Sample, error: str) -> None:
        self.tree.write_failure(sample, error)


def model_needed(samples: Sequence[Sample], tree: ResultsTree, resume: bool = True) -> bool:
    """Whether a run of ``samples`` into ``tree`` will put any row to the model."""
    return any(needs_model(s) for s in pending_samples(samples, tree, resume))


def writer_processes(config: Config, loaded: LoadedModel | None, rows: int) -> int:
    """How many worker processes write files: ``[export] writers``, where "auto" is one on a GPU host
    (its CPU is otherwise idle while the GPU answers) and none on a CPU, where the model uses every core."""
    wanted = config.export.writers
    if rows < 2 or loaded is None:
        return 0
    if wanted == "auto":
        return 1 if str(loaded.device).startswith("cuda") else 0
    return int(wanted)


def pending_samples(samples: Sequence[Sample], tree: ResultsTree, resume: bool = True) -> list[Sample]:
    """The rows a run will process: every one with ``resume`` off, else those not finished in the tree."""
    if not resume:
        return list(samples)
    finished = tree.finished_keys()
    return [s for s in samples if s.key not in finished]


@contextmanager
def tree_run(tree: ResultsTree, loaded: LoadedModel | None, config: Config, counts: EvalCounts,
             run_info: dict[str, Any] | None = None, plots: bool = True) -> Iterator[dict[str, Any]]:
    """``run.json`` as the run starts; on the way out, whatever happened inside, ``analysis/`` and the
    final ``run.json`` (``timings_s.analysis``: the CSV built from the journal and ``analysis/`` written). A
    failing analysis is reported in ``counts.analysis_error``, never raised.
    ``plots`` and ``[visualization] save_plots`` both must hold for the dataset plots to be drawn."""
    plots = plots and config.visualization.save_plots
    started = time.perf_counter()
    tree.write_csv()  # the rows a killed run left in the journal join the CSV
    run = write_run_start(tree, loaded, config, counts, run_info)
    try:
        yield run
    except KeyboardInterrupt:
        counts.interrupted = True
    finally:
        analysis_started = time.perf_counter()
        try:
            if counts.disk_full:  # every write would fail the same way
                raise DiskFullError(counts.disk_full)
            tree.write_csv()
            summary = write_analysis(tree, counts={"skipped": counts.skipped, "interrupted": counts.interrupted},
                                     plots=plots, formats=config.visualization.formats, dpi=config.visualization.dpi,
                                     hedged_answers=config.analysis.hedged_answers)
            counts.accuracy = summary.get("accuracy")
            interval = (summary.get("intervals") or {}).get("accuracy")
            counts.accuracy_interval = tuple(interval) if interval and None not in interval else None
            counts.scored = int(summary.get("scored") or 0)
        except KeyboardInterrupt:
            counts.interrupted = True
            counts.analysis_error = "interrupted while writing analysis/"
            try:  # the rows are all there: their accuracy is one read of the CSV
                counts.accuracy, counts.scored = tree_accuracy(tree)
            except (KeyboardInterrupt, Exception):
                pass
        except DiskFullError as exc:
            counts.disk_full = counts.disk_full or first_line(exc)
        except Exception as exc:  # the rows are safe; say what went wrong with the analysis
            counts.analysis_error = f"{type(exc).__name__}: {first_line(exc)}"
        run["timings_s"] = {**run.get("timings_s", {}),
                            "analysis": round(time.perf_counter() - analysis_started, 3)}
        counts.wall_s = time.perf_counter() - started
        try:
            write_run_finish(tree, run, counts)
        except DiskFullError as exc:  # run.json stays "running": the one line on stderr says why
            counts.disk_full = counts.disk_full or first_line(exc)


def run_evaluation(
    loaded: LoadedModel | None,
    samples: Sequence[Sample],
    tree: ResultsTree,
    config: Config,
    *,
    resume: bool = True,
    progress: Callable[[RunProgress], None] | None = None,
    studies: Sequence[Study] = (),
    run_info: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    analysis_plots: bool = True,
) -> EvalCounts:
    """Run ``samples`` into ``tree`` (whose lock the caller holds, see ``ResultsTree.locked``).

    ``should_stop`` is polled between rows (the app's cancel button); Ctrl-C and SIGTERM stop the run
    the same way.
    """
    if not resume:
        tree.reset()
    pending = film_order(pending_samples(samples, tree))
    if loaded is None and any(needs_model(s) for s in pending):
        raise ValueError(f"{len(pending)} samples left to run and no model given")
    counts = EvalCounts(selected=len(samples), skipped=len(samples) - len(pending), out=str(tree.root))
    failed_before = tree.failed_keys()
    counts.retried = sum(1 for s in pending if s.key in failed_before)
    settings = RowSettings.from_config(config)

    def report(p: RunProgress) -> None:
        if progress is not None:
            progress(p)

    writers = writer_processes(config, loaded, len(pending))
    with interrupts_noted() as interrupted, tree_run(tree, loaded, config, counts, run_info, analysis_plots) as run:
        sink = OverlappedTreeSink(tree, config, writers) if writers else TreeSink(tree, config)
        try:
            batch = run_batch(loaded, pending, settings, sink, studies=studies, progress=report,
                              should_stop=should_stop, interrupted=interrupted, skipped=counts.skipped)
        finally:
            if writers:
                sink.close()
        late = sink.write_failures
        counts.done, counts.failed = batch.done - len(late), batch.failed + len(late)
        counts.failures = batch.failures + late
        counts.interrupted = batch.interrupted
        counts.disk_full = batch.disk_full or getattr(sink, "disk_full", None)
        run["timings_s"] = {**run.get("timings_s", {}), **sample_timings(batch.sample_times)}
        report(RunProgress("analysis", len(pending), batch.done + batch.failed, batch.done, batch.failed,
                        counts.skipped, sum(batch.sample_times)))
    if interrupted:  # during the rows or while analysis/ was written
        counts.signal = interrupted.signum
    report(RunProgress("finish", len(pending), counts.done + counts.failed, counts.done, counts.failed,
                    counts.skipped, counts.wall_s))
    return counts


def write_results(results: Sequence[SampleResult], tree: ResultsTree, config: Config, loaded: LoadedModel | None,
                  run_info: dict[str, Any] | None = None, plots: bool = True,
                  should_stop: Callable[[], bool] | None = None,
                  report: Callable[[int, int, str], None] | None = None) -> EvalCounts:
    """Rows answered elsewhere (the app, ``check``) into ``tree`` as a complete tree: files, rows,
    ``run.json`` and ``analysis/``, through the same writer and rules as ``run_evaluation``."""
    counts = EvalCounts(selected=len(results), out=str(tree.root))
    sink = TreeSink(tree, config)
    with tree_run(tree, loaded, config, counts, run_info, plots):
        for i, result in enumerate(results):
            if should_stop is not None and should_stop():
                counts.interrupted = True
                break
            if report is not None:
                report(i, len(results), result.sample.key)
            sink.finished(result)
            counts.done += 1
    if report is not None:
        report(len(results), len(results), "")
    return counts


def sample_timings(times: Sequence[float]) -> dict[str, float | None]:
    return {"samples": round(sum(times), 3),
            "per_sample_mean": round(sum(times) / len(times), 4) if times else None}


def write_run_start(tree: ResultsTree, loaded: LoadedModel | None, config: Config, counts: EvalCounts,
                    run_info: dict[str, Any] | None) -> dict[str, Any]:
    """run.json as the run starts; earlier runs of the tree are kept, briefly, under ``previous_runs``.

    ``loaded`` is None when nothing is left to run: the model of the earlier run is kept.
    """
    previous = tree.read_run()
    history = previous.pop("previous_runs", [])
    if previous:
        entry = {k: previous.get(k) for k in ("started", "finished", "status", "counts", "model")}
        if entry["status"] == "running":  # this run holds the lock: that one was killed before it could say so
            entry["status"] = "killed"
        history.append(entry)
    if loaded is not None:
        model = {"model": model_json(loaded), "device": str(loaded.device), "dtype": loaded.info.dtype}
    else:
        model = {k: previous.get(k) for k in ("model", "device", "dtype")}
    run = {
        "status": "running",
        "started": now(),
        "finished": None,
        **model,
        "versions": environment(),
        "config": config.to_json(),
        **(run_info or {}),
        "counts": {"selected": counts.selected, "skipped": counts.skipped},
        "previous_runs": history,
    }
    tree.write_run(run)
    return run


def write_run_finish(tree: ResultsTree, run: dict[str, Any], counts: EvalCounts) -> None:
    run["status"] = counts.status
    run["finished"] = now()
    run["counts"] = {k: v for k, v in counts.to_json().items() if k not in ("out", "failures")}
    run["timings_s"] = {**run.get("timings_s", {}), "run": round(counts.wall_s, 3)}
    tree.write_run(run)
