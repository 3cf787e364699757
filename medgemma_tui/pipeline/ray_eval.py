"""``medtui eval --ray``: the evaluation of ``evaluation.run_evaluation`` spread over a Ray cluster.

Workers are Ray actors, each holding one model loaded once (one GPU each on GPU hosts, a share of the
CPUs otherwise). The unit of work is a film: all rows on one image go to one actor in one task, which
runs them through ``batch.run_batch`` as a local run does: the film read, its vision pass and masks
computed once, ``--batch-size`` rows answered by one generate. Where the actor sees the tree's folder
(one host, or a shared file system) it writes each finished row's files itself (``ResultsTree.write_files``:
figures rendered where the rows are answered) and sends back only the row's CSV cells; elsewhere it sends
the ``SampleResult`` and the driver writes its files. Only the driver puts rows, through the tree's
journal (one synced append per film) and its atomic rules, so a Ray run and a local run of the same rows write
the same CSV and files.

Scheduling: the driver keeps a queue of films (in ``film_order``) and gives each live actor up to
``DEPTH`` films at a time, the next one as soon as one comes back, so fast workers take more films.

Failures: Ray reports a task whose actor died with ``RayActorError`` (Ray's "Actor Fault Tolerance"
page); the driver then puts the film back at the head of the queue for another actor, starts a
replacement actor (at most ``max_replacements`` in a run), and after ``MAX_ATTEMPTS`` deaths on one
film records its rows as failed, so a film that kills every worker cannot stall the run. Actors are
created with ``max_restarts=0``: recovery is the driver's, so a film is never run twice at once. Rows
the driver has written are never lost; a re-run skips finished keys as ``run_evaluation`` does.

Ray is an optional dependency (``pip install 'medgemma-tui[ray]'``), imported only here.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.config import Config
from medgemma_tui.data.schema import Sample
from medgemma_tui.errors import MedtuiError, first_line
from medgemma_tui.export.columns import sample_columns
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.pipeline.batch import RunProgress, film_order
from medgemma_tui.pipeline.evaluation import (
    EvalCounts,
    TreeSink,
    pending_samples,
    sample_timings,
    tree_run,
    writer_processes,
)
from medgemma_tui.pipeline.interrupts import interrupts_noted
from medgemma_tui.pipeline.shards import films_of
from medgemma_tui.pipeline.studies import make_studies

DEPTH = 2  # films in flight per actor: one running, one waiting, so an actor never idles on the driver
MAX_ATTEMPTS = 3  # actor deaths on one film before its rows are recorded as failed
WAIT_S = 0.5  # the longest the driver blocks in ray.wait, so Ctrl-C is noticed between two waits
READY_TIMEOUT_S = 1800.0  # no actor ready after this long (no resources, a hung load): give up


class RayMissingError(MedtuiError):
    """``--ray`` without Ray installed."""


class RayRunError(MedtuiError):
    """The cluster cannot be reached, or no worker could load the model."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayMissingError("--ray needs Ray, which is not installed: pip install 'medgemma-tui[ray]'") from None
    return ray


@dataclass
class RayProgress(RunProgress):
    """A step of a Ray run: a ``RunProgress`` with the workers alive, the worker that sent the row, and, for a
    "worker" event (started, died, replaced), a note."""

    workers: int = 0
    worker: str | None = None
    note: str | None = None


@dataclass
class RowOutcome:
    """One row as an actor sends it back: finished, its files written (``row``, the CSV cells) or to be
    written by the driver (``result``); or failed (``error``)."""

    sample: Sample
    result: SampleResult | None
    error: str | None
    seconds: float
    row: dict[str, Any] | None = None


