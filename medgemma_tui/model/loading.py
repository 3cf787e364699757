"""Load a Gemma3 vision-language model and its processor: a hub id, a local folder, or the demo bundle.

Safetensors only, never ``trust_remote_code``. Every failure a user can cause (a missing path, a model
that is not Gemma3, weights only in pickle form, a hub id with no network) is a ``ModelLoadError`` with
one clear line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medgemma_tui.errors import MedtuiError, first_line
from medgemma_tui.model.adapter import apply_adapter, read_adapter
from medgemma_tui.model.info import ModelInfo, model_info
from medgemma_tui.resources import demo_model_dir

DEMO = "demo"
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class ModelLoadError(MedtuiError, RuntimeError):
    """A model could not be loaded; the message is one line for the user."""


@dataclass
class LoadedModel:
    model: Any  # Gemma3ForConditionalGeneration
    processor: Any  # Gemma3Processor
    info: ModelInfo
    source: str

    @property
    def device(self):
        return self.model.device

    @property
    def config(self):
        return self.model.config


def resolve_device(device: str = "auto") -> str:
    """"auto" (the GPU if there is one, else the CPU), "cpu", "cuda", "cuda:N", or "cuda:auto": the GPU with
    the most free memory now (``torch.cuda.mem_get_info``), for a shared multi-GPU host."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {device}: CUDA is not available on this machine")
    if device == "cuda:auto":
        return f"cuda:{most_free_gpu(torch.cuda.device_count(), torch.cuda.mem_get_info)}"
    if device != "cpu" and not device.startswith("cuda"):
        raise ModelLoadError(f"--device {device!r}: expected auto, cpu, cuda[:N] or cuda:auto")
    return device


def most_free_gpu(count: int, free_and_total) -> int:
    """The index of the GPU with the most free memory (the lowest index on ties); ``free_and_total(i)`` gives
    (free, total) bytes of GPU i, as ``torch.cuda.mem_get_info`` does."""
    if count < 1:
        raise ModelLoadError("--device cuda:auto: no GPU is visible (CUDA_VISIBLE_DEVICES?)")
    free = [int(free_and_total(i)[0]) for i in range(count)]
    return max(range(count), key=lambda i: (free[i], -i))


def resolve_dtype(dtype: str, device: str):
    """bf16 on a GPU by default, fp32 on the CPU (bf16 matmuls are slow there)."""
    import torch

    if dtype == "auto":
        dtype = "bf16" if device.startswith("cuda") else "fp32"
    if dtype not in DTYPES:
        raise ModelLoadError(f"--dtype {dtype!r}: expected auto, bf16, fp16 or fp32")
    return getattr(torch, DTYPES[dtype])


def _check_local_folder(path: Path) -> None:
    if not path.exists():
        raise ModelLoadError(f"model path not found: {path}")
    if not path.is_dir():
        raise ModelLoadError(f"model path is not a folder: {path}")
    config = path / "config.json"
    if not config.exists():
        raise ModelLoadError(f"no config.json in {path}: not a transformers model folder")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"unreadable config.json in {path}: {exc}") from None
    if model_type != "gemma3":
        raise ModelLoadError(
            f"{path} holds a {model_type!r} model; medtui needs Gemma3ForConditionalGeneration (model_type gemma3)"
        )
    if not any(path.glob("*.safetensors")):
        pickles = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt*")]
        if pickles:
            raise ModelLoadError(
                f"{path} has weights only in pickle form ({pickles[0]}); convert them to safetensors"
            )
        raise ModelLoadError(f"no *.safetensors weights in {path}")


HUB_HOST = ("huggingface.co", 443)
HUB_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"]


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """One quick connection attempt, so an offline host fails in seconds, not after minutes of retries."""
    import socket

    try:
        with socket.create_connection(HUB_HOST, timeout=timeout_s):
            return True
    except OSError:
        return False


def resolve_hub_id(repo_id: str, revision: str | None) -> Path:
    """A hub id -> a local snapshot folder: the cache first, then (if reachable) a download."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True, allow_patterns=HUB_PATTERNS))
    except Exception:  # not cached (the hub client raises several kinds): try the network below
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not hub_reachable():
        raise ModelLoadError(
            f"{repo_id!r} is not in the local Hugging Face cache and the hub cannot be reached; "
            "download it on a connected machine and pass --model /path/to/its/folder"
        )
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # gated repo, unknown id, revoked token: one line for the user
        raise ModelLoadError(f"cannot download {repo_id!r}: {first_line(exc)}") from None


def load_model(
    source: str | os.PathLike | None = None,
    device: str = "auto",
    dtype: str = "auto",
    revision: str | None = None,
    adapter: str | os.PathLike | None = None,
) -> LoadedModel:
    """Load model + processor on SDPA attention. ``source`` None or "demo" is the embedded demo bundle;
    ``adapter`` a PEFT LoRA adapter folder merged into the weights (``model.adapter``).

    The engine switches the text decoder to its capture function (``engine.loading.load_for_capture``).
    """
    source = DEMO if source in (None, "", DEMO) else str(source)
    path = demo_model_dir() if source == DEMO else Path(source).expanduser()
    local = source == DEMO or path.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1
    if not local:
        path = resolve_hub_id(source, revision)
    _check_local_folder(path)
    if adapter is not None:
        read_adapter(adapter)  # a bad adapter is refused before the model is loaded
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)

    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    where = str(path)
    try:
        processor = AutoProcessor.from_pretrained(where, trust_remote_code=False)
        model = AutoModelForImageTextToText.from_pretrained(
            where,
            dtype=torch_dtype,
            use_safetensors=True,
            trust_remote_code=False,
            attn_implementation="sdpa",
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load model {source!r}: {first_line(exc)}") from None
    if type(model).__name__ != "Gemma3ForConditionalGeneration":
        raise ModelLoadError(f"{source!r} is a {type(model).__name__}; medtui needs Gemma3ForConditionalGeneration")
    identity = None
    if adapter is not None:
        model, identity = apply_adapter(model, adapter)
    model.to(device)
    model.eval()
    info = model_info(model, source, revision, adapter=identity)
    return LoadedModel(model=model, processor=processor, info=info, source=source)
