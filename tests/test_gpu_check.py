"""scripts/gpu_check.py, the GPU check, on its CPU path: its steps run, its summary says what each gave."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_check_measures_an_eval_on_the_cpu_path_and_writes_its_summary(tmp_path, gpu_check):
    code = gpu_check.main(["--device", "cpu", "--dtype", "fp32", "--shape", "demo", "--quick", "--demo-rows", "4",
                           "--steps", "eval-demo", "--out", str(tmp_path), "--wheels", str(tmp_path / "none"),
                           "--budget-s", "600"])
    folder = tmp_path / "gpu-check"
    summary = json.loads((folder / "summary.json").read_text())
    (step,) = summary["steps"]
    assert code == 0 and step["ok"], step
    assert summary["wheels"] == "no wheels carried"
    figures = step["figures"]
    assert figures["long_eval"]["rows"] == 4 and figures["long_eval"]["rows_per_s"] > 0
    assert figures["run_all"]["app_rows_per_s"] > 0 and figures["batch_size"] == "auto"
    table = (folder / "summary.md").read_text()
    assert "| eval-demo |" in table and "rows/s over 4 rows" in table


def test_the_steps_share_the_budget_and_a_failing_step_costs_only_itself(tmp_path, gpu_check, monkeypatch):
    given = []

    def stand_in(name, medtui, limit_s, folder, env):
        given.append((name, round(limit_s)))
        ok = name != "bench-batch-auto"
        return {"step": name, "argv": medtui, "seconds": 0.0, "ok": ok, "exit": 0 if ok else "timeout",
                **({"figures": {"capture_over_forward": 1.02, "batch_size": 1}} if ok else {"error": "hung"})}

    monkeypatch.setattr(gpu_check, "run_step", stand_in)
    code = gpu_check.main(["--out", str(tmp_path), "--budget-s", "500", "--wheels", str(tmp_path / "none")])
    assert code == 1
    assert [name for name, _ in given] == ["bench-batch-1", "bench-batch-auto", "eval-demo", "eval-shape"]
    assert given[0][1] == 125 and given[3][1] >= 149  # shares 0.25, 0.25, 0.2, 0.3 of what is left
    table = (tmp_path / "gpu-check" / "summary.md").read_text()
    assert "failed (timeout): hung" in table and "capture_over_forward 1.02" in table


def test_an_unknown_step_is_named_and_exits_2(tmp_path, gpu_check, capsys):
    assert gpu_check.main(["--steps", "nope", "--out", str(tmp_path), "--wheels", str(tmp_path)]) == 2
    assert "unknown step(s) nope" in capsys.readouterr().err
