"""The one batch runner: rows through ``rows.answer_row`` into a sink, with progress, a stop flag and
per-row failure isolation. ``medtui eval`` (through ``evaluation.run_evaluation``), the app's run and
run-all, and the bench all run rows here.

A failing row (missing or unreadable image, an empty question, an inference error, CUDA out of
memory) goes to the sink's ``failed`` with a one-line error and the run goes on. A full disk stops the
run at once (``BatchCounts.disk_full``): every later row would compute and then fail the same way, and
the row that found it is not recorded, so the next run does it again. Ctrl-C or SIGTERM
(``interrupts.interrupts_noted``) or the caller's ``should_stop`` stops the run between two rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.data.images import LoadedImage, load_image
from medgemma_tui.data.schema import Sample
from medgemma_tui.engine.extract import batch_size_for
from medgemma_tui.engine.record import AttentionRecord
from medgemma_tui.engine.vision import VisionCache
from medgemma_tui.errors import MedtuiError, first_line
from medgemma_tui.export.atomic import DiskFullError, disk_full
from medgemma_tui.model.loading import LoadedModel
from medgemma_tui.pipeline.interrupts import InterruptFlag
from medgemma_tui.pipeline.rows import RowSettings, answer_films, answer_row, check_row, needs_model

# A study run on each answered row before it reaches the sink (robustness, faithfulness): it may add
# to ``result.analysis.extras``; an exception fails the row like any other.
Study = Callable[[LoadedModel, SampleResult], None]


class Sink(Protocol):
    """Where finished and failed rows go: a results tree, the app's memory."""

    def finished(self, result: SampleResult) -> None: ...

    def failed(self, sample: Sample, error: str) -> None: ...


@dataclass
class RunProgress:
    """One step of a run: ``event`` is "start", "sample" (one row finished or failed), "analysis" (writing
    analysis/) or "finish"."""

    event: str
    total: int  # rows this run will process (after skipping)
    index: int  # rows processed so far in this run
    done: int
    failed: int
    skipped: int
    elapsed_s: float
    key: str | None = None
    error: str | None = None
    sample_s: float | None = None

    @property
    def rate(self) -> float | None:
        """Rows per second so far."""
        return self.index / self.elapsed_s if self.index and self.elapsed_s > 0 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.index) / rate if rate else None


@dataclass
class BatchCounts:
    selected: int  # rows in scope
    done: int = 0  # finished in this run
    failed: int = 0  # failed in this run
    skipped: int = 0  # already finished before this run
    interrupted: bool = False
    disk_full: str | None = None  # the write that found no space, when one stopped the run
    sample_times: list[float] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def failure_message(exc: BaseException) -> str:
    """One line for the CSV's ``error`` column."""
    from medgemma_tui.data.images import ImageError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ImageError):
        return f"image: {text}"
    if isinstance(exc, MedtuiError):
        return text
    if is_cuda_oom(exc):
        return f"CUDA out of memory: {text[:200]}"
    return f"{type(exc).__name__}: {first_line(exc)[:300]}"


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


class FilmAtHand:
    """The film of the rows being answered: read from disk once, its vision pass and its anatomy masks
    computed once, for every row on it in a row (``film_order`` puts them together); memory holds one
    film at a time. ``answer_together`` answers several of its rows by one generate; ``answer`` then
    takes each row's record from there."""

    def __init__(self) -> None:
        self.path = None
        self.film = None
        self.masks = None
        self.vision = VisionCache()
        self.ready: dict[str, AttentionRecord] = {}  # key -> record answered with others of the film

    def _at(self, sample: Sample) -> LoadedImage:
        if sample.image != self.path:
            self.path, self.film, self.masks = sample.image, None, None
            self.vision.clear()
            self.ready = {}
        if self.film is None:
            check_row(sample)
            self.film = load_image(sample.image)
        return self.film

    def answer_together(self, loaded: LoadedModel, samples: Sequence[Sample], settings: RowSettings) -> None:
        """Answer the rows ``samples`` (of one film) by one generate, for ``answer`` to take."""
        film = self._at(samples[0])
        records = answer_films(loaded, list(samples), film, settings, self.vision)
        self.ready.update({sample.key: record for sample, record in zip(samples, records, strict=True)})

    def answer(self, loaded: LoadedModel, sample: Sample, settings: RowSettings) -> SampleResult:
        film = self._at(sample)
        record = self.ready.pop(sample.key, None)
        result = answer_row(loaded, sample, settings, film=film, vision=self.vision, masks=self.masks, record=record)
        self.masks = result.analysis.masks
        return result


