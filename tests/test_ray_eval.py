"""`medtui eval --ray`: on a local Ray cluster of this machine's CPUs, the demo rows give the tree a local run
gives, a killed worker's films are run by another, and without Ray the flag says so in one line."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.config import load_config
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.export.reader import read_results
from medgemma_tui.export.tree import ResultsTree
from medgemma_tui.resources import fixtures_dir
from tests.support import demo_subset_csv, eval_config, finished_run, run_tree
from tests.test_eval import same_csv
from tests.test_shards import tree_files

# six films, eight rows: p0000 (0, 1), p0001 (4), p0002 (16, 17), p0003 (24), p0004 (32), p0005 (40)
RAY_ROWS = (0, 1, 4, 16, 17, 24, 32, 40)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, demo_model):
    return finished_run(demo_model, tmp_path_factory.mktemp("local"), RAY_ROWS)


def ray_run(csv: Path, config: Path, out: Path, **kwargs):
    from medgemma_tui.pipeline.ray_eval import run_ray_evaluation

    samples = list(load_dataset(csv, fixtures_dir()).samples)
    tree = ResultsTree(out)
    with tree.locked():
        return run_ray_evaluation(samples, tree, load_config(config), workers=2, analysis_plots=False, **kwargs)


def same_tree(mine: Path, theirs: Path, samples) -> None:
    same_csv(mine / "evaluation_results.csv", theirs / "evaluation_results.csv")
    for sample in samples:
        np.testing.assert_allclose(np.load(mine / "grids" / f"{sample.key}_grid.npy"),
                                   np.load(theirs / "grids" / f"{sample.key}_grid.npy"), rtol=1e-5, atol=1e-7)
    assert tree_files(mine) == tree_files(theirs)
    assert not list(mine.rglob("*.tmp"))


@pytest.mark.ray
def test_a_ray_run_writes_the_tree_a_local_run_writes(tmp_path, ray_cluster, local_run):
    csv, config, expected, samples = local_run
    events = []
    started = time.perf_counter()
    counts = ray_run(csv, config, tmp_path / "out", progress=events.append)
    took = time.perf_counter() - started
    assert (counts.done, counts.failed, counts.skipped, counts.exit_code) == (len(RAY_ROWS), 0, 0, 0)
    same_tree(tmp_path / "out", expected, samples)
    rows = [e for e in events if e.event == "sample"]
    assert sorted(e.key for e in rows) == sorted(s.key for s in samples)
    assert all(e.workers >= 1 and e.rate and e.worker for e in rows)
    # the rows of one film come from one worker, in a row
    by_film: dict[str, set[str]] = {}
    for event, sample in zip(rows, [next(s for s in samples if s.key == e.key) for e in rows], strict=True):
        by_film.setdefault(sample.image_path, set()).add(event.worker)
    assert all(len(workers) == 1 for workers in by_film.values())
    run = read_results(tmp_path / "out").run
    assert run["status"] == "done" and run["model"]["name_or_path"] == "demo"
    assert run["ray"]["workers"] == 2 and run["ray"]["worker_deaths"] == 0
    # a re-run resumes: nothing left, no worker started
    again = ray_run(csv, config, tmp_path / "out")
    assert (again.done, again.skipped) == (0, len(RAY_ROWS))
    print(f"ray run of {len(RAY_ROWS)} rows: {took:.1f}s")


@pytest.mark.ray
def test_a_killed_workers_films_are_run_by_another_and_nothing_is_lost(tmp_path, ray_cluster, local_run):
    csv, config, expected, samples = local_run
    killed: list[str] = []

    def kill_the_first_worker_that_answers(event) -> None:
        if event.event == "sample" and not killed:
            killed.append(event.worker)
            ray_cluster.kill(ray_cluster.get_actor(event.worker))

    counts = ray_run(csv, config, tmp_path / "out", progress=kill_the_first_worker_that_answers)
    assert killed
    assert (counts.done, counts.failed) == (len(RAY_ROWS), 0), counts.failures
    same_tree(tmp_path / "out", expected, samples)
    run = read_results(tmp_path / "out").run
    assert run["ray"]["worker_deaths"] == 1 and run["status"] == "done"


def test_ray_missing_is_one_line_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = CliRunner().invoke(main, ["eval", "--export", str(tmp_path / "out"), "--ray", "--workers", "2"])
    assert result.exit_code == 2, result.output
    assert "pip install 'medgemma-tui[ray]'" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


# ---- the driver's recovery, with a stand-in for Ray (no cluster, the session's model) ----------------------
class StandInRay:
    """Enough of Ray's API for the driver, run in this process: an actor task runs when its result is asked
    for; an actor that runs a film in ``poison`` dies (as a crashed process would) and its tasks raise
    ``RayActorError``."""

    class exceptions:
        class RayError(Exception):
            pass

        class RayActorError(RayError):
            pass

        class RayTaskError(RayError):
            def __init__(self, cause):
                super().__init__(str(cause))
                self.cause = cause

    def __init__(self, make_worker, poison: set[str]):
        self.make_worker, self.poison, self.started = make_worker, poison, 0

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self):
        return {"CPU": 2.0}

    def nodes(self):
        return [{"Alive": True, "Resources": {"CPU": 2.0}}]

    def remote(self, **options):
        ray = self

        class ActorClass:
            def options(self, **kwargs):
                return self

            def remote(self, *args):
                ray.started += 1
                return Actor(ray, ray.make_worker(*args))

        return lambda cls: ActorClass()

    def wait(self, refs, num_returns=1, timeout=None):
        return refs[:1], refs[1:]

    def get(self, ref):
        return ref()

    def kill(self, handle):
        handle.dead = True


class Call:
    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args):
        done = []

        def ref():
            if not done:
                try:
                    done.append((True, self.fn(*args)))
                except Exception as exc:
                    done.append((False, exc))
            ok, value = done[0]
            if not ok:
                raise value
            return value

        return ref


class Actor:
    def __init__(self, ray, worker):
        self.ray, self.worker, self.dead = ray, worker, False
        self.describe = Call(self._describe)
        self.run_film = Call(self._run_film)

    def _describe(self):
        return {"model": {"name_or_path": "demo"}, "device": "cpu", "dtype": "float32", "host": "here", "pid": 0}

    def _run_film(self, samples):
        if self.dead:
            raise self.ray.exceptions.RayActorError("the actor is dead")
        if samples[0].image_path in self.ray.poison:
            self.dead = True
            raise self.ray.exceptions.RayActorError("the actor died unexpectedly before finishing this task")
        return self.worker.run_film(samples)


@pytest.fixture
def stand_in(demo_model, monkeypatch):
    import medgemma_tui.pipeline.ray_eval as ray_eval
    from medgemma_tui.pipeline.rows import RowSettings

    def install(config: Path, poison: set[str], workers_write: bool = True, writers: int = 0) -> StandInRay:
        """``workers_write``: the actors see the tree's folder and write the files (else the driver does),
        in ``writers`` processes of their own (0: in the actor)."""
        loaded_config = load_config(config)
        settings = RowSettings.from_config(loaded_config)

        def make_worker(config_json, studies, threads, tree_root):
            worker = ray_eval.FilmWorker.__new__(ray_eval.FilmWorker)
            worker.error, worker.loaded, worker.settings = None, demo_model, settings
            worker.studies, worker.config = [], loaded_config
            worker.tree_root = tree_root if workers_write else None
            worker.writers, worker.overlapped = (writers if workers_write else 0), None
            return worker

        ray = StandInRay(make_worker, poison)
        monkeypatch.setattr(ray_eval, "import_ray", lambda: ray)
        return ray

    return install


def test_a_film_that_kills_every_worker_fails_alone_after_three_deaths(tmp_path, stand_in):
    csv = demo_subset_csv(tmp_path, (0, 4, 5, 16))  # films p0000, p0001 (two rows), p0002
    config = eval_config(tmp_path, full=False, tokens=2)
    ray = stand_in(config, poison={"phantoms/p0001.png"})
    counts = ray_run(csv, config, tmp_path / "out")
    rows = read_results(tmp_path / "out").rows.set_index("image_path")
    assert (counts.done, counts.failed) == (2, 2)
    assert rows.loc["phantoms/p0001.png", "error"].str.startswith("Ray worker died 3 times on this film").all()
    assert (rows.loc[["phantoms/p0000.png", "phantoms/p0002.png"], "error"] == "").all()
    run = read_results(tmp_path / "out").run
    assert run["ray"]["worker_deaths"] == 3 and ray.started == 2 + 3  # each death replaced
    assert run["status"] == "failed rows"


def test_with_every_worker_dead_and_none_to_replace_them_the_rows_left_fail_and_a_rerun_retries_them(
        tmp_path, stand_in):
    from medgemma_tui.pipeline.ray_eval import run_ray_evaluation

    csv = demo_subset_csv(tmp_path, (0, 4, 16))
    config = eval_config(tmp_path, full=False, tokens=2)
    stand_in(config, poison={"phantoms/p0000.png", "phantoms/p0001.png", "phantoms/p0002.png"})
    samples = list(load_dataset(csv, fixtures_dir()).samples)
    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        counts = run_ray_evaluation(samples, tree, load_config(config), workers=2, analysis_plots=False,
                                    max_replacements=0)
    assert (counts.done, counts.failed) == (0, 3)
    assert all(f["error"].startswith("no Ray worker left") for f in counts.failures)
    stand_in(config, poison=set())
    again = ray_run(csv, config, tmp_path / "out")
    assert (again.done, again.retried, again.failed) == (3, 3, 0)


class Resources:
    """A cluster's resources as Ray reports them (``ray.cluster_resources()``, ``ray.nodes()``)."""

    def __init__(self, cpus: float, gpus: float, nodes: int):
        self.cpus, self.gpus, self.count = cpus, gpus, nodes

    def cluster_resources(self):
        return {"CPU": self.cpus, **({"GPU": self.gpus} if self.gpus else {})}

    def nodes(self):
        return [{"Alive": True, "Resources": {"CPU": self.cpus / self.count}} for _ in range(self.count)]


