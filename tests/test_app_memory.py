"""The app's memory over a long session: 200 rows run through the app (a stand-in ``Session.analyse``
hands each row its own copy of one real demo analysis), browsed as they finish. The session keeps the
whole records of ``keep`` rows; the app's caches must hold no more, whatever they keyed."""

from __future__ import annotations

import asyncio
import copy
import gc
import time

import pytest

from medgemma_tui.app.jobs import HANDOVER

ROWS, KEEP = 200, 4


@pytest.fixture(scope="module")
def template(demo_record):
    from medgemma_tui.analysis.masks import anatomy_masks
    from medgemma_tui.analysis.record_analysis import analyse_record

    return analyse_record(demo_record, masks=anatomy_masks(demo_record.xray), boxes=[(40, 40, 120, 160)])


def live_analyses() -> int:
    from medgemma_tui.analysis.record_analysis import SampleAnalysis

    gc.collect()
    return sum(type(o) is SampleAnalysis for o in gc.get_objects())


def stub_session(template):
    from medgemma_tui.app.entries import Item
    from medgemma_tui.app.session import Session

    items = [Item(key=f"r{i:03d}", study=f"s{i // 4}", variant=i % 4, strategy="", question="q", truth="",
                  group=(f"film{i // 4}", "q")) for i in range(ROWS)]
    session = Session(items=items, source="stand-in", model_source=None, keep=KEEP)
    session.made = 0

    def analyse(key):
        session.made += 1
        return copy.deepcopy(template)  # each row its own record, as a real run makes

    session.analyse = analyse
    return session


async def run_and_browse(session) -> tuple[int, int, int]:
    """Run every row with ``x``, showing the latest finished row as they come; then go back over rows
    whose records were dropped (enter runs each again and shows it), stepping the layer and the masks on
    each row shown (frames and boxes cached for it). Returns the most analyses the frames and the boxes
    caches held at once, and the most records made but not yet filed in the session (in messages)."""
    from medgemma_tui.app.app import MedtuiApp
    from medgemma_tui.app.entries import DONE
    from tests.support import wait_for

    app = MedtuiApp(session, autorun=False)
    most = [0, 0, 0]

    async def look() -> None:
        await pilot.press("right_square_bracket", "m")
        most[0] = max(most[0], app.frames.held())
        most[1] = max(most[1], len(app.boxes.held()))

    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("x")
        start = time.monotonic()
        while sum(e.status == DONE for e in session.entries.values()) < ROWS or app.job_running():
            assert time.monotonic() - start < 60, "the run-all did not finish"
            done = [k for k in session.done() if session.entries[k].analysis is not None]
            most[2] = max(most[2], session.made - len(session.done()))
            if done and done[-1] != app.current_key:
                app.show_sample(done[-1])
                await look()
            await pilot.pause(0.02)
        dropped = [i.key for i in session.items if session.entries[i.key].analysis is None]
        assert len(dropped) == ROWS - KEEP
        for key in dropped[:2 * KEEP]:  # dropped long ago: each is run again to be shown
            app.select_sample(key)
            await wait_for(pilot, lambda key=key: app.current_key == key)
            await look()
    return most[0], most[1], most[2]


def test_200_rows_through_the_app_hold_no_more_records_than_the_session_keeps(template):
    session = stub_session(template)
    before = live_analyses()
    most_frames, most_boxes, unfiled = asyncio.run(run_and_browse(session))
    assert sum(e.analysis is not None for e in session.entries.values()) <= KEEP
    assert all(e.summary is not None for e in session.entries.values())  # every row's summary stays
    assert most_frames <= KEEP and most_boxes <= KEEP
    assert unfiled <= HANDOVER + 1  # the run waits for the UI thread: the records in its queue stay few
    # the app is gone; what stays alive is what the session keeps
    assert live_analyses() - before <= KEEP


def test_a_cache_holds_what_it_keys_and_lets_it_go_when_told():
    from medgemma_tui.app.caches import HeldCache

    class Owner:
        pass

    cache: HeldCache[int] = HeldCache(size=3)
    owners = [Owner() for _ in range(5)]
    made = []
    for i, owner in enumerate(owners):
        assert cache.get(owner, "spec", lambda i=i: made.append(i) or i) == i
    assert len(cache) == 3 and cache.held() == {id(o) for o in owners[2:]}  # the least recent went first
    assert cache.get(owners[4], "spec", lambda: -1) == 4 and made == [0, 1, 2, 3, 4]  # a hit makes nothing
    cache.forget(owners[4])
    assert id(owners[4]) not in cache.held() and len(cache) == 2
    assert cache.get(owners[4], "spec", lambda: 40) == 40  # made again once forgotten