def batches(samples: Sequence[Sample], size: int) -> list[list[Sample]]:
    """Consecutive rows of one film, ``size`` at most to a batch; a row the model will not be asked (a bad
    row) is a batch of its own, so it fails alone."""
    out: list[list[Sample]] = []
    for sample in samples:
        last = out[-1] if out else None
        if (last is not None and len(last) < size and needs_model(sample) and needs_model(last[0])
                and last[0].image == sample.image):
            last.append(sample)
        else:
            out.append([sample])
    return out


def film_order(samples: Sequence[Sample]) -> list[Sample]:
    """The rows grouped film by film, films in the order they first appear, rows in dataset order within."""
    groups: dict[object, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.image, []).append(sample)
    return [s for group in groups.values() for s in group]


def run_batch(
    loaded: LoadedModel | None,
    samples: Sequence[Sample],
    settings: RowSettings,
    sink: Sink,
    *,
    studies: Sequence[Study] = (),
    progress: Callable[[RunProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    interrupted: InterruptFlag | None = None,
    skipped: int = 0,
    answer: Callable[[LoadedModel, Sample, RowSettings], SampleResult] | None = None,
) -> BatchCounts:
    """Answer ``samples`` in order into ``sink``; returns the counts (``interrupted`` when stopped early).

    ``answer`` is how a row is answered (default: ``rows.answer_row`` with the film at hand reused,
    ``FilmAtHand``; the app passes its own, which also reads rows from a tree). With the default,
    ``settings.batch_size`` rows of one film at a time are answered by one generate (``batches``), each
    record the same as the row's alone; the studies and the model views stay per row. A batch whose
    generate fails (CUDA out of memory included) is answered again row by row, so only a failing row fails.
    A row's ``sample_s`` includes its share of its batch's generate.

    ``interrupted`` is the flag of ``interrupts_noted``: an exception raised while it is set is the
    interrupt surfacing through torch, not a failure of the row.
    """
    counts = BatchCounts(selected=len(samples) + skipped, skipped=skipped)
    size, at_hand = 1, None
    if answer is None:
        if loaded is None and any(needs_model(s) for s in samples):
            raise ValueError(f"{len(samples)} rows left to run and no model given")
        at_hand = FilmAtHand()
        answer = at_hand.answer
        size = batch_size_for(settings.batch_size, loaded, settings.max_new_tokens)
    started = time.perf_counter()

    def report(event: str, key: str | None = None, error: str | None = None, sample_s: float | None = None):
        if progress is not None:
            progress(RunProgress(event, len(samples), counts.done + counts.failed, counts.done, counts.failed,
                              counts.skipped, time.perf_counter() - started, key, error, sample_s))

    def stopping() -> bool:
        return (should_stop is not None and should_stop()) or bool(interrupted)

    def run_row(sample: Sample, shared_s: float) -> None:
        t0 = time.perf_counter()
        error = None
        try:
            result = answer(loaded, sample, settings)
            for study in studies:
                study(loaded, result)
            sink.finished(result)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            if interrupted:  # Ctrl-C surfaced as another exception inside torch: stop, record nothing
                raise KeyboardInterrupt from exc
            if disk_full(exc):  # stop, record nothing (the failed row could not be written either)
                counts.disk_full = (first_line(exc) if isinstance(exc, DiskFullError)
                                    else f"no space left on the device: {first_line(exc)}")
                return
            error = failure_message(exc)
            if is_cuda_oom(exc):
                free_accelerator_memory()
            sink.failed(sample, error)
            counts.failed += 1
            counts.failures.append({"key": sample.key, "error": error})
        else:
            counts.done += 1
        elapsed = time.perf_counter() - t0 + shared_s
        counts.sample_times.append(elapsed)
        report("sample", sample.key, error, elapsed)

    report("start")
    try:
        for batch in batches(samples, size):
            if stopping():
                counts.interrupted = True
                break
            shared = 0.0  # the batch's generate, shared by its rows
            if at_hand is not None and len(batch) > 1:
                t0 = time.perf_counter()
                try:
                    at_hand.answer_together(loaded, batch, settings)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # out of memory or a bad row: its rows are answered one by one
                    if interrupted:
                        raise KeyboardInterrupt from exc
                    if is_cuda_oom(exc):
                        free_accelerator_memory()
                shared = (time.perf_counter() - t0) / len(batch)
            for sample in batch:
                if stopping():
                    counts.interrupted = True
                    break
                run_row(sample, shared)
                if counts.disk_full:
                    break
            if counts.interrupted or counts.disk_full:
                break
    except KeyboardInterrupt:
        counts.interrupted = True
    return counts
