"""Helpers the tests share as plain functions (fixtures live in conftest.py): real films, CSV subsets, eval runs."""

from __future__ import annotations

import functools
import importlib.util
import sys
import time
from pathlib import Path

import pytest

from medgemma_tui.resources import demo_dataset_csv, fixtures_dir

REAL_CXR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-cxr"


BUILDERS = Path(__file__).resolve().parents[1] / "fixtures" / "builders"
# answer tokens the tests let the demo generate: its longest sentence and <end_of_turn> (MedGemma-style
# answers run 8 to 40 tokens there; a shorter limit would cut the verdict off some of them)
ANSWER_TOKENS = 48


def builder(name: str):
    """A script of fixtures/builders/ (the demo's builders, in the repository but not installed) as a module."""
    module = f"_medtui_builder_{name}"
    if module not in sys.modules:
        sys.path.insert(0, str(BUILDERS))  # the builders import each other as sibling scripts
        spec = importlib.util.spec_from_file_location(module, BUILDERS / f"{name}.py")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[module] = loaded
        spec.loader.exec_module(loaded)
    return sys.modules[module]


def reuses_features() -> bool:
    """Whether this transformers' Gemma 3 takes pre-computed image features (``engine.vision.takes_features``);
    on older 5.x releases a film's rows are answered from its pixels, each with its own vision pass."""
    from transformers import Gemma3ForConditionalGeneration

    from medgemma_tui.engine.vision import takes_features

    return takes_features(Gemma3ForConditionalGeneration)


def needs_feature_reuse(test):
    """Skip a test of the reused features where this transformers cannot take them."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        if not reuses_features():
            pytest.skip("this transformers' Gemma 3 does not take mm_encoder_outputs")
        return test(*args, **kwargs)

    return run


def real_film(name: str) -> Path:
    path = REAL_CXR / name
    if not path.exists():
        pytest.skip(f"real film {name} not available at {REAL_CXR}")
    return path


def demo_subset_csv(folder: Path, rows: tuple[int, ...], name: str = "subset.csv", edit=None) -> Path:
    """A CSV of some demo.csv data rows (0-based), image paths kept relative to the fixtures folder."""
    lines = demo_dataset_csv().read_text(encoding="utf-8").splitlines()
    chosen = [lines[0]] + [lines[r + 1] for r in rows]
    if edit is not None:
        chosen = edit(chosen)
    path = folder / name
    path.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return path


def eval_config(folder: Path, full: bool = True, tokens: int = ANSWER_TOKENS, extra: str = "", plots: bool | None = None
                ) -> Path:
    """A small TOML config: the demo's answers whole, and the per-row figure (``full``) and the dataset plots
    (``plots``, by default as ``full``) only when asked for."""
    plots = full if plots is None else plots
    path = folder / "medtui.toml"
    path.write_text(
        f"[model]\nname_or_path = \"demo\"\ndevice = \"cpu\"\ndtype = \"fp32\"\n"
        f"[decoding]\nmax_new_tokens = {tokens}\n"
        f"[visualization]\nsave_full = {'true' if full else 'false'}\nsave_plots = {'true' if plots else 'false'}\n"
        f"colormap = \"viridis\"\n{extra}",
        encoding="utf-8",
    )
    return path


def run_tree(loaded, csv: Path, out: Path, config_path: Path, limit: int | None = None, plots: bool = False,
             **kwargs):
    from medgemma_tui.config import load_config
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.export.tree import ResultsTree
    from medgemma_tui.pipeline.evaluation import run_evaluation

    samples = list(load_dataset(csv, fixtures_dir()).samples)[:limit]
    tree = ResultsTree(out)
    with tree.locked():
        counts = run_evaluation(loaded, samples, tree, load_config(config_path), analysis_plots=plots, **kwargs)
    return counts, samples


def finished_run(loaded, folder: Path, rows) -> tuple[Path, Path, Path, list]:
    """An uninterrupted demo eval of the demo CSV's ``rows`` in ``folder``, every row done: (its CSV, its
    config, its tree, its samples), the reference the interrupted, sharded and Ray runs are held to."""
    csv = demo_subset_csv(folder, rows)
    config = eval_config(folder, full=False, tokens=2)
    counts, samples = run_tree(loaded, csv, folder / "out", config)
    assert counts.done == len(rows)
    return csv, config, folder / "out", samples


def run_sample(loaded, sample, max_new_tokens: int = ANSWER_TOKENS, spec=None, terms=None):
    """One row through the pipeline with the given decoding, map and terms (the config's keys)."""
    from medgemma_tui.pipeline.rows import RowSettings, answer_row

    settings = RowSettings(max_new_tokens=max_new_tokens, terms=tuple(terms) if terms else None)
    if spec is not None:
        settings = RowSettings(spec, settings.terms, max_new_tokens)
    return answer_row(loaded, sample, settings)


LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)"


def make_lora_adapter(folder: Path, seed: int = 0, rank: int = 4) -> Path:
    """A PEFT LoRA adapter for the demo model that changes it: random A and B (``init_lora_weights=False``;
    PEFT's default makes B zero, a no-op), on the decoder's attention projections. Skips without peft."""
    pytest.importorskip("peft")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from medgemma_tui.resources import demo_model_dir

    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_pretrained(demo_model_dir(), dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=LORA_TARGETS, init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return folder


async def wait_for(pilot, condition, timeout: float = 60.0) -> None:
    """Let a Textual pilot run until ``condition()`` holds (generous: the suite shares two loaded cores)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)
