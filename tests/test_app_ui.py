"""The Textual app driven by a Pilot: keys, the status line, workers, screens, and snapshots.

Records are real: the demo model answers the first hard-positive group of the demo dataset once per
module (a few seconds), and each test hands the analyses to a session. Tests of the background work
replace ``Session.analyse`` / ``load_model`` with slow or failing stand-ins rather than running the model
in every test: the worker calls them and the app files what they return.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time

import numpy as np
import pytest

from medgemma_tui.app.app import MedtuiApp
from medgemma_tui.app.screens.variants import consistency_text
from medgemma_tui.app.session import DONE, FAILED, NOT_RUN, Session
from medgemma_tui.data.schema import load_dataset
from medgemma_tui.resources import demo_dataset_csv
from tests.support import wait_for

RUN = 4  # samples answered for real: the first hard-positive group (4 variants)


_RESULTS: dict[int, tuple] = {}


def demo_results(loaded) -> tuple:
    """The first RUN demo samples run for real, once per test process (test_app_open shares them)."""
    from tests.support import run_sample

    if id(loaded) not in _RESULTS:
        samples = list(load_dataset(demo_dataset_csv()))[:RUN]
        _RESULTS[id(loaded)] = (loaded, tuple(run_sample(loaded, s, max_new_tokens=6) for s in samples))
    return _RESULTS[id(loaded)][1]


@pytest.fixture(scope="module")
def analyses(demo_model, dataset):
    return {r.sample.key: r.analysis for r in demo_results(demo_model)}


def synchronously(test):
    """Run an async test body in its own event loop (no async pytest plugin needed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def make_session(dataset, analyses, done: int = RUN) -> Session:
    """The demo dataset with the first ``done`` samples already analysed; no model (nothing loads)."""
    session = Session.from_dataset(dataset, model_source=None)
    for key in list(analyses)[:done]:
        session.finish(key, analyses[key])
    return session


def session_with_stand_in_runs(dataset, analyses, monkeypatch, before_each) -> Session:
    """One sample done; running any other calls ``before_each`` and then answers it with the first record."""
    session = make_session(dataset, analyses, done=1)

    def stand_in_analyse(key):
        before_each()
        return analyses[list(analyses)[0]]

    monkeypatch.setattr(session, "analyse", stand_in_analyse)
    return session


def status(app) -> str:
    return str(app.screen.query_one("#status").render())


# ---- keys and the status line ------------------------------------------------------------------------
@synchronously
async def test_keys_walk_layers_heads_tokens_views_and_the_status_line_follows(dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        record = app.current_analysis().record
        layers = record.num_layers
        assert status(app).startswith(f"layer all/{layers} · head mean · token ")
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert app.state.layer == 1 and status(app).startswith(f"layer 1/{layers} · ")
        await pilot.press("left_square_bracket")
        assert app.state.layer == 0
        await pilot.press("a")
        assert app.state.layer is None
        await pilot.press("full_stop")
        assert (app.state.head_mode, app.state.head) == ("head", 0)
        assert f" · head 0/{record.num_heads} · " in status(app)
        await pilot.press("full_stop", "comma", "comma")
        assert app.state.head == record.num_heads - 1
        await pilot.press("g")
        assert app.state.head_mode == "mean" and " · head mean · " in status(app)
        await pilot.press("g")
        assert app.state.head_mode == "group" and " · group 0/" in status(app)
        from medgemma_tui.app.state import token_rows

        first, rows = app.state.row, token_rows(record)  # the rows that see the image, never the end token's
        await pilot.press("n")
        assert app.state.row == rows[(rows.index(first) + 1) % len(rows)]
        await pilot.press("p")
        assert app.state.row == first
        await pilot.press("v")
        assert app.state.view == "gated" and status(app).endswith("view gated")
        app.set_state(app.state.with_(view="gradcam"))  # e.g. from the palette: this record has no Grad-CAM
        assert app.state.view == "gated" and app.is_running
        await pilot.pause()
        assert any("needs maps computed with the model" in n.message for n in app._notifications)


@synchronously
async def test_keys_are_remapped_by_binding_id_from_the_config(dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses), keys={"layer_next": "l"})
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        await pilot.press("l")
        assert app.state.layer == 0
        await pilot.press("right_square_bracket")
        assert app.state.layer == 0  # the old key is gone


@synchronously
async def test_browsing_finished_samples_and_the_paint_keys(dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        first = app.current_key
        app.screen.samples.table.focus()
        await pilot.press("down")
        assert app.current_key != first and app.current_key == list(analyses)[1]
        assert app.screen.query_one("#title").render().plain.startswith(app.current_key)
        await pilot.press("o")
        assert app.state.overlay == "map"
        await pilot.press("m")
        assert app.state.masks  # the phantoms have anatomy masks
        colormap = app.state.colormap
        await pilot.press("c")
        assert app.state.colormap != colormap
        await pilot.press("z")
        assert app.state.scale == "range" and app.paint().scale == "range"
        app.screen.query_one("#xray").focus()
        await pilot.press("down", "right")
        assert app.state.cursor == (9, 9)
        cell = str(app.screen.query_one("#cell").render())
        assert cell.startswith("cell (9,9) ") and "uniform" in cell


# ---- background work ---------------------------------------------------------------------------------
@synchronously
async def test_startup_paints_before_the_model_has_loaded(dataset, analyses, monkeypatch):
    release = threading.Event()
    session = make_session(dataset, analyses, done=0)
    session.model_source = "demo"
    monkeypatch.setattr(session, "load_model", lambda: (None, release.wait(10) and "demo model"))
    app = MedtuiApp(session, autorun=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        assert app.screen.query_one("#status").render() is not None
        assert str(app.screen.query_one("#job").render()).startswith("loading model demo")
        await pilot.press("question_mark")  # keys work while the model loads
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        release.set()
        await wait_for(pilot, lambda: str(app.screen.query_one("#job").render()) == "")


@synchronously
async def test_the_ui_answers_keys_while_a_sample_runs_in_a_worker(dataset, analyses, monkeypatch):
    session = make_session(dataset, analyses, done=1)
    key = list(analyses)[1]
    release = threading.Event()

    def slow_analyse(k):
        release.wait(10)
        return analyses[k]

    monkeypatch.setattr(session, "analyse", slow_analyse)
    app = MedtuiApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        app.select_sample(key)
        await pilot.pause(0.1)
        assert any(w.name == "run sample" and w.is_running for w in app.workers)
        for expected in (0, 1):  # the demo model has two layers
            await pilot.press("right_square_bracket")
            assert app.state.layer == expected
        # the keys were answered and redrawn while the worker was still busy
        assert any(w.name == "run sample" and w.is_running for w in app.workers)
        assert status(app).startswith("layer 1/")
        assert str(app.screen.query_one("#job").render()).startswith("running " + key)
        release.set()
        await wait_for(pilot, lambda: app.current_key == key)


@synchronously
async def test_a_failure_shows_one_clear_message_and_the_app_stays_up(dataset, analyses, monkeypatch):
    session = make_session(dataset, analyses, done=1)
    key = list(analyses)[1]

    def broken_analyse(k):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(session, "analyse", broken_analyse)
    app = MedtuiApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        app.select_sample(key)
        await wait_for(pilot, lambda: app.failure is not None)
        assert app.failure == f"{key} failed: CUDA out of memory (RuntimeError)"
        assert session.entries[key].status == FAILED and session.entries[key].error == "CUDA out of memory"
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1
        assert f"✗ {key} failed: CUDA out of memory (RuntimeError)" in status(app)
        await pilot.press("right_square_bracket")  # still answering keys
        assert app.state.layer == 0 and app.is_running


@synchronously
async def test_run_all_reports_progress_and_cancel_stops_after_the_current_sample(dataset, analyses, monkeypatch):
    session = session_with_stand_in_runs(dataset, analyses, monkeypatch, lambda: time.sleep(0.15))
    app = MedtuiApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        await pilot.press("x")
        await wait_for(pilot, lambda: sum(e.status == DONE for e in session.entries.values()) >= 3)
        assert str(app.screen.query_one("#job").render()).startswith("run all ")
        assert "samples/s" in str(app.screen.query_one("#job").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.job_running())
        statuses = [session.entries[i.key].status for i in session.items]
        assert 2 <= statuses.count(DONE) < len(statuses)
        assert statuses.count(NOT_RUN) > 0  # queued samples went back to "not run"


@synchronously
async def test_run_all_runs_only_the_samples_the_filter_shows(dataset, analyses, monkeypatch):
    from medgemma_tui.app.widgets.samples import matches

    session = session_with_stand_in_runs(dataset, analyses, monkeypatch, lambda: None)
    app = MedtuiApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        wanted = {k for k in session.pending() if matches(session, k, "cardio")}
        assert 0 < len(wanted) < len(session.items) // 2
        await pilot.press("slash", *"cardio", "escape", "x")
        await wait_for(pilot, lambda: all(session.entries[k].status == DONE for k in wanted), timeout=30)
        await wait_for(pilot, lambda: not app.job_running(), timeout=30)
        ran = {i.key for i in session.items if session.entries[i.key].status == DONE} - {list(analyses)[0]}
        assert ran == wanted


@synchronously
async def test_a_cancelled_run_counts_as_running_until_its_thread_has_tidied_up(dataset, analyses, monkeypatch):
    """Textual marks a cancelled worker CANCELLED at once; its thread still finishes the current sample and
    puts the queued ones back to "not run". Until then the app must not say the job is over."""
    release, started = threading.Event(), threading.Event()

    def blocked():
        started.set()
        release.wait(10)

    session = session_with_stand_in_runs(dataset, analyses, monkeypatch, blocked)
    app = MedtuiApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        await pilot.press("x")
        await wait_for(pilot, started.is_set)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.job_running()  # the thread is still inside the first sample
        release.set()
        await wait_for(pilot, lambda: not app.job_running())
        statuses = [session.entries[i.key].status for i in session.items]
        assert statuses.count(DONE) == 2 and statuses.count(NOT_RUN) == len(statuses) - 2

# ---- screens -----------------------------------------------------------------------------------------
@synchronously
async def test_head_gallery_sorts_and_enter_shows_the_chosen_head(dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        await pilot.press("G")
        assert app.screen.__class__.__name__ == "GalleryScreen"
        grid = app.screen.query_one("#gallery")
        await pilot.press("down", "right")
        layer, head = grid.tiles[grid.selected].key
        assert grid.selected == grid.per_row + 1 and (layer, head) != (0, 0)
        await pilot.press("enter")
        assert app.screen.__class__.__name__ == "InspectScreen"
        assert (app.state.layer, app.state.head_mode, app.state.head) == (layer, "head", head)
        assert status(app).startswith(f"layer {layer}/")
        await pilot.press("G", "s")  # sorted by image share, highest first
        shares = [float(t.note.split()[1]) for t in app.screen.query_one("#gallery").tiles]
        assert shares == sorted(shares, reverse=True)


@synchronously
async def test_variants_and_robustness_screens(dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        await pilot.press("V")
        assert app.screen.__class__.__name__ == "VariantsScreen"
        assert len(app.screen.keys) == 4
        plain = consistency_text(app.session, app.screen.keys).plain
        assert "answers agree:" in plain and "mean pairwise JS divergence" in plain
        assert app.screen.query_one("#variant-maps").tiles[0].grid is not None
        await pilot.press("escape", "R")  # robustness: says how to get results instead of inventing them
        body = str(app.screen.query_one("#robustness-body").render())
        assert "not available" in body and "medtui eval" in body


@synchronously
async def test_help_lists_every_binding_with_its_id(dataset, analyses):
    from medgemma_tui.app.keymap import all_bindings
    from medgemma_tui.app.screens.help import bindings_table

    app = MedtuiApp(make_session(dataset, analyses), keys={"quit": "ctrl+q"})
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
    table = bindings_table(app.key_overrides)
    assert {b.id for b in all_bindings()} <= set(table.columns[2]._cells)
    quit_row = table.columns[2]._cells.index("quit")
    assert table.columns[0]._cells[quit_row] == "ctrl+q"


# ---- snapshots ---------------------------------------------------------------------------------------
def test_snapshot_inspector_at_80x24(dataset, analyses, snap_compare):
    assert snap_compare(MedtuiApp(make_session(dataset, analyses)), terminal_size=(80, 24), press=["_"])


def test_snapshot_inspector_at_160x44_with_masks_and_a_head(dataset, analyses, snap_compare):
    press = ["m", "right_square_bracket", "full_stop", "_"]
    assert snap_compare(MedtuiApp(make_session(dataset, analyses)), terminal_size=(160, 44), press=press)


def test_snapshot_head_gallery(dataset, analyses, snap_compare):
    assert snap_compare(MedtuiApp(make_session(dataset, analyses)), terminal_size=(100, 30), press=["G", "_"])


def test_snapshot_variants(dataset, analyses, snap_compare):
    assert snap_compare(MedtuiApp(make_session(dataset, analyses)), terminal_size=(120, 40), press=["V", "_"])


# ---- focus: keys go where the user looks ------------------------------------------------------------
def focused_id(app) -> str | None:
    return None if app.focused is None else app.focused.id


@synchronously
async def test_slash_focuses_the_filter_and_typing_there_runs_no_command(dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        before = app.state
        await pilot.press("slash")
        assert focused_id(app) == "filter" and app.screen.samples_shown()
        await pilot.press(*"effusion")
        assert app.screen.query_one("#filter").value == "effusion"
        assert app.state == before  # e, o, n ... were typed, not run
        await pilot.press("escape")
        assert focused_id(app) == "samples-table"


@synchronously
async def test_hiding_the_samples_table_hands_the_keys_back_to_the_picture(dataset, analyses):
    for size in ((160, 48), (80, 24)):
        app = MedtuiApp(make_session(dataset, analyses))
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda app=app: app.current_key is not None)
            await pilot.press("slash")
            assert focused_id(app) == "filter" and app.screen.samples_shown()
            await pilot.press("escape", "s")
            assert not app.screen.samples_shown() and focused_id(app) == "xray", size
            await pilot.press("right_square_bracket")
            assert app.state.layer == 0
            await pilot.press("s")
            assert app.screen.samples_shown() and focused_id(app) == "samples-table"
            assert app.screen.query_one("#filter").value == ""
            await pilot.press("s", "slash")  # / brings a hidden table back
            assert app.screen.samples_shown() and focused_id(app) == "filter"


# ---- question tokens come before the image -----------------------------------------------------------
@synchronously
async def test_question_tokens_that_cannot_see_the_image_are_never_shown_as_a_map(dataset, analyses):
    from medgemma_tui.app.state import BLIND_ROW

    app = MedtuiApp(make_session(dataset, analyses), view="question")
    said: list[str] = []  # every notification, kept (the app's own list drops them as they time out)
    notify = app.notify
    app.notify = lambda message, *args, **kwargs: (said.append(str(message)), notify(message, *args, **kwargs))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        record = app.current_analysis().record
        assert app.state.view == "answer"  # asked for, but no question token of this prompt sees the image
        assert any(BLIND_ROW in message for message in said)
        seen = set()
        for _ in range(len(record.query_positions) + 1):
            await pilot.press("n")
            seen.add(app.state.row)
        assert seen == set(record.content_answer_rows.tolist())  # the answer's rows; not the end token's
        for _ in range(len(record.query_positions)):
            await pilot.press("v")
            assert app.state.view != "question"
        row = app.state.row
        app.screen.action_choose_row(int(record.question_rows[0]))  # a click on a question token
        await pilot.pause()
        assert app.state.row == row and app.is_running
        assert sum(BLIND_ROW in message for message in said) == 2
        assert BLIND_ROW in app.screen.query_one("#tokens").render().plain


def test_variant_js_divergences_keep_two_significant_figures(dataset, analyses):
    from rich.console import Console

    from medgemma_tui.analysis.metrics import js_divergence
    from medgemma_tui.app.screens.variants import js_table, js_text

    assert [js_text(v) for v in (0.0, 1.234e-4, 2e-5, 4e-4, 0.35)] == ["0", "0.00012", "2.0e-05", "0.00040", "0.35"]
    session = make_session(dataset, analyses)
    keys = [i.key for i in session.group_of(list(analyses)[0])]
    console = Console(record=True, width=200)
    console.print(js_table(session, keys))
    first_row = console.export_text().splitlines()[2].split()
    grids = [session.entries[k].summary.grid for k in keys]
    expected = [js_divergence(grids[0], g) for g in grids[1:]]
    assert first_row[0] == "v0" and first_row[1] == "·"
    shown = [float(cell) for cell in first_row[2:]]
    assert all(v > 0 for v in expected)
    assert shown == pytest.approx(expected, rel=0.05)  # 0.000 for every pair before


# ---- the ground-truth box ------------------------------------------------------------------------------
@synchronously
async def test_the_ground_truth_box_is_drawn_on_the_pane_with_the_mask_outlines(dataset, analyses):
    from medgemma_tui.app.picture import compose
    from medgemma_tui.app.themes import hex_to_rgb

    session = Session.from_dataset(dataset, model_source=None)
    boxed = next(i for i in session.items if i.sample.bbox)  # e.g. 74,191,12,12 on a 320x320 phantom
    stand_in = next(a for a in analyses.values() if a.record.image_size == (320, 320))
    session.finish(boxed.key, stand_in)
    app = MedtuiApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key == boxed.key)
        (x, y, w, h), = boxed.sample.bbox
        expected = ((x / 320, y / 320, (x + w) / 320, (y + h) / 320),)
        assert app.picture_boxes() == expected
        xray = app.screen.query_one("#xray")
        await pilot.press("m")
        assert app.state.masks and xray.boxes == expected and xray.picture_key()[-1] == expected
        colour = hex_to_rgb(app.current_theme.error)
        assert xray.paint.box_colour == colour
        rgb = compose(stand_in.record.xray, app.current_frame().grid, xray.paint, 64, xray.masks, xray.boxes)
        assert np.all(rgb == colour, axis=-1).any()
        await pilot.press("m")
        assert xray.picture_key()[-1] == ()


def test_a_tree_sample_s_boxes_come_from_its_meta(dataset, analyses, monkeypatch):
    session = Session.with_records({"k": next(iter(analyses.values()))})
    assert session.boxes("k") == []
    session.tree = type("Tree", (), {"load_meta": lambda self, key: {"bbox_boxes": [[1, 2, 3, 4]]}})()
    assert session.boxes("k") == [(1, 2, 3, 4)]


# ---- layout at 80x24 and 160x48 ------------------------------------------------------------------------
@synchronously
async def test_at_80x24_the_samples_table_takes_the_body_until_hidden_and_toasts_leave_the_status_line(
        dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        xray = app.screen.query_one("#xray")
        alone = xray.region
        await pilot.press("s")
        await pilot.pause()
        assert app.screen.query_one("#samples").region.width >= 76  # its columns whole (tests/test_app_layout.py)
        await pilot.press("s")
        await pilot.pause()
        assert xray.region == alone and alone.width >= 30  # the picture back with all its room
        await pilot.press("s")
        await pilot.pause()
        app.notify("a toast")
        await pilot.pause(0.3)
        status_line = app.screen.query_one("#status").region

        def toasts_bottom() -> int:
            toasts = list(app.screen.query_one("#textual-toastrack").query("Toast"))
            assert toasts and all(t.region.height > 0 for t in toasts)
            return max(t.region.bottom for t in toasts)

        assert toasts_bottom() <= status_line.y
        app.set_job("running something…")  # the job line under the status line on narrow terminals
        app.notify("another toast")
        await pilot.pause(0.3)
        status_line = app.screen.query_one("#status").region
        job = app.screen.query_one("#job").region
        assert job.y > status_line.y and toasts_bottom() <= status_line.y


@synchronously
async def test_at_160x48_the_title_the_cell_zone_and_the_layer_legend_are_not_cut(dataset, analyses):
    from rich.console import Console

    from medgemma_tui.app.frame import cell_text

    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        long_question = max(analyses, key=lambda k: len(app.session.item(k).question))
        app.show_sample(long_question)
        app.screen.query_one("#xray").focus()
        await pilot.press("right_square_bracket", "down")
        await pilot.pause(0.3)
        screen = app.screen
        title = screen.query_one("#title")
        item = app.session.item(long_question)
        assert title.size.height <= 2 and title.size.width * title.size.height >= len(f"{item.key} · {item.question}")
        cell = screen.query_one("#cell")
        zone_text = cell_text(app.current_frame(), app.zones(), app.state.cursor)
        assert len(zone_text) <= cell.size.width, zone_text  # the zone is the end of the line
        charts = screen.query_one("#charts")
        console = Console(width=charts.size.width, record=True)
        console.print(charts.content)
        lines = [line.rstrip() for line in console.export_text().splitlines()]
        assert "Per layer  │ layer 0" in lines
        legend = [line for line in lines if "━" in line]
        assert "image share" in legend[0] and any("entropy (norm.)" in line for line in legend)
        assert all(len(line) <= charts.size.width for line in legend)
        assert screen.query_one("#xray").size.width >= 60  # the picture is the widest pane


@synchronously
async def test_narrowing_the_terminal_takes_focus_out_of_the_table_it_hides(dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        assert focused_id(app) == "samples-table"
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.2)
        assert not app.screen.samples_shown() and focused_id(app) == "xray"
        await pilot.press("right_square_bracket")
        assert app.state.layer == 0


@synchronously
async def test_methods_screen_opens_with_M_and_enter_shows_the_chosen_view(dataset, analyses):
    app = MedtuiApp(make_session(dataset, analyses))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_key is not None)
        await pilot.press("M")
        assert app.screen.__class__.__name__ == "MethodsScreen"
        grid = app.screen.query_one("#method-tiles")
        assert grid.tiles[0].key == "answer"
        await pilot.press("right", "enter")
        assert app.screen.__class__.__name__ == "InspectScreen"
        assert app.state.view == grid.tiles[1].key


# ---- small terminals: every key has a way in, no text is cut ------------------------------------------
@synchronously
async def test_at_80x24_and_160x48_the_footer_shows_help_and_quit_and_the_picture_names_the_samples_key(
        dataset, analyses):
    from textual.widgets._footer import FooterKey

    wanted = {"question_mark", "q", "x", "V"}
    for width, height in ((80, 24), (160, 48)):
        app = MedtuiApp(make_session(dataset, analyses))
        async with app.run_test(size=(width, height)) as pilot:
            await wait_for(pilot, lambda app=app: app.current_key is not None)
            # the footer lays its keys out after the first refresh: on a loaded machine that is later
            await wait_for(pilot, lambda app=app: wanted <= {k.key for k in app.screen.query(FooterKey)
                                                                if k.region.width})
            await pilot.pause(0.2)
            keys = {key.key: key.region for key in app.screen.query(FooterKey)}
            for key in wanted:
                assert key in keys and keys[key].right <= width, (width, key, keys.get(key))
            hint = str(app.screen.query_one("#cell").render())
            assert "s samples" in hint and "/ filter" in hint and "…" not in hint, (width, hint)


@synchronously
async def test_the_export_dialogs_title_is_whole_at_80_and_160_columns(dataset, analyses):
    import textwrap

    for width, height in ((80, 24), (160, 48)):
        app = MedtuiApp(make_session(dataset, analyses))
        async with app.run_test(size=(width, height)) as pilot:
            await wait_for(pilot, lambda app=app: app.current_key is not None)
            await pilot.press("e")
            await pilot.pause(0.2)
            title = app.screen.query_one("#export-title")
            text = str(title.render())
            lines = textwrap.wrap(text, title.content_size.width)
            assert text.startswith("Export to the standard results tree") and text.endswith("re-runs):")
            assert len(lines) <= title.content_size.height and title.region.right <= width, (width, title.region)


@synchronously
async def test_the_variants_table_is_in_view_without_scrolling_at_80x24_and_160x48(dataset, analyses):
    from textual.containers import VerticalScroll

    for width, height in ((80, 24), (160, 48)):
        app = MedtuiApp(make_session(dataset, analyses))
        async with app.run_test(size=(width, height)) as pilot:
            await wait_for(pilot, lambda app=app: app.current_key is not None)
            await pilot.press("V")
            await pilot.pause(0.3)
            details = app.screen.query_one("#variant-details", VerticalScroll)
            assert details.max_scroll_y == 0 and details.region.bottom <= height, (width, details.region)
