"""The robustness screen: perturbed films with their maps and answer flips, from a tree or run live.

The studies are real (the demo model answers each perturbed film; a few tokens, few perturbations);
the live tests gate or break ``studies.robustness_study`` to see the worker from the outside.
"""

from __future__ import annotations

import dataclasses
import io
import threading

import numpy as np
import pytest
from rich.console import Console
from rich.style import Style
from test_app_ui import demo_results, make_session, status, synchronously, wait_for
from textual.widgets import Static

from medgemma_tui.analysis.masks import anatomy_masks
from medgemma_tui.analysis.perturbations import Perturbation, changed_pixels
from medgemma_tui.app.app import MedtuiApp
from medgemma_tui.app.screens.robustness import RobustnessScreen, study_tiles
from medgemma_tui.app.session import Session
from medgemma_tui.app.widgets.tiles import ALERT, Tile, TileGrid
from medgemma_tui.config import Config
from medgemma_tui.pipeline.studies.robustness import perturbed_films, robustness_study

TOKENS = 6  # as demo_results answered the samples
# two perturbations in the live tests: brightness (+40) and the centre crop
LIVE = {"robustness.noise_sigma": 0, "robustness.contrast": 1, "robustness.brightness": 40,
        "robustness.blur_sigma": 0, "robustness.rotation_deg": 0, "robustness.pixels_changed": 0,
        "robustness.preprocessing": ["crop"], "decoding.max_new_tokens": TOKENS}


@pytest.fixture(scope="module")
def results(demo_model, dataset):
    """The first demo samples answered for real, shared with test_app_ui."""
    return demo_results(demo_model)


def screen_tiles(app) -> list[Tile]:
    return app.screen.query_one("#robustness-maps", TileGrid).tiles


def body(app) -> str:
    """The screen's text as printed (a Group renders to no plain string)."""
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(app.screen.query_one("#robustness-body", Static).content)
    return console.export_text()


# ---- the core: perturbed films rebuilt from a study ---------------------------------------------------
def test_perturbed_films_reapply_each_perturbation_with_its_seed_to_the_film_as_seen():
    xray = np.tile(np.linspace(0, 250, 64).astype(np.uint8), (64, 1))
    xray[16:48, 8:56] = 120  # a body for the mask
    rgb = np.repeat(xray[..., None], 3, axis=-1)
    study = {"perturbations": [
        {"name": "brightness", "strength": 40.0, "parameter": "offset (0-255)", "seed": 0},
        {"name": "noise", "strength": 8.0, "parameter": "sigma (0-255)", "seed": 3},
        {"name": "pixels", "strength": 20, "parameter": "pixels changed inside the body", "seed": 1},
        {"name": "pad", "strength": "pad", "parameter": "preprocessing to square", "seed": 0},
        {"name": "warp", "strength": 2.0, "parameter": "unknown to this version", "seed": 0},
    ]}
    films = perturbed_films(study, xray)
    assert len(films) == 5
    brighter = films[0]
    assert brighter.dtype == np.uint8 and brighter.shape == xray.shape
    np.testing.assert_array_equal(brighter, np.minimum(xray.astype(int) + 40, 255))  # +40, clipped at 255
    assert brighter[0, -1] == 255 and brighter[0, 0] == 40
    np.testing.assert_array_equal(films[1], Perturbation("noise", 8.0, "").apply(rgb, 3)[..., 0])
    np.testing.assert_array_equal(films[2], changed_pixels(xray, 20, 1, anatomy_masks(xray).body))
    assert np.count_nonzero(films[2] != xray) == 20
    np.testing.assert_array_equal(films[3], xray)  # pad on a square film changes nothing
    assert films[4] is None
    np.testing.assert_array_equal(xray[0], np.linspace(0, 250, 64).astype(np.uint8))


