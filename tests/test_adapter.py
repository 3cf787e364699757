"""``--adapter``: a PEFT LoRA adapter merged into the model computes what PEFT's own adapted model computes,
changes the maps, and is recorded (path, PEFT config, weights' hash) in run.json and every row's meta."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.resources import demo_images_dir, fixtures_dir
from tests.support import demo_subset_csv, eval_config, make_lora_adapter

DEMO_FILM = demo_images_dir() / "p0001.png"
QUESTION = "Is there a pleural effusion in the left lung?"


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    return make_lora_adapter(tmp_path_factory.mktemp("lora") / "adapter")


def test_merged_adapter_matches_peft_unmerged_forward(adapter):
    """The merge (W + (alpha/r) B A) against PEFT's unmerged forward (W x + (alpha/r) B A x), the reference."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from medgemma_tui.model.loading import load_model
    from medgemma_tui.resources import demo_model_dir

    merged = load_model("demo", device="cpu", dtype="fp32", adapter=adapter).model
    base = AutoModelForImageTextToText.from_pretrained(demo_model_dir(), dtype=torch.float32)
    reference = PeftModel.from_pretrained(base, str(adapter)).eval()
    plain = AutoModelForImageTextToText.from_pretrained(demo_model_dir(), dtype=torch.float32).eval()
    ids = torch.tensor([[2, 105, 2364, 107, 3048, 563, 496, 3640, 236881, 106, 107, 105, 4368, 107]])
    ids = ids.clamp(max=plain.config.get_text_config().vocab_size - 1)
    with torch.no_grad():
        want = reference(input_ids=ids).logits
        got = merged(input_ids=ids).logits
        before = plain(input_ids=ids).logits
    assert (want - before).abs().max() > 1e-2  # the adapter changes the model
    assert torch.allclose(got, want, atol=1e-5, rtol=0)


def test_in_bf16_the_adapter_stays_unmerged_and_computes_what_peft_computes(adapter):
    """A merged bf16 weight would be rounded again; unmerged, the model computes PEFT's own bf16 forward."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from medgemma_tui.model.loading import load_model
    from medgemma_tui.resources import demo_model_dir

    loaded = load_model("demo", device="cpu", dtype="bf16", adapter=adapter)
    assert loaded.info.adapter["merged"] is False
    assert type(loaded.model).__name__ == "Gemma3ForConditionalGeneration"
    base = AutoModelForImageTextToText.from_pretrained(demo_model_dir(), dtype=torch.bfloat16)
    reference = PeftModel.from_pretrained(base, str(adapter)).eval()
    ids = torch.tensor([[2, 105, 2364, 107, 3048, 563, 496, 3640, 106, 107, 105, 4368, 107]])
    ids = ids.clamp(max=base.config.get_text_config().vocab_size - 1)
    with torch.no_grad():
        assert torch.equal(loaded.model(input_ids=ids).logits, reference(input_ids=ids).logits)


def test_check_records_the_adapter_and_its_map_changes(adapter):
    run = CliRunner()
    plain = run.invoke(main, ["check", str(DEMO_FILM), "-q", QUESTION, "--json", "--max-new-tokens", "4",
                              "--device", "cpu"], catch_exceptions=False)
    adapted = run.invoke(main, ["check", str(DEMO_FILM), "-q", QUESTION, "--json", "--max-new-tokens", "4",
                                "--device", "cpu", "--adapter", str(adapter)],
                                catch_exceptions=False)
    assert plain.exit_code == 0 and adapted.exit_code == 0, adapted.output
    a, b = json.loads(plain.stdout), json.loads(adapted.stdout)
    assert a["model"]["adapter"] is None
    recorded = b["model"]["adapter"]
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    assert recorded["sha256"] == hashlib.sha256(weights).hexdigest()
    assert recorded["path"] == str(adapter.resolve())
    assert recorded["peft_config"]["r"] == 4 and recorded["peft_config"]["peft_type"] == "LORA"
    assert recorded["merged"] is True  # fp32 on the CPU
    assert np.abs(np.asarray(a["grid"]) - np.asarray(b["grid"])).max() > 1e-4


def test_eval_records_the_adapter_in_run_json_and_each_meta(adapter, tmp_path):
    csv = demo_subset_csv(tmp_path, (0, 1))
    config = eval_config(tmp_path, full=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--export", str(out), "--data", str(csv), "--images",
                                       str(fixtures_dir()), "--config", str(config), "--adapter", str(adapter)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["adapter"]["sha256"] == hashlib.sha256(
        (adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert run["config"]["model"]["adapter"] == str(adapter)
    metas = sorted((out / "grids").glob("*_meta.json"))
    assert len(metas) == 2
    for meta in metas:
        assert json.loads(meta.read_text())["model"]["adapter"]["sha256"] == run["model"]["adapter"]["sha256"]


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "adapter not found"),
    (lambda p: (p.mkdir(), p)[1], "no adapter_config.json"),
    (lambda p: (p.mkdir(), (p / "adapter_config.json").write_text('{"peft_type": "LORA"}'), p)[2],
     "no adapter_model.safetensors"),
    (lambda p: (p.mkdir(), (p / "adapter_config.json").write_text('{"peft_type": "IA3"}'), p)[2],
     "medtui applies LoRA adapters"),
])
def test_a_bad_adapter_is_one_line_and_exit_2(tmp_path, make, message):
    path = make(tmp_path / "adapter")
    result = CliRunner().invoke(main, ["check", str(DEMO_FILM), "-q", QUESTION, "--adapter", str(path)])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_adapter_for_another_model_is_one_line(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["no_such_proj"], "task_type": None}))
    from safetensors.numpy import save_file

    save_file({"base_model.model.x.no_such_proj.lora_A.weight": np.zeros((2, 4), np.float32)},
              str(folder / "adapter_model.safetensors"))
    pytest.importorskip("peft")
    result = CliRunner().invoke(main, ["check", str(DEMO_FILM), "-q", QUESTION, "--adapter", str(folder)])
    assert result.exit_code == 2, result.output
    assert "cannot apply adapter" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_tui_and_bench_hand_the_adapter_on(monkeypatch, tmp_path):
    """The app's session loads with the config's adapter; the bench loads its shape with it."""
    import cli.app
    import medgemma_tui.bench.run

    seen = {}
    monkeypatch.setattr(cli.app, "launch", lambda session, config, *a, **k: seen.setdefault("tui", config))

    def fake_bench(**kwargs):
        seen["bench"] = kwargs["adapter"]
        raise SystemExit(0)

    monkeypatch.setattr(medgemma_tui.bench.run, "run_bench", fake_bench)
    folder = tmp_path / "lora"
    assert CliRunner().invoke(main, ["tui", "--adapter", str(folder)]).exit_code == 0
    assert seen["tui"].model.adapter == folder
    CliRunner().invoke(main, ["bench", "--shape", "demo", "--adapter", str(folder)])
    assert seen["bench"] == str(folder)


def test_the_gradient_views_run_through_unmerged_lora_layers(adapter):
    """bf16 keeps PEFT's layers in the model: the backward pass of the gradient view goes through them."""
    result = CliRunner().invoke(main, ["check", str(DEMO_FILM), "-q", QUESTION, "--json", "--max-new-tokens", "3",
                                       "--device", "cpu", "--dtype", "bf16", "--adapter", str(adapter),
                                       "--view", "gradient"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"]["adapter"]["merged"] is False
    assert "gradient" in json.dumps(payload["map"])
    grid = np.asarray(payload["grid"])
    assert grid.sum() == pytest.approx(1.0, abs=1e-3) and grid.max() > 1.5 / grid.size  # not a flat map