class FilmWorker:
    """The body of one Ray actor: one model, loaded once; films in, rows out."""

    def __init__(self, config_json: dict[str, Any], studies: Sequence[str], threads: int | None = None,
                 tree_root: str | None = None):
        self.error: str | None = None
        # the tree's folder, where this actor can write it (else the driver writes the files)
        self.tree_root = tree_root if tree_root and os.path.isdir(tree_root) and os.access(tree_root, os.W_OK) \
            else None
        try:
            if threads:
                import torch

                torch.set_num_threads(threads)
            from medgemma_tui.engine.loading import load_for_capture
            from medgemma_tui.pipeline.rows import RowSettings

            self.config = config = Config.from_json(config_json)
            self.loaded = load_for_capture(config.model.name_or_path, device=config.model.device,
                                           dtype=config.model.dtype, revision=config.model.revision,
                                           adapter=config.model.adapter)
            self.settings = RowSettings.from_config(config)
            self.studies = make_studies(config, studies)
            # processes writing the rows' files while the model answers ([export] writers; auto: one on a GPU)
            self.writers = writer_processes(config, self.loaded, 2) if self.tree_root else 0
            self.overlapped = None
        except Exception as exc:  # reported by describe(), so the driver can say it in one line
            self.error = f"{type(exc).__name__}: {first_line(exc)}"

    def describe(self) -> dict[str, Any]:
        """The model block of run.json, and where this worker runs; ``error`` when the model did not load."""
        where = {"host": socket.gethostname(), "pid": os.getpid()}
        if self.error:
            return {"error": self.error, **where}
        from medgemma_tui.export.run_json import model_json

        return {"model": model_json(self.loaded), "device": str(self.loaded.device),
                "dtype": self.loaded.info.dtype, **where}

    def run_film(self, samples: Sequence[Sample]) -> list[RowOutcome]:
        """The rows of one film, through the one batch runner (``--batch-size`` rows to a generate); every
        row comes back finished or failed, with its files written here where this actor sees the tree."""
        from medgemma_tui.export.tree import ResultsTree
        from medgemma_tui.pipeline.batch import run_batch

        outcomes: list[RowOutcome] = []
        times: dict[str, float] = {}
        tree = ResultsTree(self.tree_root) if self.tree_root else None
        config = self.config
        film = {sample.key: sample for sample in samples}

        class Collect:
            def finished(self, result: SampleResult) -> None:
                if tree is None:
                    outcomes.append(RowOutcome(result.sample, result, None, 0.0))
                    return
                try:
                    row = tree.write_files(result, config)
                except Exception as exc:  # a row whose files could not be written fails alone
                    outcomes.append(RowOutcome(result.sample, None, f"writing files: {type(exc).__name__}: "
                                                                    f"{first_line(exc)}", 0.0))
                    return
                outcomes.append(RowOutcome(result.sample, None, None, 0.0, row=row))

            def failed(self, sample: Sample, error: str) -> None:
                outcomes.append(RowOutcome(sample, None, error, 0.0))

        def timed(p: RunProgress) -> None:
            if p.event == "sample" and p.key is not None:
                times[p.key] = p.sample_s or 0.0

        if tree is not None and self.writers:  # files written in worker processes while the next rows are answered
            from medgemma_tui.pipeline.writers import OverlappedTreeSink

            if self.overlapped is None:
                self.overlapped = OverlappedTreeSink(tree, config, self.writers)
            sink = self.overlapped
            sink.put_row = lambda row: outcomes.append(RowOutcome(film[row["key"]], None, None, 0.0, row=row))
            sink.put_failure = lambda sample, error: outcomes.append(RowOutcome(sample, None, error, 0.0))
            try:
                run_batch(self.loaded, samples, self.settings, sink, studies=self.studies, progress=timed)
            finally:
                sink.drain()
                sink.write_failures.clear()
        else:
            run_batch(self.loaded, samples, self.settings, Collect(), studies=self.studies, progress=timed)
        for outcome in outcomes:
            outcome.seconds = times.get(outcome.sample.key, 0.0)
        return outcomes


# ---- the driver ------------------------------------------------------------------------------------
@dataclass
class Film:
    samples: list[Sample]
    attempts: int = 0


