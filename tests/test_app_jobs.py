"""The app's jobs: a worker's run leaves the session as it was (the UI thread files what it posts), and a
failed job reads as one line keyed by the error's type."""

from __future__ import annotations

from medgemma_tui.app.entries import NOT_RUN, Item
from medgemma_tui.app.jobs import failure_text
from medgemma_tui.app.session import Session
from medgemma_tui.errors import MedtuiError


def test_answering_many_rows_hands_over_outcomes_and_changes_no_entry():
    items = [Item(key=k, study="s", variant=0, strategy="", question="q", truth="", group=(k, "q")) for k in "abc"]
    session = Session(items=items, source="stand-in", model_source=None)
    made = {"a": object(), "c": object()}

    def analyse(key):
        if key == "b":
            raise ValueError("an unreadable film")
        return made[key]

    session.analyse = analyse
    started, finished = [], []
    done, failed = session.answer_many(list("abc"), lambda: False, lambda i, n, key: started.append(key),
                                       lambda i, n, outcome: finished.append((i, outcome)))
    assert (done, failed) == (2, 1) and started == list("abc")
    assert [(i, o.key) for i, o in finished] == [(1, "a"), (2, "b"), (3, "c")]
    assert finished[0][1].analysis is made["a"] and finished[2][1].analysis is made["c"]
    failure = finished[1][1]
    assert failure.analysis is None and "an unreadable film" in failure.error
    assert all(e.status == NOT_RUN and e.analysis is None for e in session.entries.values())


def test_a_failure_is_one_line_a_users_error_as_it_says_any_other_with_its_type():
    class BadConfig(MedtuiError):
        pass

    assert failure_text("the model did not load", BadConfig("no such model 'x'\nsee --help")) == \
        "the model did not load: no such model 'x'"
    assert failure_text("r1 failed", RuntimeError("CUDA out of memory\n  File 'x.py'")) == \
        "r1 failed: CUDA out of memory (RuntimeError)"
    assert failure_text("export failed", KeyError()) == "export failed: KeyError"
    assert failure_text("export failed", None) == "export failed"


def test_a_model_that_does_not_load_is_one_line_on_the_status_line_and_the_app_stays_up():
    import asyncio

    from medgemma_tui.app.app import MedtuiApp
    from medgemma_tui.model.loading import ModelLoadError
    from tests.support import wait_for

    items = [Item(key="a", study="s", variant=0, strategy="", question="q", truth="", group=("a", "q"))]
    session = Session(items=items, source="stand-in", model_source="no/such-model")

    def load_model():
        raise ModelLoadError("cannot download 'no/such-model': 404\nTraceback (most recent call last):")

    session.load_model = load_model

    async def drive() -> None:
        app = MedtuiApp(session, autorun=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.failure is not None)
            assert app.failure == "the model did not load: cannot download 'no/such-model': 404"
            assert f"✗ {app.failure}" in str(app.screen.query_one("#status").render())
            assert app.is_running and session.loaded is None

    asyncio.run(drive())