@pytest.mark.parametrize(("cluster", "device", "workers", "expected"), [
    (Resources(64, 8, 2), "auto", None, (8, {"num_gpus": 1, "num_cpus": 1}, None)),  # one actor per GPU
    (Resources(64, 8, 2), "auto", 3, (3, {"num_gpus": 1, "num_cpus": 1}, None)),
    (Resources(64, 8, 2), "cpu", 4, (4, {"num_cpus": 16, "num_gpus": 0}, 16)),  # the config asks for the CPU
    (Resources(32, 0, 2), "auto", None, (8, {"num_cpus": 4, "num_gpus": 0}, 4)),  # one per 4 CPUs
    (Resources(32, 0, 2), "auto", 1, (1, {"num_cpus": 16, "num_gpus": 0}, 16)),  # no more than one node has
    (Resources(2, 0, 1), "auto", 2, (2, {"num_cpus": 1, "num_gpus": 0}, 1)),
])
def test_workers_take_one_gpu_each_or_a_share_of_the_cpus(tmp_path, cluster, device, workers, expected):
    from medgemma_tui.pipeline.ray_eval import worker_options

    config = load_config(eval_config(tmp_path)).with_overrides({"model.device": device})
    assert worker_options(cluster, config, workers) == expected


def test_workers_that_cannot_load_the_model_stop_the_run_in_one_line_before_the_tree(tmp_path, stand_in,
                                                                                      monkeypatch):
    from medgemma_tui.pipeline.ray_eval import RayRunError

    config = eval_config(tmp_path, full=False, tokens=2)
    stand_in(config, poison=set())
    monkeypatch.setattr(Actor, "_describe", lambda self: {"error": "ModelError: no model at /nope", "host": "h"})
    with pytest.raises(RayRunError, match="no Ray worker could load the model: ModelError: no model at /nope"):
        ray_run(demo_subset_csv(tmp_path, (0,)), config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flags", "address"), [(["--ray"], "local"), (["--ray", "auto"], "auto"),
                                                (["--ray", "head:6379"], "head:6379")])
