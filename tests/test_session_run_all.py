"""The app's run-all, headless: rows go through the batch runner's per-film path, as ``eval``'s do."""

from __future__ import annotations

import numpy as np

from medgemma_tui.config import load_config
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.resources import fixtures_dir
from tests.support import demo_subset_csv, eval_config, run_tree

ROWS = (0, 1, 2, 4, 5)  # three rows of film p0000 (a batch of 2, then 1), two of p0001 (a batch of 2)


def test_run_all_reads_each_film_once_batches_its_rows_and_gives_evals_answers(tmp_path, demo_model, monkeypatch):
    import medgemma_tui.pipeline.batch as batch
    from medgemma_tui.app.entries import DONE, THUMBNAIL_SIDE
    from medgemma_tui.app.session import Session
    from medgemma_tui.export.reader import read_results

    csv = demo_subset_csv(tmp_path, ROWS)
    config_path = eval_config(tmp_path, full=False, tokens=3)
    config_path.write_text(config_path.read_text().replace("[decoding]\n", "[decoding]\nbatch_size = 2\n"))
    run_tree(demo_model, csv, tmp_path / "out", config_path)
    evaluated = read_results(tmp_path / "out")

    session = Session.from_dataset(load_dataset(csv, fixtures_dir()), model_source="demo",
                                   config=load_config(config_path))
    session.loaded = demo_model
    films, generates, told = [], [], []
    real_load, real_generate = batch.load_image, demo_model.model.generate
    monkeypatch.setattr(batch, "load_image", lambda path: films.append(path) or real_load(path))
    monkeypatch.setattr(demo_model.model, "generate", lambda *a, **k: generates.append(1) or real_generate(*a, **k))
    keys = [item.key for item in session.items]
    done, failed = session.run_many(keys, lambda: False, lambda i, n, key, entry: told.append((i, n, entry)))

    assert (done, failed) == (len(ROWS), 0)
    assert len(films) == 2 and len(generates) == 3  # one read per film; batches [0, 1], [2], [4, 5]
    assert [i for i, n, entry in told if entry is not None] == [1, 2, 3, 4, 5]
    for key in keys:
        entry = session.entries[key]
        assert entry.status == DONE and entry.seconds is not None and entry.seconds > 0
        row = evaluated.row(key)
        assert entry.summary.answer_label == row["answer_label"]
        np.testing.assert_allclose(entry.summary.grid / entry.summary.grid.sum(), evaluated.load_grid(key), atol=1e-6)
    # what stays per finished row is small: the rows of one film share one thumbnail of their film
    by_film: dict[str, set[int]] = {}
    for item in session.items:
        thumbnail = session.entries[item.key].summary.xray
        assert max(thumbnail.shape) <= THUMBNAIL_SIDE
        by_film.setdefault(item.sample.image_path, set()).add(id(thumbnail))
    assert sorted(len(ids) for ids in by_film.values()) == [1, 1] and len(by_film) == 2


def test_a_thumbnail_averages_the_films_pixels_and_keeps_its_aspect():
    from medgemma_tui.app.entries import film_thumbnail

    film = np.zeros((512, 256), dtype=np.uint8)
    film[:, 128:] = 200
    film[:4, :4] = 100  # one 4x4 block: one thumbnail pixel, its mean
    thumbnail = film_thumbnail(film, side=128)
    assert thumbnail.shape == (128, 64) and thumbnail.dtype == np.uint8
    assert thumbnail[0, 0] == 100 and thumbnail[5, 0] == 0 and (thumbnail[:, 32:] == 200).all()
    small = np.zeros((64, 64), dtype=np.uint8)
    assert film_thumbnail(small, side=128) is small


def test_a_cancelled_run_all_puts_the_rows_it_did_not_reach_back_to_not_run(tmp_path, demo_model):
    from medgemma_tui.app.session import DONE, NOT_RUN, Session

    csv = demo_subset_csv(tmp_path, ROWS)
    config_path = eval_config(tmp_path, full=False, tokens=2)
    session = Session.from_dataset(load_dataset(csv, fixtures_dir()), model_source="demo",
                                   config=load_config(config_path))
    session.loaded = demo_model
    finished = []
    keys = [item.key for item in session.items]
    done, failed = session.run_many(keys, lambda: len(finished) >= 1,
                                    lambda i, n, key, entry: entry is not None and finished.append(key))
    statuses = [session.entries[k].status for k in keys]
    assert (done, failed) == (1, 0) and statuses.count(DONE) == 1 and statuses.count(NOT_RUN) == len(ROWS) - 1
