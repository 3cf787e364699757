"""Input a user gets wrong ends every command the same way: one ``medtui: error:`` line, exit 2, no traceback,
and nothing heavy (no model) started first."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.resources import demo_images_dir

DEMO_FILM = str(demo_images_dir() / "p0001.png")


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a command loads a model before refusing its input."""

    def load_for_capture(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was refused")

    monkeypatch.setattr("medgemma_tui.engine.loading.load_for_capture", load_for_capture)


def bad_config(tmp_path, text: str) -> str:
    path = tmp_path / "medtui.toml"
    path.write_text(text)
    return str(path)


BAD_INPUTS = {
    "an unknown colormap to check": (
        lambda tmp: ["check", DEMO_FILM, "-q", "Is there a mass?", "--colormap", "rainbow"],
        "unknown colormap 'rainbow'"),
    "an unknown map view in check's config": (
        lambda tmp: ["check", DEMO_FILM, "-q", "Is there a mass?",
                     "--config", bad_config(tmp, '[analysis]\nmap_view = "nowhere"\n')],
        "analysis.map_view 'nowhere' is not a view"),
    "an unknown colormap in eval's config": (
        lambda tmp: ["eval", "--export", str(tmp / "out"),
                     "--config", bad_config(tmp, '[visualization]\ncolormap = "rainbow"\n')],
        "unknown colormap 'rainbow'"),
    "an empty question": (lambda tmp: ["check", DEMO_FILM, "-q", "  "], "question"),
    "a tree that is not there": (lambda tmp: ["open", str(tmp / "nowhere")], "results tree not found"),
    "a folder that is no tree": (lambda tmp: ["figures", str(tmp)], "is not a results tree"),
    "workers without ray": (lambda tmp: ["eval", "--export", str(tmp / "out"), "--workers", "2"], "give --ray too"),
    "a config to convert that is not there": (lambda tmp: ["config", "convert", str(tmp / "old.json")],
                                              "config file not found"),
    "masks of nothing": (lambda tmp: ["masks", "--out", str(tmp / "masks")], "give at least one IMAGE"),
    "an unknown method": (lambda tmp: ["eval", "--export", str(tmp / "out"), "--methods", "lime"], "--methods"),
    "a part to merge that is not there": (lambda tmp: ["merge", str(tmp / "nowhere"), "--into", str(tmp / "m")],
                                          "results tree not found"),
    "trees to compare that are not trees": (lambda tmp: ["compare", str(tmp), str(tmp), "--into", str(tmp / "c")],
                                            "is not a results tree"),
    "a dataset that is not there": (lambda tmp: ["eval", "--export", str(tmp / "out"), "--data", str(tmp / "no.csv")],
                                    "dataset CSV not found"),
    "a config that is not there": (lambda tmp: ["eval", "--export", str(tmp / "out"), "--config", str(tmp / "no.toml")],
                                   "config file not found"),
    "a shard past the last": (lambda tmp: ["eval", "--export", str(tmp / "out"), "--shard", "3/2"], "--shard 3/2"),
    "a key on no binding": (lambda tmp: ["tui", "--config", bad_config(tmp, '[app.keys]\nno_such_binding = "z"\n')],
                            "no_such_binding"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_two(case, tmp_path, no_model):
    args, says = BAD_INPUTS[case]
    result = CliRunner().invoke(main, args(tmp_path))
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("medtui: error: "), result.output
    assert says in lines[0]
    assert "Traceback" not in result.output and "MEDTUI_DEBUG" not in result.output


def test_a_bug_is_one_line_too_but_exit_one_and_says_how_to_see_the_traceback(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("medgemma_tui.engine.loading.load_for_capture", broken)
    result = CliRunner().invoke(main, ["check", DEMO_FILM, "-q", "Is there a mass?"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "medtui: error: KeyError: 'a bug' (set MEDTUI_DEBUG=1 for the traceback)"]