@dataclass
class Worker:
    name: str
    handle: Any
    ready_ref: Any
    alive: bool = False
    dead: bool = False
    info: dict[str, Any] | None = None


def connect(ray, address: str | None) -> bool:
    """Join the cluster at ``address`` ("auto" or host:port), or with None start a local Ray (``ray.init()``,
    which Ray's "Starting Ray" page describes); returns whether this call started it. A driver that is
    already connected (a test's local cluster) is used as it is."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as exc:  # ConnectionError, a bad address, a version mismatch: one line
        where = address or "a local Ray"
        raise RayRunError(f"cannot start or join {where}: {first_line(exc)}") from None
    return True


def worker_options(ray, config: Config, workers: int | None) -> tuple[int, dict[str, Any], int | None]:
    """(actors, their resource options, torch threads): one GPU each where the cluster has GPUs and the
    config does not ask for the CPU; else an equal share of the CPUs, no more than one node has."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    on_cpu = str(config.model.device).startswith("cpu")
    if gpus and not on_cpu:
        return workers or gpus, {"num_gpus": 1, "num_cpus": 1}, None
    cpus = int(resources.get("CPU", 1)) or 1
    count = workers or max(1, cpus // 4)
    node_cpus = max((int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=cpus)
    share = max(1, min(cpus // count, node_cpus or 1))
    return count, {"num_cpus": share, "num_gpus": 0}, share


class WorkerPool:
    """The actors of one run: started, ready, dead, replaced."""

    def __init__(self, ray, config: Config, studies: Sequence[str], workers: int | None,
                 max_replacements: int | None = None, tree_root: str | None = None):
        self.ray, self.tree_root = ray, tree_root
        self.count, self.options, self.threads = worker_options(ray, config, workers)
        self.actor_class = ray.remote(max_restarts=0)(FilmWorker)
        if self.options.get("num_gpus") and str(config.model.device).startswith("cuda:"):
            # Ray shows each actor only the GPU it was given (CUDA_VISIBLE_DEVICES, Ray's "Accelerator
            # Support" page), so a cuda:N of the command line is that actor's cuda
            config = config.with_overrides({"model.device": "cuda"})
        self.config_json, self.studies = config.to_json(), list(studies)
        self.run_id = uuid.uuid4().hex[:8]
        self.workers: list[Worker] = []
        self.deaths = 0
        self.load_errors: list[str] = []
        self.max_replacements = self.count * 2 if max_replacements is None else max_replacements
        for _ in range(self.count):
            self.start()

    def start(self) -> Worker:
        name = f"medtui-{self.run_id}-{len(self.workers)}"
        handle = self.actor_class.options(name=name, **self.options).remote(self.config_json, self.studies,
                                                                            self.threads, self.tree_root)
        worker = Worker(name, handle, handle.describe.remote())
        self.workers.append(worker)
        return worker

    @property
    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.alive and not w.dead]

    @property
    def starting(self) -> list[Worker]:
        return [w for w in self.workers if not w.alive and not w.dead]

    def became_ready(self, worker: Worker) -> str | None:
        """Mark ``worker`` ready; returns the reason when it is not (its model did not load, it died)."""
        try:
            info = self.ray.get(worker.ready_ref)
        except self.ray.exceptions.RayError as exc:
            self.died(worker)
            return f"{type(exc).__name__}: {first_line(exc)}"
        if info.get("error"):
            self.load_errors.append(info["error"])
            self.retire(worker)
            return info["error"]
        worker.info, worker.alive = info, True
        return None

    def died(self, worker: Worker) -> Worker | None:
        """Note a death (once per actor) and start a replacement while the budget lasts."""
        if worker.dead:
            return None
        self.retire(worker)
        self.deaths += 1
        if self.deaths <= self.max_replacements:
            return self.start()
        return None

    def retire(self, worker: Worker) -> None:
        worker.dead, worker.alive = True, False
        try:
            self.ray.kill(worker.handle)
        except Exception:  # already gone
            pass

    def wait_first_ready(self, timeout_s: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Block until one worker has its model loaded; ``RayRunError`` when none can."""
        deadline = time.monotonic() + timeout_s
        while not self.alive:
            pending = {w.ready_ref: w for w in self.starting}
            if not pending:
                reason = self.load_errors[0] if self.load_errors else "every worker died while starting"
                raise RayRunError(f"no Ray worker could load the model: {reason}")
            if time.monotonic() > deadline:
                raise RayRunError(f"no Ray worker was ready after {timeout_s:.0f}s (the cluster has "
                                  f"{self.ray.cluster_resources()} and each worker asks for {self.options})")
            ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
            for ref in ready:
                self.became_ready(pending[ref])
        return self.alive[0].info or {}

    def shutdown(self) -> None:
        for worker in self.workers:
            if not worker.dead:
                self.retire(worker)


def run_ray_evaluation(
    samples: Sequence[Sample],
    tree: ResultsTree,
    config: Config,
    *,
    address: str | None = None,
    workers: int | None = None,
    resume: bool = True,
    progress: Callable[[RunProgress], None] | None = None,
    studies: Sequence[str] = (),
    run_info: dict[str, Any] | None = None,
    analysis_plots: bool = True,
    max_replacements: int | None = None,
) -> EvalCounts:
    """Run ``samples`` into ``tree`` (whose lock the caller holds) on Ray actors; the counts and tree are
    those ``run_evaluation`` gives for the same rows. ``studies`` are names in ``registry.STUDIES``."""
    ray = import_ray()
    if not resume:
        tree.reset()
    pending = film_order(pending_samples(samples, tree))
    counts = EvalCounts(selected=len(samples), skipped=len(samples) - len(pending), out=str(tree.root))
    failed_before = tree.failed_keys()
    counts.retried = sum(1 for s in pending if s.key in failed_before)
    if not pending:  # nothing to run: analysis/ and run.json again, no cluster needed
        with tree_run(tree, None, config, counts, run_info, analysis_plots):
            pass
        return counts

    started_here = connect(ray, address)
    pool = None
    try:
        pool = WorkerPool(ray, config, studies, workers, max_replacements, tree_root=str(tree.root.resolve()))
        first = pool.wait_first_ready()
        info = {**(run_info or {}), "model": first["model"], "device": first["device"], "dtype": first["dtype"],
                "ray": {"address": address or "local", "workers": pool.count, "worker_resources": pool.options}}
        with interrupts_noted() as interrupted, tree_run(tree, None, config, counts, info, analysis_plots) as run:
            times = drive(ray, pool, pending, tree, config, counts, progress, interrupted)
            run["ray"] = {**run.get("ray", {}), "worker_deaths": pool.deaths,
                          "hosts": sorted({w.info["host"] for w in pool.workers if w.info})}
            run["timings_s"] = {**run.get("timings_s", {}), **sample_timings(times)}
            report(progress, "analysis", len(pending), counts, None, pool, elapsed=sum(times))
    finally:
        if pool is not None:
            pool.shutdown()
        if started_here:
            ray.shutdown()
    report(progress, "finish", len(pending), counts, None, pool, elapsed=counts.wall_s)
    return counts


def report(progress, event: str, total: int, counts: EvalCounts, started: float | None, pool: WorkerPool | None,
           key: str | None = None, error: str | None = None, sample_s: float | None = None,
           worker: str | None = None, note: str | None = None, elapsed: float | None = None) -> None:
    if progress is None:
        return
    if elapsed is None:
        elapsed = time.perf_counter() - started if started is not None else 0.0
    progress(RayProgress(event, total, counts.done + counts.failed, counts.done, counts.failed, counts.skipped,
                         elapsed, key, error, sample_s, workers=len(pool.alive) if pool else 0, worker=worker,
                         note=note))


def drive(ray, pool: WorkerPool, pending: Sequence[Sample], tree: ResultsTree, config: Config,
          counts: EvalCounts, progress, interrupted) -> list[float]:
    """Films out to the actors, rows back into the tree, until every film is written or failed; returns
    the seconds each row took on its worker."""
    sink = TreeSink(tree, config)
    queue = deque(Film(list(rows)) for rows in films_of(pending).values())
    total = len(pending)
    times: list[float] = []
    in_flight: dict[Any, tuple[Worker, Film]] = {}
    started = time.perf_counter()

    def emit(event: str, **kwargs) -> None:
        report(progress, event, total, counts, started, pool, **kwargs)

    def fail_rows(film: Film, error: str) -> None:
        for sample in film.samples:
            sink.failed(sample, error)
            counts.failed += 1
            counts.failures.append({"key": sample.key, "error": error})
            emit("sample", key=sample.key, error=error, sample_s=0.0)

    def lost(worker: Worker, film: Film, exc: BaseException) -> None:
        replacement = pool.died(worker)
        if replacement is not None:
            emit("worker", worker=worker.name, note=f"worker {worker.name} died ({type(exc).__name__}); "
                                                    f"starting {replacement.name}")
        film.attempts += 1
        if film.attempts >= MAX_ATTEMPTS:
            fail_rows(film, f"Ray worker died {film.attempts} times on this film: {first_line(exc)}")
        else:
            queue.appendleft(film)

    def record_film(outcomes: list[RowOutcome], worker_name: str) -> None:
        """A film's rows into the tree by one synced append (its files are written by then: by the worker,
        or here for a worker that does not see the tree); a row whose files fail fails alone."""
        rows = []
        for outcome in outcomes:
            try:
                if outcome.row is not None:
                    rows.append(outcome.row)
                elif outcome.result is not None:
                    rows.append(tree.write_files(outcome.result, config))
            except Exception as exc:  # a write that fails fails its row, as in run_batch
                outcome.error = f"{type(exc).__name__}: {first_line(exc)}"
            if outcome.error is not None:
                rows.append({**sample_columns(outcome.sample), "error": outcome.error})
        tree.put_rows(rows)
        for outcome in outcomes:
            if outcome.error is not None:
                counts.failed += 1
                counts.failures.append({"key": outcome.sample.key, "error": outcome.error})
            else:
                counts.done += 1
            times.append(outcome.seconds)
            emit("sample", key=outcome.sample.key, error=outcome.error, sample_s=outcome.seconds,
                 worker=worker_name)

    emit("start", worker=None, note=f"{len(pool.alive)} of {pool.count} workers ready")
    while queue or in_flight:
        if interrupted:
            raise KeyboardInterrupt
        for worker in pool.alive:
            busy = sum(1 for w, _ in in_flight.values() if w is worker)
            while queue and busy < DEPTH:
                film = queue.popleft()
                in_flight[worker.handle.run_film.remote(film.samples)] = (worker, film)
                busy += 1
        starting = {w.ready_ref: w for w in pool.starting}
        if not in_flight and not starting:
            while queue:
                fail_rows(queue.popleft(), "no Ray worker left to run this row; run again to retry it")
            break
        ready, _ = ray.wait([*in_flight, *starting], num_returns=1, timeout=WAIT_S)
        for ref in ready:
            if ref in starting:
                worker = starting[ref]
                reason = pool.became_ready(worker)
                note = f"worker {worker.name} ready" if reason is None else f"worker {worker.name} failed: {reason}"
                emit("worker", worker=worker.name, note=note)
                continue
            worker, film = in_flight.pop(ref)
            try:
                outcomes = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                lost(worker, film, exc)
                continue
            except ray.exceptions.RayTaskError as exc:  # the film's task raised outside run_batch's guard
                fail_rows(film, f"{type(exc.cause).__name__ if exc.cause else 'RayTaskError'}: "
                                f"{first_line(exc.cause or exc)}")
                continue
            record_film(outcomes, worker.name)
    return times
