"""The headless batch run: every sample of a dataset through the engine and analysis into a results tree.

Shared by ``medtui eval`` and the app's "run all". No UI here: progress goes to a callback as
``EvalProgress`` values, and the caller draws it however it likes.

Never lose work (DESIGN.md): finished keys are skipped; a failing sample (missing or unreadable image,
inference error, CUDA out of memory) is recorded with its ``error`` and the run goes on; a
KeyboardInterrupt (Ctrl-C, or SIGTERM through ``terminate_as_interrupt``) stops between two atomic
writes, so the tree holds only whole samples, and the next run completes it. Failed rows are retried
by the next run.
"""

from __future__ import annotations

import datetime as _dt
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from medgemma_tui.export.tree import ResultsTree, environment, model_json

if TYPE_CHECKING:
    from medgemma_tui.analysis.views import MapSpec
    from medgemma_tui.config import Config
    from medgemma_tui.data.schema import Sample
    from medgemma_tui.model.loading import LoadedModel
    from medgemma_tui.runner import SampleResult

# A study run on each finished sample (robustness, faithfulness: issue 6). It may write files under the
# tree (e.g. robustness/{key}.json); an exception fails the sample like any other.
Study = Callable[["LoadedModel", "SampleResult", ResultsTree], None]


@dataclass
class EvalProgress:
    """One step of a run: ``event`` is "start", "sample" (one sample finished or failed), "analysis" (writing
    analysis/) or "finish"."""

    event: str
    total: int  # samples this run will process (after skipping)
    index: int  # samples processed so far in this run
    done: int
    failed: int
    skipped: int
    elapsed_s: float
    key: str | None = None
    error: str | None = None
    sample_s: float | None = None

    @property
    def rate(self) -> float | None:
        """Samples per second so far."""
        return self.index / self.elapsed_s if self.index and self.elapsed_s > 0 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.index) / rate if rate else None


@dataclass
class EvalCounts:
    selected: int  # dataset rows in scope (after --limit)
    done: int = 0  # finished in this run
    failed: int = 0  # failed in this run
    skipped: int = 0  # already finished before this run
    interrupted: bool = False
    wall_s: float = 0.0
    out: str = ""
    accuracy: float | None = None  # over every finished row of the tree
    retried: int = 0  # failed rows of an earlier run, tried again
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["exit_code"] = self.exit_code
        return out


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def failure_message(exc: BaseException) -> str:
    """One line for the CSV's ``error`` column."""
    from medgemma_tui.data.images import ImageError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ImageError):
        return f"image: {text}"
    if is_cuda_oom(exc):
        return f"CUDA out of memory: {text[:200]}"
    return f"{type(exc).__name__}: {text[:300]}"


def is_cuda_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or (
        isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)
    )


def free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (main thread only), so a kill stops as cleanly as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def map_spec(config: Config) -> MapSpec:
    """The map of ``grids/`` and the overlay, from the config's [analysis] section."""
    from medgemma_tui.analysis.views import MapSpec

    return MapSpec(view=config.analysis.map_view, rows=config.analysis.default_row,
                   layers=config.analysis.layer_span)


def run_one(loaded: LoadedModel, sample: Sample, config: Config, spec: MapSpec, terms: list[str] | None
            ) -> SampleResult:
    """One sample through the engine and analysis; views that need the model again get their maps first."""
    from medgemma_tui import runner
    from medgemma_tui.analysis.views import MODEL_VIEWS

    if spec.view not in MODEL_VIEWS:
        return runner.run_sample(loaded, sample, config.decoding.max_new_tokens, spec, terms)
    from medgemma_tui.analysis.sample import analyse_record
    from medgemma_tui.engine.gradients import add_model_views

    first = runner.run_sample(loaded, sample, config.decoding.max_new_tokens, spec.with_(view="answer"), terms)
    add_model_views(loaded, first.film.rgb, first.record, [MODEL_VIEWS[spec.view]])
    analysis = analyse_record(first.record, pixels=first.film.pixels, boxes=list(sample.bbox),
                              ground_truth=sample.answer, spec=spec, terms=terms, masks=first.analysis.masks)
    return runner.SampleResult(sample=sample, film=first.film, analysis=analysis)


