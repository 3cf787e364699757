"""`medtui check`: the JSON contract, the human output, and one clear line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.resources import demo_images_dir
from tests.support import real_film

DEMO_FILM = demo_images_dir() / "p0001.png"


def run_check(*args: str):
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


def test_check_json_is_one_object_with_the_promised_fields():
    result = run_check(str(DEMO_FILM), "-q", "Is there a nodule?", "--json", "--max-new-tokens", "4")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    for field in ("image", "question", "answer", "answer_label", "model", "image_token_span", "grid", "metrics",
                  "timings_s", "gating"):
        assert field in payload, field
    grid = np.asarray(payload["grid"])
    assert grid.shape == (16, 16) and (grid >= 0).all()
    assert grid.sum() == pytest.approx(1.0, abs=1e-5)
    start, end = payload["image_token_span"]
    assert end - start == 256 and start > 1
    assert payload["answer_label"] in ("yes", "no", "uncertain")
    assert payload["model"]["heads"] == 8 and payload["model"]["kv_heads"] == 4 and payload["model"]["grid"] == [16, 16]
    assert payload["gating"]["terms"] == ["nodule"]
    # Gemma 3 cuts "nodule" into two pieces; the term gates both
    assert "".join(t["text"] for t in payload["gating"]["tokens"]).strip() == "nodule"
    m = payload["metrics"]
    assert m["left_fraction"] + m["right_fraction"] == pytest.approx(1.0, abs=1e-6)
    assert m["bos_share"] + m["image_share"] + m["text_share"] == pytest.approx(1.0, abs=1e-5)


def test_check_verify_eager_reports_a_tiny_difference():
    result = run_check(str(DEMO_FILM), "-q", "Is there a mass?", "--json", "--verify-eager", "--max-new-tokens", "3")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verify"]["max_abs_diff"] < 1e-5


def test_check_prints_answer_heatmap_and_metrics_for_people():
    result = run_check(str(DEMO_FILM), "-q", "Is there a nodule?", "--max-new-tokens", "3")
    assert result.exit_code == 0, result.output
    assert "Q: Is there a nodule?" in result.output and "entropy_norm" in result.output
    assert "gated terms: nodule" in result.output


@pytest.mark.parametrize("name", ["nih_00000001_000.png", "tbx11k_h0001.png", "siim_pa_chest.dcm"])
def test_check_answers_on_real_films(name):
    result = run_check(str(real_film(name)), "-q", "Is there cardiomegaly?", "--json", "--max-new-tokens", "3")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert np.asarray(payload["grid"]).sum() == pytest.approx(1.0, abs=1e-5)
    assert payload["metrics"]["inside_lungs_ratio"] is not None


def bad(args, tmp_path):
    """Run in a real process so nothing but the CLI's own handling stands between error and user."""
    proc = subprocess.run([sys.executable, "-m", "cli.main", "check", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    return proc


@pytest.mark.parametrize(
    "case",
    ["missing file", "not an image", "empty question", "unknown model path", "model folder of another kind"],
)
def test_bad_input_gets_one_line_and_a_nonzero_exit(case, tmp_path):
    text_file = tmp_path / "notes.png"
    text_file.write_text("this is not an image")
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    args = {
        "missing file": [str(tmp_path / "nope.png"), "-q", "Is there a mass?"],
        "not an image": [str(text_file), "-q", "Is there a mass?"],
        "empty question": [str(DEMO_FILM), "-q", "   "],
        "unknown model path": [str(DEMO_FILM), "-q", "Is there a mass?", "--model", str(tmp_path / "no-model")],
        "model folder of another kind": [str(DEMO_FILM), "-q", "Is there a mass?", "--model", str(other)],
    }[case]
    proc = bad(args, tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("medtui: error:") or lines[0].startswith("Error:"), lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize("view,says", [("rollout", "rollout"), ("gradient", "gradient"), ("relative", "relative")])
def test_check_shows_any_view_and_says_how_it_was_made(view, says):
    result = run_check(str(DEMO_FILM), "-q", "Is there a nodule?", "--json", "--max-new-tokens", "3", "--view", view)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert says in payload["map"]
    assert np.asarray(payload["grid"]).sum() == pytest.approx(1.0, abs=1e-5)


def test_check_reads_the_default_map_from_the_config(tmp_path):
    config = tmp_path / "medtui.toml"
    config.write_text('[analysis]\nmap_view = "gated"\nlayers = [1, 2]\n')
    result = run_check(str(DEMO_FILM), "-q", "Is there a nodule?", "--json", "--max-new-tokens", "3",
                       "--config", str(config))
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)["map"]
    assert described.startswith("gated") and "layer 1," in described


def test_check_names_an_unknown_config_key(tmp_path):
    config = tmp_path / "medtui.toml"
    config.write_text("[decoding]\nmax_tokens = 3\n")
    proc = bad([str(DEMO_FILM), "-q", "Is there a nodule?", "--config", str(config)], tmp_path)
    assert proc.returncode == 2 and "max_tokens" in proc.stderr and "Traceback" not in proc.stderr
