"""Random-weight models of MedGemma-4b's geometry, for the bench: nothing is downloaded.

``medgemma-lite`` keeps MedGemma-4b's widths, heads, window and image size on a few text layers, one
vision layer and the demo tokenizer's vocabulary; ``medgemma-4b`` is the full config (for a GPU host);
``demo`` is the shipped demo bundle. The sizes are the public model card's; only this module and the
demo bundle's builder name them.
"""

from __future__ import annotations

from medgemma_tui.model.adapter import apply_adapter
from medgemma_tui.model.info import model_info
from medgemma_tui.model.loading import LoadedModel, load_model, resolve_device, resolve_dtype
from medgemma_tui.resources import demo_model_dir

SHAPE_SEED = 0

# MedGemma-4b-it, from its model card. The lite shape keeps every width and cuts the depth.
MEDGEMMA_TEXT = {
    "hidden_size": 2560,
    "intermediate_size": 10240,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "sliding_window": 1024,
    "max_position_embeddings": 131072,
    "rope_parameters": {
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
    },
}
MEDGEMMA_VISION = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_attention_heads": 16,
    "image_size": 896,
    "patch_size": 14,
    "vision_use_head": False,
}
MEDGEMMA_TOKENS_PER_IMAGE = 256  # 64x64 patches, average-pooled 4x4 to a 16x16 grid
MEDGEMMA_SLIDING_PER_GLOBAL = 5  # layers 5, 11, 17, ... are global
MEDGEMMA_4B_DEPTH = {"text_layers": 34, "vision_layers": 27, "vocab_size": 262208}
# the whole decoder (every text fact of the model card) behind one SigLIP layer at 896 px: the real
# geometry of the capture on a CPU, where the 27-layer tower alone takes minutes per film
MEDGEMMA_4B_TEXT_DEPTH = {"text_layers": 34, "vision_layers": 1, "vocab_size": 262208}
# 2 sliding + 1 global text layers and one SigLIP layer: about a minute for the whole bench on 2 cores
MEDGEMMA_LITE_DEPTH = {"text_layers": 3, "vision_layers": 1, "vocab_size": None}  # None: the tokenizer's


# The Gemma 3 family behind medtui's readers, from each model's config.json on the hub (text_config; every one
# has MedGemma-4b's SigLIP tower at 896 px, 256 image tokens, 5 sliding : 1 global layers and a 1024 window).
# MedGemma 1.5 4B and Gemma 3 4B share MedGemma-4b's layout; MedGemma 27B multimodal is Gemma 3 27B's.
FAMILY_TEXT = {
    "medgemma-4b": {"num_hidden_layers": 34, "hidden_size": 2560, "intermediate_size": 10240,
                    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "query_pre_attn_scalar": 256},
    "gemma-3-12b": {"num_hidden_layers": 48, "hidden_size": 3840, "intermediate_size": 15360,
                    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256, "query_pre_attn_scalar": 256},
    "gemma-3-27b": {"num_hidden_layers": 62, "hidden_size": 5376, "intermediate_size": 21504,
                    "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128,
                    "query_pre_attn_scalar": 168},
}
FAMILY = {  # hub id -> its text layout in FAMILY_TEXT
    "google/medgemma-4b-it": "medgemma-4b",
    "google/medgemma-1.5-4b-it": "medgemma-4b",
    "google/gemma-3-4b-it": "medgemma-4b",
    "google/gemma-3-12b-it": "gemma-3-12b",
    "google/gemma-3-27b-it": "gemma-3-27b",
    "google/medgemma-27b-it": "gemma-3-27b",
}
# each layout's heads (query heads, key/value heads, head width, query scaling) at small widths, on 5 sliding
# and 1 global layers and one narrow SigLIP layer at 896 px: the capture's geometry for every member on a CPU
HEADS_WIDTHS = {"hidden_size": 64, "intermediate_size": 128, "text_layers": 6}
HEADS_VISION = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2}
HEADS_SHAPES = {f"{layout}-heads": layout for layout in FAMILY_TEXT}
SHAPES = ("demo", "medgemma-lite", "medgemma-4b-text", "medgemma-4b", *HEADS_SHAPES)


