"""Shared fixtures: the demo model loads once per session; a synthetic film; its record."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def pytest_configure(config):
    """One torch thread: the demo model's ops are tiny, and two threads on two shared cores thrash."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def demo_model():
    from medgemma_tui.engine.loading import load_for_capture

    return load_for_capture(None, device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def short_window_model(demo_model):
    """The demo's twin (random weights) with a 64-token sliding window, far shorter than a VQA sequence (fact 8)."""
    import copy

    import torch
    from transformers import Gemma3ForConditionalGeneration

    from medgemma_tui.engine.capture import CAPTURE_ATTENTION
    from medgemma_tui.model.info import model_info
    from medgemma_tui.model.loading import LoadedModel

    config = copy.deepcopy(demo_model.model.config)
    config.text_config.sliding_window = 64
    torch.manual_seed(1)
    model = Gemma3ForConditionalGeneration(config).eval()
    model.set_attn_implementation({"text_config": CAPTURE_ATTENTION, "vision_config": "sdpa"})
    return LoadedModel(model=model, processor=demo_model.processor, info=model_info(model, "short-window"),
                       source="short-window")


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module's tests: the demo model is tiny, one thread beats two on busy shared
    cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def film() -> Image.Image:
    """A non-square grayscale test film (stretched to the square input by the processor)."""
    rng = np.random.default_rng(0)
    pixels = (rng.random((300, 400)) * 200 + 20).astype(np.uint8)
    return Image.fromarray(pixels).convert("RGB")


@pytest.fixture(scope="session")
def demo_record(demo_model, film):
    from medgemma_tui.engine.extract import extract_record

    return extract_record(demo_model, film, "Is there a pleural effusion in the left lung?", max_new_tokens=8)


@pytest.fixture(scope="session")
def dataset():
    """The demo dataset's samples (the app tests' rows)."""
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.resources import demo_dataset_csv

    if not demo_dataset_csv().exists():
        pytest.skip("the demo dataset CSV is not in this checkout")
    return load_dataset(demo_dataset_csv())
