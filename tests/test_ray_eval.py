"""`medtui eval --ray`: on a local Ray cluster of this machine's CPUs, the demo rows give the tree a local run
gives, a killed worker's films are run by another, and without Ray the flag says so in one line."""

from __future__ import annotations

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
from tests.support import demo_subset_csv, eval_config, run_tree
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
    folder = tmp_path_factory.mktemp("local")
    csv = demo_subset_csv(folder, RAY_ROWS)
    config = eval_config(folder, full=False, tokens=2)
    counts, samples = run_tree(demo_model, csv, folder / "out", config)
    assert counts.done == len(RAY_ROWS)
    return csv, config, folder / "out", samples


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