def test_tiles_caption_answers_js_and_flips_in_red():
    grid = np.full((16, 16), 1 / 256)
    study = {"reference": {"answer_label": "yes", "grid": grid.tolist()},
             "perturbations": [
                 {"name": "brightness", "strength": 40.0, "seed": 0, "answer_label": "yes", "flip": False,
                  "js": 0.0123, "grid": grid.tolist()},
                 {"name": "blur", "strength": 15.0, "seed": 0, "answer_label": "no", "flip": True, "js": 0.2,
                  "grid": grid.tolist()}]}
    film = np.full((32, 32), 100, dtype=np.uint8)
    tiles = study_tiles(study, film)
    assert [t.label for t in tiles] == ["original", "brightness 40", "blur 15"]
    assert [t.note for t in tiles] == ["yes · reference", "yes JS 0.012", "no JS 0.200"]
    assert [t.alert for t in tiles] == ["", "", "FLIP"]
    assert tiles[1].film[0, 0] == 140 and tiles[0].film is film
    segments = TileGrid(side=20)._note(tiles[2], Style())
    assert "".join(s.text for s in segments) == "no JS 0.200 FLIP    "
    flip = next(s for s in segments if s.text == "FLIP")
    assert flip.style.color.name == "red" and flip.style == ALERT
    assert study_tiles({"reference": {}, "perturbations": [{"name": "noise", "strength": 8.0}]}, film) == []


# ---- a tree written by eval's study ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tree_with_study(demo_model, results, tmp_path_factory):
    """One sample and its robustness study (three perturbations) written by the eval's tree writer."""
    from medgemma_tui.export.tree import ResultsTree

    result = results[0]
    config = Config().with_overrides({"decoding.max_new_tokens": TOKENS, "visualization.save_full": False,
                                      "visualization.save_overlays": False})
    chosen = [Perturbation("brightness", 40.0, "offset (0-255)"), Perturbation("blur", 15.0, "sigma (pixels)"),
              Perturbation("crop", "crop", "preprocessing to square")]
    study = robustness_study(demo_model, result.film, result, config, perturbations=chosen)
    analysis = dataclasses.replace(result.analysis, extras={"robustness": study})  # the shared result stays as it was
    out = tmp_path_factory.mktemp("robust-tree")
    with ResultsTree(out).locked() as writer:
        writer.write_sample(dataclasses.replace(result, analysis=analysis), config)
    return out, study


@synchronously
async def test_a_trees_study_shows_the_original_and_each_perturbed_film_with_flips(tree_with_study):
    out, study = tree_with_study
    app = MedtuiApp(Session.from_tree(out))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        await pilot.press("R")
        assert isinstance(app.screen, RobustnessScreen)
        tiles = screen_tiles(app)
        entries = study["perturbations"]
        assert len(tiles) == 1 + len(entries) == 4
        assert [t.label for t in tiles] == ["original", "brightness 40", "blur 15", "crop"]
        assert [t.alert for t in tiles] == [""] + ["FLIP" if e["flip"] else "" for e in entries]
        assert [t.note.split()[0] for t in tiles] == [study["reference"]["answer_label"]] + [
            e["answer_label"] for e in entries]
        np.testing.assert_allclose(tiles[2].grid, np.asarray(entries[1]["grid"]))
        xray = app.current_analysis().record.xray
        np.testing.assert_array_equal(tiles[0].film, xray)
        np.testing.assert_array_equal(tiles[1].film, np.minimum(xray.astype(int) + 40, 255))
        title = str(app.screen.query_one("#robustness-title").render())
        assert "re-applied" in title and "as the model saw it" in title
        assert "crop leaves this square film as it is" in title
        text = body(app)
        assert "original answer:" in text and "blur" in text and "not the maps themselves" not in text
        assert app.screen.query_one("#robustness-maps").display
        assert not app.screen.check_action("run_study", ())  # a tree has no model to run it with
        await pilot.press("right")
        assert app.screen.query_one(TileGrid).selected == 1


# ---- live: run the study here ------------------------------------------------------------------------
def live_session(dataset, results, demo_model) -> Session:
    session = make_session(dataset, {r.sample.key: r.analysis for r in results}, done=1)
    session.model_source, session.loaded = "demo", demo_model
    session.config = session.config.with_overrides({"decoding.max_new_tokens": TOKENS})
    return session


