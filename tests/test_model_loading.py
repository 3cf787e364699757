"""Loading: the demo, a local folder, a cached hub id; a clear error for everything a user can get wrong."""

from __future__ import annotations

import json
import shutil

import pytest

from medgemma_tui.model.loading import ModelLoadError, load_model, resolve_dtype
from medgemma_tui.resources import demo_model_dir


def test_demo_loads_through_the_auto_classes_with_its_config_facts(demo_model):
    text = demo_model.config.get_text_config()
    assert type(demo_model.model).__name__ == "Gemma3ForConditionalGeneration"
    assert type(demo_model.processor).__name__ == "Gemma3Processor"
    assert demo_model.info.num_heads == text.num_attention_heads == 8
    assert demo_model.info.num_kv_heads == text.num_key_value_heads == 4
    assert demo_model.info.grid == (16, 16)
    assert {"sliding_attention", "full_attention"} <= set(demo_model.info.layer_types)


def test_a_local_folder_loads(tmp_path):
    folder = tmp_path / "my-model"
    shutil.copytree(demo_model_dir(), folder)
    loaded = load_model(str(folder), device="cpu")
    assert loaded.info.name_or_path == str(folder)


def test_a_cached_hub_id_loads_offline(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--google--medgemma-4b-it"
    shutil.copytree(demo_model_dir(), repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = load_model("google/medgemma-4b-it", device="cpu")
    assert loaded.info.num_heads == 8


def test_an_uncached_hub_id_offline_fails_fast_with_advice(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache"):
        load_model("google/medgemma-4b-it", device="cpu")


def test_weights_only_in_pickle_form_are_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gemma3"}))
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_model(str(folder), device="cpu")


def test_a_model_that_is_not_gemma3_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava"}))
    with pytest.raises(ModelLoadError, match="llava"):
        load_model(str(tmp_path), device="cpu")


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(str(tmp_path / "nowhere"), device="cpu")


def test_dtype_defaults_bf16_on_gpu_and_fp32_on_cpu():
    import torch

    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("auto", "cpu") == torch.float32
    with pytest.raises(ModelLoadError):
        resolve_dtype("int3", "cpu")


def test_cuda_on_a_machine_without_it_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        load_model(None, device="cuda")