def medgemma_layer_types(text_layers: int) -> list[str]:
    """5 sliding : 1 global, as MedGemma; a cut-down stack still ends on a global layer."""
    period = MEDGEMMA_SLIDING_PER_GLOBAL + 1
    types = ["full_attention" if (i + 1) % period == 0 else "sliding_attention" for i in range(text_layers)]
    if "full_attention" not in types:
        types[-1] = "full_attention"
    return types


def medgemma_config(demo_config, text_layers: int, vision_layers: int, vocab_size: int, text=None, vision=None):
    """MedGemma-4b's widths (or ``text`` / ``vision`` ones) at the given depth, with the demo bundle's special
    tokens."""
    from transformers import Gemma3Config, Gemma3TextConfig, SiglipVisionConfig

    demo_text = demo_config.get_text_config()
    text = Gemma3TextConfig(
        vocab_size=vocab_size,
        num_hidden_layers=text_layers,
        layer_types=medgemma_layer_types(text_layers),
        pad_token_id=demo_text.pad_token_id,
        bos_token_id=demo_text.bos_token_id,
        eos_token_id=demo_text.eos_token_id,
        **{**MEDGEMMA_TEXT, **(text or {})},
    )
    vision = SiglipVisionConfig(num_hidden_layers=vision_layers, **{**MEDGEMMA_VISION, **(vision or {})})
    return Gemma3Config(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        mm_tokens_per_image=MEDGEMMA_TOKENS_PER_IMAGE,
        image_token_index=demo_config.image_token_index,
        boi_token_index=demo_config.boi_token_index,
        eoi_token_index=demo_config.eoi_token_index,
        eos_token_id=demo_config.eos_token_id,
        bos_token_id=demo_config.bos_token_id,
        pad_token_id=demo_config.pad_token_id,
    )


def family_config(demo_config, layout: str, small: bool = False, vocab_size: int | None = None):
    """A family member's config (``FAMILY_TEXT``) with the demo bundle's special tokens; ``small`` keeps its
    heads and cuts its widths and depth (``HEADS_WIDTHS``)."""
    text = dict(FAMILY_TEXT[layout])
    layers = text.pop("num_hidden_layers")
    vision_layers, vision = MEDGEMMA_4B_DEPTH["vision_layers"], dict(MEDGEMMA_VISION)
    if small:
        layers, vision_layers = HEADS_WIDTHS["text_layers"], 1
        text.update(hidden_size=HEADS_WIDTHS["hidden_size"], intermediate_size=HEADS_WIDTHS["intermediate_size"])
        vision.update(HEADS_VISION)
    vocab = vocab_size or (demo_config.get_text_config().vocab_size if small else MEDGEMMA_4B_DEPTH["vocab_size"])
    config = medgemma_config(demo_config, layers, vision_layers, vocab, text=text, vision=vision)
    return config


def bf16_weight_bytes(hub_id: str) -> int:
    """The weights' size in bf16 of a family member (``FAMILY``), counted from its config on the meta device:
    what loading it needs on the GPU before activations and the key/value cache."""
    import torch
    from transformers import AutoConfig, Gemma3ForConditionalGeneration
    from transformers.initialization import no_init_weights

    config = family_config(AutoConfig.from_pretrained(demo_model_dir()), FAMILY[hub_id])
    with torch.device("meta"), no_init_weights():
        model = Gemma3ForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.tie_weights()  # the output head is the embeddings (tie_word_embeddings), as the checkpoints store it
    seen, total = set(), 0
    for param in model.parameters():  # tied weights (the embeddings and the output head) once
        if id(param) not in seen:
            seen.add(id(param))
            total += param.numel() * param.element_size()
    return total