@synchronously
async def test_live_r_runs_the_study_in_a_worker_and_the_screen_then_shows_tiles(dataset, results, demo_model,
                                                                                 monkeypatch):
    import medgemma_tui.pipeline.studies.robustness as studies

    gate = threading.Event()
    real = studies.robustness_study

    given = []  # the perturbed films the model was given, as the study's records hold them

    def gated(*args, on_record=None, **kwargs):
        gate.wait(10)

        def keep(perturbation, record):
            given.append(record.xray)
            on_record(perturbation, record)

        return real(*args, on_record=keep, **kwargs)

    monkeypatch.setattr(studies, "robustness_study", gated)
    session = live_session(dataset, results, demo_model)
    app = MedtuiApp(session, config=Config().with_overrides(LIVE))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        key = app.current_key
        await pilot.press("R")
        assert "Press r to run it now" in body(app) and screen_tiles(app) == []
        assert app.screen.check_action("run_study", ()) and not app.screen.query_one("#robustness-maps").display
        await pilot.press("r")
        await wait_for(pilot, lambda: app.robustness_job() == key)
        assert "Running the robustness study" in body(app)
        await pilot.press("question_mark")  # the app answers keys while the study runs
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        assert isinstance(app.screen, RobustnessScreen) and app.robustness_job() == key
        await pilot.press("r")  # a second request while it runs starts nothing
        assert sum(w.group == "robustness" for w in app.workers) == 1
        gate.set()
        await wait_for(pilot, lambda: len(screen_tiles(app)) == 3)
        assert [t.label for t in screen_tiles(app)] == ["original", "brightness 40", "crop"]
        assert len(given) == 2  # each tile shows the very film its perturbed run was given
        for tile, film in zip(screen_tiles(app)[1:], given, strict=True):
            np.testing.assert_array_equal(tile.film, film)
        assert "as the model was given it" in str(app.screen.query_one("#robustness-title").render())
        assert key in session.robustness and "original answer:" in body(app)
        assert not app.screen.check_action("run_study", ())
        assert any(f"robustness of {key}: 2 perturbations" in n.message for n in app._notifications)
        await pilot.press("escape", "R")  # kept in memory: shown again at once
        assert len(screen_tiles(app)) == 3 and app.robustness_job() is None


@synchronously
async def test_a_failing_study_shows_one_clear_message_and_the_app_stays_up(dataset, results, demo_model,
                                                                          monkeypatch):
    import medgemma_tui.pipeline.studies.robustness as studies

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(studies, "robustness_study", broken)
    session = live_session(dataset, results, demo_model)
    app = MedtuiApp(session, config=Config().with_overrides(LIVE))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        await pilot.press("R", "r")
        await wait_for(pilot, lambda: app.failure is not None)
        assert app.failure == "robustness study failed: CUDA out of memory (RuntimeError)"
        assert len([n for n in app._notifications if n.severity == "error"]) == 1
        assert isinstance(app.screen, RobustnessScreen) and app.is_running
        await wait_for(pilot, lambda: "Press r to run it now" in body(app))  # offered again
        assert session.robustness == {} and screen_tiles(app) == []
        await pilot.press("escape", "right_square_bracket")
        assert app.state.layer == 0 and "✗ robustness study failed: CUDA out of memory" in status(app)


@synchronously
async def test_live_r_on_the_methods_screen_computes_the_methods_and_shows_their_tiles(dataset, results, demo_model):
    """``r`` on ``M`` runs ``[methods] names`` for the row (Grad-CAM here: one backward pass) in a worker;
    the map joins the row's record (filed by the UI thread), a tile shows it, and the row's extras hold its
    metrics."""
    from medgemma_tui.app.screens.methods import MethodsScreen

    session = live_session(dataset, results, demo_model)
    app = MedtuiApp(session, config=Config().with_overrides({**LIVE, "methods.names": ["gradcam"]}))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        key = app.current_key
        await pilot.press("M")
        assert isinstance(app.screen, MethodsScreen) and app.screen.check_action("run_methods", ())
        before = [t.key for t in app.screen.query_one("#method-tiles", TileGrid).tiles]
        assert "gradcam" not in before
        shown = session.entries[key].analysis
        await pilot.press("r")
        await wait_for(pilot, lambda: "gradcam" in [t.key for t in app.screen.query_one(TileGrid).tiles])
        filed = session.entries[key].analysis
        assert "gradcam" in filed.record.maps
        assert "pointing_hit" in filed.extras["methods"]["methods"]["gradcam"]
        # the worker answered on its own copy: the record on screen meanwhile was never changed under it
        assert "gradcam" not in shown.record.maps and "methods" not in shown.extras
    # a tree has no model: the key is not offered
    tree_app = MedtuiApp(make_session(dataset, {r.sample.key: r.analysis for r in results}, done=1))
    async with tree_app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: tree_app.current_key is not None)
        await pilot.press("M")
        assert not tree_app.screen.check_action("run_methods", ())