def test_eval_ray_flag_takes_an_optional_address_and_reports_workers(tmp_path, stand_in, flags, address):
    config = eval_config(tmp_path, full=False, tokens=2)
    stand_in(config, poison=set())
    csv = demo_subset_csv(tmp_path, (0, 4))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--export", str(out), "--data", str(csv), "--images",
                                       str(fixtures_dir()), "--config", str(config), *flags, "--workers", "2"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert re.search(r"\[2/2\] \S+ done \(.*, [\d.]+ rows/s, [12] workers? alive\)", result.stderr), result.stderr
    run = read_results(out).run
    assert run["ray"]["address"] == address and run["ray"]["workers"] == 2
    assert len(read_results(out).keys) == 2


def test_gpu_workers_get_the_one_gpu_ray_shows_them_whatever_cuda_index_was_asked(tmp_path):
    from medgemma_tui.pipeline.ray_eval import WorkerPool

    class GpuCluster(StandInRay):
        def cluster_resources(self):
            return {"CPU": 32.0, "GPU": 4.0}

    config = load_config(eval_config(tmp_path)).with_overrides({"model.device": "cuda:2"})
    pool = WorkerPool(GpuCluster(lambda *args: None, set()), config, [], None)
    assert pool.count == 4 and pool.options == {"num_gpus": 1, "num_cpus": 1}
    assert pool.config_json["model"]["device"] == "cuda"


@pytest.mark.parametrize(("workers_write", "writers"), [(True, 0), (True, 1), (False, 0)])
def test_ray_workers_answer_batch_size_rows_by_one_generate_and_write_the_tree_a_local_run_writes(
        tmp_path, stand_in, demo_model, monkeypatch, workers_write, writers):
    from tests.test_batch_eval import ROWS

    csv = demo_subset_csv(tmp_path, ROWS)  # films p0000 (rows 0, 1, 2) and p0001 (4, 5)
    config = eval_config(tmp_path, full=False, tokens=2)
    config.write_text(config.read_text().replace("[decoding]\n", "[decoding]\nbatch_size = 2\n"))
    counts, samples = run_tree(demo_model, csv, tmp_path / "local", config)
    assert counts.done == len(ROWS)
    stand_in(config, poison=set(), workers_write=workers_write, writers=writers)
    generates, sent = [], []
    real = demo_model.model.generate
    monkeypatch.setattr(demo_model.model, "generate", lambda *a, **k: generates.append(1) or real(*a, **k))
    run_film = Actor._run_film
    monkeypatch.setattr(Actor, "_run_film", lambda self, rows: sent.extend(run_film(self, rows)) or sent[-len(rows):])
    again = ray_run(csv, config, tmp_path / "out")
    assert (again.done, again.failed) == (len(ROWS), 0)
    assert len(generates) == 3  # batches [0, 1], [2], [4, 5], as a local run with --batch-size 2
    if workers_write:  # what crosses back is the row's cells: no film, no record
        assert all(o.result is None and o.row["key"] == o.sample.key for o in sent)
    else:
        assert all(o.result is not None and o.row is None for o in sent)
    same_tree(tmp_path / "out", tmp_path / "local", samples)
