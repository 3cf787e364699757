"""A CSV row that asks an earlier row's question about the same film: `eval` says so on its first line,
and runs and scores it as a row of its own (the rule the README states)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.export.reader import read_results
from medgemma_tui.resources import fixtures_dir
from tests.support import demo_subset_csv, eval_config


@pytest.fixture
def demo_loader(demo_model, monkeypatch):
    """The CLI's model load returns the session's demo model (the load is tested elsewhere)."""
    import medgemma_tui.engine.loading as loading

    monkeypatch.setattr(loading, "load_for_capture", lambda *a, **k: demo_model)
    return demo_model


def test_eval_names_a_repeated_row_on_its_first_line_and_scores_each_row(tmp_path, demo_loader):
    # demo rows 0 and 5, then row 0 again with its question in other case and spacing: CSV line 4 repeats line 2
    def again(lines):
        header = lines[0].split(",")
        repeat = lines[1].split(",")
        at = header.index("question")
        repeat[at] = "  " + repeat[at].upper().replace(" ", "  ")
        return [*lines, ",".join(repeat)]

    csv = demo_subset_csv(tmp_path, (0, 5), edit=again)
    out = tmp_path / "out"
    config = eval_config(tmp_path, full=False, tokens=2)
    result = CliRunner().invoke(main, ["eval", "--export", str(out), "--data", str(csv), "--images",
                                       str(fixtures_dir()), "--config", str(config), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first == ("medtui eval: 1 row(s) ask an earlier row's question about the same film (line 4 repeats "
                     "line 2): each is run and scored as a row of its own"), result.stderr
    payload = json.loads(result.stdout)
    assert (payload["done"], payload["scored"]) == (3, 3)  # scored per row, the repeat too
    keys = read_results(out).rows["key"].tolist()
    assert len(keys) == len(set(keys)) == 3
