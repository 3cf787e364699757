"""The demo bundle speaks like MedGemma where the tool's hard paths depend on it.

Known values from MedGemma-4b's public config and Gemma 3's own tokenizer and chat template: the image
geometry (896 px, 14 px patches, a 4x4 average pool to 16x16 tokens), the chat template's handling of a
system prompt (no system role: it opens the first user turn), Gemma 3's sub-word pieces, and one <bos>.
Where the full Gemma 3 tokenizer has been rebuilt on this machine (``fixtures/builders/gemma3_vocab.py``
caches it), every text the demo meets is compared with it as well.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from medgemma_tui.resources import demo_dataset_csv, demo_model_dir

# Gemma 3's tokenizer on these texts (google/gemma-3-4b-it; the GGUF vocabulary of Gemma 3 270M is the same)
GEMMA3_PIECES = {
    "Is there a pneumothorax?": ["Is", "▁there", "▁a", "▁pneum", "othor", "ax", "?"],
    "Is there cardiomegaly?": ["Is", "▁there", "▁cardi", "omeg", "aly", "?"],
    "You are an expert radiologist.": ["You", "▁are", "▁an", "▁expert", "▁radi", "ologist", "."],
    "Based on the chest X-ray provided, there is no clear evidence of a pleural effusion.": [
        "Based", "▁on", "▁the", "▁chest", "▁X", "-", "ray", "▁provided", ",", "▁there", "▁is", "▁no", "▁clear",
        "▁evidence", "▁of", "▁a", "▁pleural", "▁effusion", "."],
}
GEMMA3_IDS = {  # the real vocabulary's ids of a few of them (the demo numbers its pruned vocabulary anew)
    "▁pneum": 29229, "othor": 174965, "cardi": 99973, "▁pleural": 181069, "▁effusion": 156605,
}
SYSTEM_PROMPT_RENDERED = (
    "<bos><start_of_turn>user\nYou are an expert radiologist.\n\n<start_of_image>Is there a nodule?<end_of_turn>\n"
    "<start_of_turn>model\n"
)


@pytest.fixture(scope="module")
def processor():
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(demo_model_dir())


def test_demo_has_medgemma_image_geometry():
    config = json.loads((demo_model_dir() / "config.json").read_text())
    vision = config["vision_config"]
    assert (vision["image_size"], vision["patch_size"], config["mm_tokens_per_image"]) == (896, 14, 256)
    patches_per_side = vision["image_size"] // vision["patch_size"]
    tokens_per_side = int(config["mm_tokens_per_image"] ** 0.5)
    assert (patches_per_side, tokens_per_side, patches_per_side // tokens_per_side) == (64, 16, 4)  # 4x4 pool
    processor = json.loads((demo_model_dir() / "processor_config.json").read_text())
    assert processor["image_processor"]["size"] == {"height": 896, "width": 896}


def test_chat_template_puts_the_system_prompt_inside_the_first_user_turn(processor):
    messages = [{"role": "system", "content": [{"type": "text", "text": "You are an expert radiologist."}]},
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there a nodule?"}]}]
    assert processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == SYSTEM_PROMPT_RENDERED


@pytest.mark.parametrize("text", list(GEMMA3_PIECES))
def test_demo_tokens_are_gemma3_pieces(processor, text):
    assert processor.tokenizer.tokenize(text) == GEMMA3_PIECES[text]


def test_long_findings_are_cut_into_several_pieces(processor):
    pieces = processor.tokenizer.tokenize(" pneumothorax cardiomegaly")
    assert pieces == ["▁pneum", "othor", "ax", "▁cardi", "omeg", "aly"]


def test_prompt_has_one_bos(processor):
    from PIL import Image
    from transformers import AutoConfig

    from medgemma_tui.config.schema import PromptConfig
    from medgemma_tui.engine.prompt import build_prompt

    config = AutoConfig.from_pretrained(demo_model_dir())
    prompt = build_prompt(processor, config, Image.new("RGB", (64, 64)), "Is there a nodule?",
                          PromptConfig(system="You are an expert radiologist."))
    ids = prompt.input_ids.tolist()
    assert ids.count(processor.tokenizer.bos_token_id) == 1 and ids[0] == processor.tokenizer.bos_token_id
    question = "".join(processor.tokenizer.convert_ids_to_tokens(ids[i])
                       for i in prompt.question_positions.tolist())
    assert question == "Is▁there▁a▁nodule?"


def full_gemma3_tokenizer():
    path = Path(tempfile.gettempdir()) / "medtui-gemma3" / "tokenizer.json"
    if not path.exists():
        pytest.skip("Gemma 3's full tokenizer is not built here (fixtures/builders/gemma3_vocab.py builds it)")
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def test_every_demo_text_is_cut_as_gemma3_cuts_it(processor):
    import pandas as pd

    real = full_gemma3_tokenizer()
    rows = pd.read_csv(demo_dataset_csv(), keep_default_na=False)
    texts = set(rows["question"]) | {"You are an expert radiologist.", "Describe the image.", "Answer yes or no."}
    different = [t for t in texts if processor.tokenizer.tokenize(t) != real.encode(t, add_special_tokens=False).tokens]
    assert not different
    assert all(real.token_to_id(piece) == i for piece, i in GEMMA3_IDS.items())
