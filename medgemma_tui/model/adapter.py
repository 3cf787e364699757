"""A PEFT adapter (LoRA, or QLoRA saved as LoRA) applied to a loaded model, and what identifies it.

MedGemma is usually adapted with LoRA through PEFT (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
Language Models"): each adapted linear layer computes ``W x + (alpha / r) B A x``.

- In fp32 the adapter is merged into the weights (``W <- W + (alpha / r) B A``, PEFT's ``merge_and_unload``),
  which leaves a plain ``Gemma3ForConditionalGeneration`` at no cost per token; it gives PEFT's adapted
  outputs to float rounding (the tests hold them to 1e-5).
- In bf16 or fp16 a merged weight would be rounded to 8 or 11 bits of mantissa again, which is not what
  the adapter was trained and run with; there PEFT's LoRA layers stay in the model, unmerged (PEFT's
  ``get_base_model``: the same ``Gemma3ForConditionalGeneration``, its adapted linear layers wrapped), and
  the outputs are PEFT's own.

Either way the capture, the gradient views and the methods run through the adapted model.

What identifies an adapter in ``run.json`` and each row's meta (``AdapterInfo``): its folder, its PEFT
config (``adapter_config.json``) and the SHA-256 of its weight files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from medgemma_tui.errors import MedtuiError, first_line

CONFIG_NAME = "adapter_config.json"  # PEFT's file names (peft.utils.constants)
WEIGHT_NAMES = ("adapter_model.safetensors",)
PICKLED_WEIGHTS = ("adapter_model.bin",)
INSTALL_HINT = "pip install 'medgemma-tui[peft]'"


class AdapterError(MedtuiError, RuntimeError):
    """An adapter that cannot be applied; the message is one line for the user."""


def weights_sha256(folder: Path) -> str:
    """SHA-256 over the adapter's weight files, in name order (one file in PEFT's layout)."""
    digest = hashlib.sha256()
    for name in WEIGHT_NAMES:
        path = folder / name
        if path.exists():
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def read_adapter(path: str | Path) -> dict[str, Any]:
    """The adapter's identity: ``path`` (absolute), ``peft_config`` (its adapter_config.json) and
    ``sha256`` of its weights. Refuses, in one line, a folder that is not a safetensors PEFT adapter."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise AdapterError(f"adapter not found: {folder}")
    if not folder.is_dir():
        raise AdapterError(f"adapter is not a folder: {folder}")
    config_path = folder / CONFIG_NAME
    if not config_path.exists():
        raise AdapterError(f"no {CONFIG_NAME} in {folder}: not a PEFT adapter folder")
    try:
        peft_config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"unreadable {CONFIG_NAME} in {folder}: {exc}") from None
    if not isinstance(peft_config, dict):
        raise AdapterError(f"{config_path} is not a JSON object")
    kind = peft_config.get("peft_type")
    if kind != "LORA":
        raise AdapterError(f"{folder} holds a {kind!r} adapter; medtui applies LoRA adapters (peft_type LORA)")
    if not any((folder / name).exists() for name in WEIGHT_NAMES):
        pickled = [name for name in PICKLED_WEIGHTS if (folder / name).exists()]
        if pickled:
            raise AdapterError(f"{folder} has adapter weights only in pickle form ({pickled[0]}); "
                               "save them with safetensors (PEFT's default)")
        raise AdapterError(f"no {WEIGHT_NAMES[0]} in {folder}")
    return {"path": str(folder.resolve()), "peft_config": peft_config, "sha256": weights_sha256(folder)}


def apply_adapter(model, path: str | Path, merge: bool | None = None) -> tuple[Any, dict[str, Any]]:
    """``model`` with the adapter at ``path`` applied, and the adapter's identity (``merged`` says how).

    ``merge`` None: merged in fp32, kept unmerged in lower precision (see above)."""
    import torch

    identity = read_adapter(path)
    if merge is None:
        merge = model.dtype == torch.float32
    try:
        from peft import PeftModel
    except ImportError:
        raise AdapterError(f"--adapter needs PEFT: {INSTALL_HINT}") from None
    try:
        adapted = PeftModel.from_pretrained(model, identity["path"], is_trainable=False)
        model = adapted.merge_and_unload(safe_merge=True) if merge else adapted.get_base_model()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise AdapterError(f"cannot apply adapter {identity['path']}: {first_line(exc)}") from None
    model.eval()
    return model, {**identity, "merged": bool(merge)}