def pending_samples(samples: Sequence[Sample], tree: ResultsTree, resume: bool = True) -> list[Sample]:
    """The samples a run will process: every one with ``resume`` off, else those not finished in the tree."""
    if not resume:
        return list(samples)
    finished = tree.finished_keys()
    return [s for s in samples if s.key not in finished]


def run_evaluation(
    loaded: LoadedModel | None,
    samples: Sequence[Sample],
    tree: ResultsTree,
    config: Config,
    *,
    resume: bool = True,
    progress: Callable[[EvalProgress], None] | None = None,
    studies: Sequence[Study] = (),
    run_info: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    analysis_plots: bool = True,
) -> EvalCounts:
    """Run ``samples`` into ``tree`` (whose lock the caller holds, see ``ResultsTree.locked``).

    ``should_stop`` is polled between samples (the app's cancel button); KeyboardInterrupt stops the
    run the same way. run.json and analysis/ are written at the end, interrupted or not.
    """
    from medgemma_tui.export.summary import write_analysis

    started = time.perf_counter()
    if not resume:
        tree.reset()
    pending = pending_samples(samples, tree)
    if pending and loaded is None:
        raise ValueError(f"{len(pending)} samples left to run and no model given")
    counts = EvalCounts(selected=len(samples), skipped=len(samples) - len(pending), out=str(tree.root))
    failed_before = tree.failed_keys()
    counts.retried = sum(1 for s in pending if s.key in failed_before)
    spec = map_spec(config)
    terms = list(config.analysis.terms) if config.analysis.terms else None
    run = write_run_start(tree, loaded, config, counts, run_info)

    def report(event: str, key: str | None = None, error: str | None = None, sample_s: float | None = None):
        if progress is not None:
            progress(EvalProgress(event, len(pending), counts.done + counts.failed, counts.done, counts.failed,
                                  counts.skipped, time.perf_counter() - started, key, error, sample_s))

    sample_times: list[float] = []
    report("start")
    try:
        for sample in pending:
            if should_stop is not None and should_stop():
                counts.interrupted = True
                break
            t0 = time.perf_counter()
            error = None
            try:
                result = run_one(loaded, sample, config, spec, terms)
                for study in studies:
                    study(loaded, result, tree)
                tree.write_sample(result, config)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one sample's failure is recorded; the run goes on
                error = failure_message(exc)
                if is_cuda_oom(exc):
                    free_accelerator_memory()
                tree.write_failure(sample, error)
                counts.failed += 1
                counts.failures.append({"key": sample.key, "error": error})
            else:
                counts.done += 1
            elapsed = time.perf_counter() - t0
            sample_times.append(elapsed)
            report("sample", sample.key, error, elapsed)
    except KeyboardInterrupt:
        counts.interrupted = True
    finally:
        report("analysis")
        summary = write_analysis(tree, counts={"skipped": counts.skipped, "interrupted": counts.interrupted},
                                 plots=analysis_plots)
        counts.accuracy = summary.get("accuracy")
        counts.wall_s = time.perf_counter() - started
        write_run_finish(tree, run, counts, sample_times)
        report("finish")
    return counts


def write_run_start(tree: ResultsTree, loaded: LoadedModel | None, config: Config, counts: EvalCounts,
                    run_info: dict[str, Any] | None) -> dict[str, Any]:
    """run.json as the run starts; earlier runs of the tree are kept, briefly, under ``previous_runs``.

    ``loaded`` is None when nothing is left to run: the model of the earlier run is kept.
    """
    previous = tree.read_run()
    history = previous.pop("previous_runs", [])
    if previous:
        history.append({k: previous.get(k) for k in ("started", "finished", "status", "counts", "model")})
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


def write_run_finish(tree: ResultsTree, run: dict[str, Any], counts: EvalCounts, sample_times: list[float]) -> None:
    run["status"] = "interrupted" if counts.interrupted else ("failed rows" if counts.failed else "done")
    run["finished"] = now()
    run["counts"] = {k: v for k, v in counts.to_json().items() if k not in ("out", "failures")}
    run["timings_s"] = {
        **run.get("timings_s", {}),
        "run": round(counts.wall_s, 3),
        "samples": round(sum(sample_times), 3),
        "per_sample_mean": round(sum(sample_times) / len(sample_times), 4) if sample_times else None,
    }
    tree.write_run(run)
