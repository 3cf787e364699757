"""How a run ends, whatever happens on the way: a failing plot, Ctrl-C inside torch, a model that will
not load, files a collaborator must read, and the accuracy that says over how many rows it was scored."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.export.atomic import write_bytes_atomic
from medgemma_tui.pipeline.batch import run_batch
from medgemma_tui.pipeline.interrupts import InterruptFlag
from medgemma_tui.pipeline.rows import RowSettings
from tests.support import demo_subset_csv, eval_config, run_tree


def test_a_failing_plot_leaves_the_summary_the_other_plots_and_a_true_status(tmp_path, demo_model, monkeypatch):
    import medgemma_tui.export.dataset_figures as figures

    def broken(*args, **kwargs):
        raise ValueError("'xerr' must not contain negative values")

    monkeypatch.setattr(figures, "plot_accuracy_by_strategy", broken)
    counts, _ = run_tree(demo_model, demo_subset_csv(tmp_path, (0, 1)), tmp_path / "out",
                         eval_config(tmp_path, full=False, tokens=2, plots=True), plots=True)
    summary = json.loads((tmp_path / "out" / "analysis" / "summary.json").read_text())
    assert summary["plot_errors"] == {"accuracy_by_strategy.png": "ValueError: 'xerr' must not contain negative values"}
    assert "metric_distributions.png" in summary["plots"]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "done" and counts.exit_code == 0


def test_an_analysis_that_fails_is_said_in_run_json_and_the_rows_stay(tmp_path, demo_model, monkeypatch):
    import medgemma_tui.pipeline.evaluation as evaluation

    def broken(*args, **kwargs):
        raise KeyError("accuracy")

    monkeypatch.setattr(evaluation, "write_analysis", broken)
    counts, samples = run_tree(demo_model, demo_subset_csv(tmp_path, (0,)), tmp_path / "out",
                               eval_config(tmp_path, full=False, tokens=2))
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "analysis failed" and counts.analysis_error == "KeyError: 'accuracy'"
    assert counts.done == 1 and counts.exit_code == 1
    assert samples[0].key in (tmp_path / "out" / "evaluation_results.csv").read_text()


def test_a_full_disk_stops_the_run_at_the_first_write_and_keeps_the_finished_rows(tmp_path, demo_model,
                                                                                   monkeypatch):
    import errno

    import medgemma_tui.export.record_io as record_io
    import medgemma_tui.pipeline.batch as batch

    answered, saved = [], []
    answer_row, save_file = batch.answer_row, record_io.save_file

    def counting(loaded, sample, *args, **kwargs):
        answered.append(sample.key)
        return answer_row(loaded, sample, *args, **kwargs)

    def filling(tensors, path, metadata=None):
        if saved:  # the disk fills up after the first row's record
            raise OSError(errno.ENOSPC, "No space left on device", path)
        saved.append(path)
        save_file(tensors, path, metadata=metadata)

    monkeypatch.setattr(batch, "answer_row", counting)
    monkeypatch.setattr(record_io, "save_file", filling)
    counts, samples = run_tree(demo_model, demo_subset_csv(tmp_path, (0, 1, 2, 3)), tmp_path / "out",
                               eval_config(tmp_path, full=False, tokens=2))
    assert answered == [s.key for s in samples[:2]]  # no row computed after the full disk
    assert counts.disk_full.startswith("no space left on the device writing ")
    assert (counts.done, counts.failed, counts.exit_code, counts.status) == (1, 0, 1, "disk full")
    from medgemma_tui.export.tree import ResultsTree

    # the finished row is kept (in the journal: the CSV is not rebuilt on a full disk); the second is not
    # recorded as failed, so a rerun answers it
    assert ResultsTree(tmp_path / "out").finished_keys() == {samples[0].key}
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "disk full"


def test_sigterm_stops_the_run_between_rows_with_exit_143_and_a_killed_run_is_named_so(tmp_path, demo_model):
    import signal

    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"status": "running", "started": "earlier"}))  # a run SIGKILL ended

    def terminate(p):
        if p.event == "sample" and p.index == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    counts, samples = run_tree(demo_model, demo_subset_csv(tmp_path, (0, 1, 2)), out,
                               eval_config(tmp_path, full=False, tokens=2), progress=terminate)
    assert counts.interrupted and counts.done == 1 and counts.exit_code == 143  # 128 + SIGTERM, the convention
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and run["previous_runs"][-1]["status"] == "killed"


def test_an_interrupt_while_analysis_is_written_still_gives_the_rows_accuracy(tmp_path, demo_model, monkeypatch):
    import medgemma_tui.pipeline.evaluation as evaluation
    from medgemma_tui.export.reader import read_results

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "write_analysis", interrupted)
    counts, _ = run_tree(demo_model, demo_subset_csv(tmp_path, (0, 1, 4)), tmp_path / "out",
                         eval_config(tmp_path, full=False, tokens=2))
    rows = read_results(tmp_path / "out").rows
    scored = rows[rows["correct"].notna()]
    assert counts.interrupted and counts.analysis_error == "interrupted while writing analysis/"
    assert counts.scored == len(scored) == 3
    assert counts.accuracy == pytest.approx(scored["correct"].astype(bool).mean())


def test_ctrl_c_surfacing_inside_torch_as_another_error_stops_the_run_and_fails_no_row():
    flag = InterruptFlag()
    seen, failed, finished = [], [], []

    class Sink:
        def finished(self, result):
            finished.append(result)

        def failed(self, sample, error):
            failed.append((sample, error))

    class Row:
        def __init__(self, key):
            self.key = key

    def answer(loaded, row, settings):
        seen.append(row.key)
        if row.key == "b":
            flag.set()  # the signal arrived while torch ran: it surfaces as a RuntimeError
            raise RuntimeError("Invalid affine transformation matrix")
        return row.key

    counts = run_batch(None, [Row("a"), Row("b"), Row("c")], RowSettings(), Sink(), answer=answer,
                       interrupted=flag)
    assert counts.interrupted and (counts.done, counts.failed) == (1, 0)
    assert seen == ["a", "b"] and failed == [] and finished == ["a"]


def test_the_same_error_without_an_interrupt_fails_that_row_and_the_run_goes_on():
    failed = []

    class Sink:
        def finished(self, result):
            pass

        def failed(self, sample, error):
            failed.append(error)

    class Row:
        def __init__(self, key):
            self.key = key

    def answer(loaded, row, settings):
        if row.key == "b":
            raise RuntimeError("Invalid affine transformation matrix")
        return row.key

    counts = run_batch(None, [Row("a"), Row("b"), Row("c")], RowSettings(), Sink(), answer=answer,
                       interrupted=InterruptFlag())
    assert not counts.interrupted and (counts.done, counts.failed) == (2, 1)
    assert failed == ["RuntimeError: Invalid affine transformation matrix"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_bytes_atomic(tmp_path / "x.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == mode


def test_every_file_of_a_tree_follows_the_umask_and_no_lock_file_stays(tmp_path, demo_model):
    old = os.umask(0o027)
    try:
        run_tree(demo_model, demo_subset_csv(tmp_path, (0,)), tmp_path / "out", eval_config(tmp_path, tokens=2))
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert any(p.parent.name == "attention" for p in files)
    assert {p.relative_to(tmp_path / "out").as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
            if stat.S_IMODE(p.stat().st_mode) != 0o640} == {}
    assert not (tmp_path / "out" / ".medtui.lock").exists()


def test_a_run_whose_model_fails_to_load_leaves_no_folder_behind(tmp_path, monkeypatch):
    import medgemma_tui.engine.loading as loading
    from medgemma_tui.model.loading import ModelLoadError

    def no_model(*args, **kwargs):
        raise ModelLoadError("cannot load model 'x': not a folder")

    monkeypatch.setattr(loading, "load_for_capture", no_model)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--export", str(out), "--limit", "1"])
    assert result.exit_code == 2 and "cannot load model" in result.output
    assert not out.exists()


def test_without_model_flag_or_config_key_every_command_runs_the_demo(tmp_path, monkeypatch, demo_model):
    import medgemma_tui.engine.loading as loading

    asked = []

    def record(source, *args, **kwargs):
        asked.append(source)
        return demo_model

    monkeypatch.setattr(loading, "load_for_capture", record)
    keys_only = tmp_path / "keys.toml"
    keys_only.write_text('[app.keys]\nquit = "ctrl+q"\n[decoding]\nmax_new_tokens = 2\n[visualization]\n'
                         'save_full = false\n', encoding="utf-8")
    csv = demo_subset_csv(tmp_path, (0, 4))  # two studies: the accuracy has an interval
    from medgemma_tui.resources import fixtures_dir

    result = CliRunner().invoke(main, ["eval", "--export", str(tmp_path / "out"), "--data", str(csv), "--images",
                                       str(fixtures_dir()), "--config", str(keys_only)])
    assert result.exit_code == 0, result.output
    assert asked == ["demo"]
    # the last line carries the accuracy with the interval summary.json holds
    summary = json.loads((tmp_path / "out" / "analysis" / "summary.json").read_text())
    low, high = summary["intervals"]["accuracy"]
    line = f"{summary['accuracy']:.3f} [{low:.3f}, {high:.3f}] (95% CI, study bootstrap) over 2 scored rows"
    assert line in result.output


def test_an_empty_question_fails_its_row_and_the_others_run(tmp_path, monkeypatch, demo_model):
    import medgemma_tui.engine.loading as loading
    from medgemma_tui.export.reader import read_results
    from medgemma_tui.resources import fixtures_dir

    monkeypatch.setattr(loading, "load_for_capture", lambda *a, **k: demo_model)

    def empty_second(lines):
        cells = lines[2].split(",")
        cells[3] = ""
        return [lines[0], lines[1], ",".join(cells)]

    csv = demo_subset_csv(tmp_path, (0, 1), edit=empty_second)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--export", str(out), "--data", str(csv), "--images",
                                       str(fixtures_dir()), "--config", str(eval_config(tmp_path, full=False,
                                                                                        tokens=2))])
    assert result.exit_code == 1, result.output
    assert "1 bad row(s) will be recorded as failed" in result.output
    rows = read_results(out).rows
    errors = sorted(rows["error"].tolist())
    assert errors[0] == "" and errors[1].startswith("bad row: ") and "question" in errors[1]


def test_figures_come_in_every_configured_format(tmp_path, demo_model):
    from medgemma_tui.export.reader import read_results

    config = eval_config(tmp_path, full=True, tokens=2, extra='formats = ["png", "pdf"]\ndpi = 72\n')
    counts, samples = run_tree(demo_model, demo_subset_csv(tmp_path, (0,)), tmp_path / "out", config)
    assert counts.done == 1
    key = samples[0].key
    assert (tmp_path / "out" / "visualizations" / f"{key}_full.pdf").read_bytes().startswith(b"%PDF")
    files = read_results(tmp_path / "out").load_meta(key)["files"]
    assert files["full"].endswith("_full.png") and files["full_pdf"].endswith("_full.pdf")


def test_the_summary_gives_a_median_and_quartiles_that_an_outlier_does_not_own():
    from medgemma_tui.analysis.averages import robust_summary

    values = [1.0, 2.0, 3.0, 4.0, 1615.0, float("nan")]
    summary = robust_summary(values)
    assert summary == {"median": 3.0, "q1": 2.0, "q3": 4.0, "n": 5}
    assert robust_summary([float("nan")]) == {"median": None, "q1": None, "q3": None, "n": 0}
