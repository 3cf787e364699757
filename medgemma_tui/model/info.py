"""What a loaded model is, in the facts the analysis needs: layers, heads, key/value heads, the image grid.

Read from the model's own config (``text_config.num_hidden_layers``, ``num_attention_heads``,
``num_key_value_heads``, ``layer_types``, and ``mm_tokens_per_image`` for the grid), never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ModelInfo:
    name_or_path: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    grid: tuple[int, int]
    layer_types: list[str]
    dtype: str = "float32"
    device: str = "cpu"
    revision: str | None = None
    adapter: dict[str, Any] | None = None  # a merged PEFT adapter: path, peft_config, sha256 (model.adapter)

    @property
    def heads_per_group(self) -> int:
        return self.num_heads // self.num_kv_heads

    def to_json(self) -> dict[str, Any]:
        return {
            "name_or_path": self.name_or_path,
            "layers": self.num_layers,
            "heads": self.num_heads,
            "kv_heads": self.num_kv_heads,
            "grid": list(self.grid),
            "layer_types": list(self.layer_types),
            "dtype": self.dtype,
            "device": self.device,
            "revision": self.revision,
            "adapter": self.adapter,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelInfo:
        return cls(
            name_or_path=d["name_or_path"],
            num_layers=int(d["layers"]),
            num_heads=int(d["heads"]),
            num_kv_heads=int(d["kv_heads"]),
            grid=tuple(d["grid"]),
            layer_types=list(d.get("layer_types", [])),
            dtype=d.get("dtype", "float32"),
            device=d.get("device", "cpu"),
            revision=d.get("revision"),
            adapter=d.get("adapter"),
        )


def model_info(model, source: str, revision: str | None = None, adapter: dict[str, Any] | None = None) -> ModelInfo:
    text = model.config.get_text_config()
    side = int(round(model.config.mm_tokens_per_image**0.5))
    return ModelInfo(
        name_or_path=source,
        num_layers=text.num_hidden_layers,
        num_heads=text.num_attention_heads,
        num_kv_heads=text.num_key_value_heads,
        grid=(side, side),
        layer_types=list(getattr(text, "layer_types", None) or ["full_attention"] * text.num_hidden_layers),
        dtype=str(model.dtype).removeprefix("torch."),
        device=str(model.device),
        revision=revision,
        adapter=adapter,
    )
