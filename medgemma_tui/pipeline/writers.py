"""Writing a row's files while the model answers the next rows: worker processes fed by a bounded queue.

Figures (matplotlib), masks and the record's safetensors are written by ``writers`` worker processes
(``concurrent.futures.ProcessPoolExecutor``; ``spawn``ed, so no thread state of torch is forked); the
run's own process keeps the one writer of the rows and puts a row only when its worker has written
every file of it, so the tree's rules hold: atomic files, a recorded row means a finished row.

At most ``backlog`` rows wait to be written; the model waits when the queue is full, so memory stays
bounded. Workers ignore Ctrl-C: on an interrupt the run stops answering, ``close`` waits for the rows
already handed over (their rows enter the CSV) and nothing finished is lost. A second Ctrl-C while
waiting stops at once; files of rows not yet in the CSV are rewritten by the next run.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.config import Config
from medgemma_tui.data.schema import Sample
from medgemma_tui.errors import first_line
from medgemma_tui.export.atomic import DiskFullError, disk_full
from medgemma_tui.export.tree import ResultsTree


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def write_in_worker(root: str, config: Config, result: SampleResult) -> dict:
    """A worker's job: every file of one row; returns the row for the CSV."""
    return ResultsTree(root).write_files(result, config)


class OverlappedTreeSink:
    """``evaluation.TreeSink`` with the files written in worker processes (see the module docstring).

    ``put_row(row)`` and ``put_failure(sample, error)`` record a row once its files exist (default: into
    the tree; a Ray actor hands them back to its driver instead)."""

    def __init__(self, tree: ResultsTree, config: Config, writers: int = 1, backlog: int = 2,
                 put_row: Callable[[dict], None] | None = None,
                 put_failure: Callable[[Sample, str], None] | None = None):
        self.tree, self.config = tree, config
        self.put_row = put_row or tree.put_row
        self.put_failure = put_failure or tree.write_failure
        self.backlog = max(1, backlog)
        self.pool = ProcessPoolExecutor(max_workers=writers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_ignore_interrupts)
        self.pending: deque[tuple[Sample, Future]] = deque()
        self.write_failures: list[dict[str, str]] = []
        self.disk_full: str | None = None  # a worker's write that found no space, met while closing

    def finished(self, result: SampleResult) -> None:
        while len(self.pending) >= self.backlog:
            self._settle_oldest()
        self.pending.append((result.sample, self.pool.submit(write_in_worker, str(self.tree.root), self.config,
                                                             result)))
        self._settle_done()

    def failed(self, sample: Sample, error: str) -> None:
        self.put_failure(sample, error)

    def _settle_done(self) -> None:
        while self.pending and self.pending[0][1].done():
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        sample, future = self.pending.popleft()
        try:
            row = future.result()
        except Exception as exc:  # a row whose files could not be written fails alone
            if disk_full(exc):  # ... unless the disk is full: that stops the run (``batch``), the row unrecorded
                raise (exc if isinstance(exc, DiskFullError) else DiskFullError(first_line(exc))) from exc
            error = f"writing files: {type(exc).__name__}: {first_line(exc)}"
            self.put_failure(sample, error)
            self.write_failures.append({"key": sample.key, "error": error})
            return
        self.put_row(row)

    def drain(self) -> None:
        """Wait for every row handed over and record it; the workers stay for the next rows."""
        while self.pending:
            self._settle_oldest()

    def close(self) -> None:
        """Wait for every row handed over, record it; then stop the workers."""
        try:
            while self.pending:
                try:
                    self._settle_oldest()
                except DiskFullError as exc:
                    self.disk_full = self.disk_full or first_line(exc)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