def gemma3_processor(tokenizer, chat_template: str, image_size: int, tokens_per_image: int):
    """Gemma 3's processor as MedGemma's ships: square ``image_size`` px films scaled to [-1, 1] (mean and std
    0.5), no pan-and-scan, ``tokens_per_image`` image tokens in the prompt. The demo bundle's builder makes its
    processor here too."""
    from transformers import Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    image_processor = Gemma3ImageProcessorPil(
        size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_pan_and_scan=False,
    )
    return Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template,
                           image_seq_length=tokens_per_image)


def medgemma_processor(demo_processor):
    """The demo processor's tokenizer and chat template with MedGemma's 896 px image processor."""
    return gemma3_processor(demo_processor.tokenizer, demo_processor.chat_template, MEDGEMMA_VISION["image_size"],
                            MEDGEMMA_TOKENS_PER_IMAGE)


def load_shape(shape: str, device: str = "auto", dtype: str = "auto", adapter=None):
    """A ``LoadedModel`` for ``shape`` on SDPA, as ``load_model`` gives a real one (the engine then
    prepares it for capture, ``engine.loading.prepare_for_capture``), with ``adapter`` (a PEFT LoRA
    folder made for that shape) merged."""
    if shape == "demo":
        return load_model("demo", device=device, dtype=dtype, adapter=adapter)
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: expected one of {', '.join(SHAPES)}")
    import torch
    from transformers import AutoConfig, AutoProcessor, Gemma3ForConditionalGeneration, GenerationConfig

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    processor = medgemma_processor(AutoProcessor.from_pretrained(demo_model_dir()))
    demo_config = AutoConfig.from_pretrained(demo_model_dir())
    if shape in HEADS_SHAPES:
        config = family_config(demo_config, HEADS_SHAPES[shape], small=True)
    else:
        depth = {"medgemma-4b": MEDGEMMA_4B_DEPTH, "medgemma-4b-text": MEDGEMMA_4B_TEXT_DEPTH}.get(
            shape, MEDGEMMA_LITE_DEPTH)
        vocab_size = depth["vocab_size"] or demo_config.get_text_config().vocab_size
        config = medgemma_config(demo_config, depth["text_layers"], depth["vision_layers"], vocab_size)
    torch.manual_seed(SHAPE_SEED)
    from transformers.initialization import no_init_weights

    # allocate without transformers' per-parameter init (minutes for the full model on a CPU), where it
    # will run, then fill every parameter at once
    with torch.device(device), no_init_weights():
        model = Gemma3ForConditionalGeneration._from_config(config, dtype=torch_dtype, attn_implementation="sdpa")
    fill_random(model, SHAPE_SEED)
    identity = None
    if adapter is not None:
        model, identity = apply_adapter(model, adapter)
    model.generation_config = GenerationConfig(
        do_sample=False,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    model.eval()
    source = f"bench:{shape}"
    return LoadedModel(model=model, processor=processor, info=model_info(model, source, adapter=identity),
                       source=source)


def fill_random(model, seed: int, std: float = 0.02) -> None:
    """Random weights at the scale of a trained model, in one in-place pass per parameter.

    Linear, embedding and convolution weights ~ N(0, std); biases 0; LayerNorm (SigLIP) weights 1;
    Gemma's RMSNorm weights 0 (it scales by ``1 + weight``). Buffers (the rotary frequencies) are left
    as the model computed them.
    """
    import torch

    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            kind = type(module).__name__
            for name, param in module.named_parameters(recurse=False):
                if name == "bias":
                    param.zero_()
                elif kind == "LayerNorm":
                    param.fill_(1.0)
                elif "RMSNorm" in kind:
                    param.zero_()
                elif param.ndim >= 2:
                    param.normal_(0.0, std, generator=generator)
                else:
                    param.zero_()
