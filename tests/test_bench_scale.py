"""``medtui bench --scale``: both ends of a long run measured, and the verdicts against the issue's bars."""

from __future__ import annotations

import json

from click.testing import CliRunner


def test_scale_bench_reports_the_writer_the_long_eval_and_run_all_against_eval():
    from cli.main import main

    result = CliRunner().invoke(main, ["bench", "--scale", "--device", "cpu", "--scale-writer-rows", "60",
                                       "--scale-eval-rows", "12", "--scale-app-rows", "3", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    writer, long, both = figures["writer"], figures["long_eval"], figures["run_all"]
    assert writer["rows"] == 60 and writer["window"] == 30 and writer["columns"] >= 60
    assert writer["start_rows_per_s"] > 0 and writer["end_rows_per_s"] > 0
    assert writer["start_cpu_ms_per_row"] > 0 and writer["end_cpu_ms_per_row"] > 0
    assert abs(writer["end_over_start"] - writer["end_rows_per_s"] / writer["start_rows_per_s"]) < 1e-12
    assert long["rows"] == 12 and long["failed"] == 0 and long["early_s_per_row"] > 0 and long["late_s_per_row"] > 0
    assert long["late_rss_mib"] > 100  # a model and torch are resident
    assert 0 < long["early_cpu_s_per_row"] and 0 < long["late_cpu_s_per_row"]
    assert both["rows"] == 3 and both["eval_rows_per_s"] > 0 and both["app_rows_per_s"] > 0
    assert both["method"] == "medgemma_tui.app.bench.measure_run_all"
    assert set(figures["targets"]) == {"writer.end_over_start", "long_eval.cost_end_over_start",
                                       "long_eval.memory_end_over_start", "run_all.app_over_eval"}


def test_scale_verdicts_on_known_values():
    from medgemma_tui.bench.scale import scale_verdicts

    verdicts = scale_verdicts({"writer": {"end_over_start": 0.89},
                               "long_eval": {"cost_end_over_start": 1.15, "memory_end_over_start": 1.3},
                               "run_all": {"app_over_eval": 0.95}})
    assert verdicts["writer.end_over_start"].endswith("MISSED")
    assert verdicts["long_eval.cost_end_over_start"].endswith("met")
    assert verdicts["long_eval.memory_end_over_start"].endswith("MISSED")
    assert verdicts["run_all.app_over_eval"].endswith("met")


def test_the_synthetic_row_fills_every_column_and_reads_back_as_a_finished_row(tmp_path):
    from medgemma_tui.bench.scale import synthetic_row
    from medgemma_tui.export.columns import COLUMNS
    from medgemma_tui.export.reader import read_results
    from medgemma_tui.export.tree import ResultsTree

    tree = ResultsTree(tmp_path / "out")
    with tree.locked():
        tree.put_rows([synthetic_row(2), synthetic_row(1)])
        tree.write_csv()
    rows = read_results(tree.root).rows
    assert rows["row"].tolist() == [1, 2] and (rows["error"] == "").all()
    assert set(COLUMNS) <= set(rows.columns) and not rows[list(COLUMNS)].isna().any().any()
