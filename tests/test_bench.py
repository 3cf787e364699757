"""``medtui bench``: the figures are all there and sane on the demo shape (their values belong to
BENCHMARKS.md, not to tests), and the bench shapes are MedGemma's."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main

NAMED_FIGURES = (
    "capture_over_forward",
    "sample_over_generate",
    "old_sample_over_ours",
    "capture_mem_over_old",
    "nav_redraw_ms_p50",
    "nav_redraw_ms_p95",
    "eval_samples_per_s",
)
VARIANTS = ("plain_forward", "capture_forward", "old_forward", "plain_generate", "our_sample", "old_sample")


@pytest.fixture(scope="module")
def demo_figures() -> dict:
    args = ["bench", "--shape", "demo", "--device", "cpu", "--repeats", "1", "--new-tokens", "3",
            "--nav-keys", "16", "--eval-samples", "1", "--dataset-films", "1", "--dataset-questions", "2",
            "--batch-size", "2", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_bench_json_names_every_figure_of_the_issue(demo_figures):
    for name in NAMED_FIGURES:
        value = demo_figures[name]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (name, value)


def test_bench_times_every_variant_once_per_repeat(demo_figures):
    assert set(demo_figures["seconds"]) == set(VARIANTS)
    for name in VARIANTS:
        runs = demo_figures["seconds"][name]
        assert len(runs) == 1 and all(s > 0 for s in runs)
        assert demo_figures["seconds_median"][name] == runs[0]


def test_bench_ratios_are_medians_over_rounds_and_memory_above_the_load_on_known_values():
    from medgemma_tui.bench.run import BenchResult

    names = ("plain_forward", "capture_forward", "old_forward", "plain_generate", "our_sample", "old_sample")
    seconds = {name: [1.0, 2.0, 3.0] for name in names}
    seconds["our_sample"] = [2.0, 4.0, 9.0]  # median 4, against plain_generate's 2: 2.0; paired [2, 2, 3]: 2.0
    seconds["old_sample"] = [12.0, 12.0, 12.0]  # median 12 over our 4: 3.0
    peaks = {name: 1010 for name in names}
    peaks["our_sample"], peaks["old_sample"] = 1100, 1500  # 100 and 500 above the 1000 loaded
    result = BenchResult(
        shape="demo", device="cpu", dtype="float32", repeats=3, new_tokens=3, prompt_length=10, sequence_length=13,
        what={}, seconds=seconds, cpu_seconds=seconds, memory_method="test", rss_after_load_bytes=1000,
        peak_bytes=peaks, settled_bytes=peaks, nav_ms=[float(v) for v in range(1, 101)], nav_method="test",
        eval=None, load_average={}, machine={})
    figures = result.figures()
    assert figures["sample_over_generate"] == pytest.approx(2.0)
    assert figures["paired_ratios"]["sample_over_generate"] == pytest.approx(2.0)
    assert figures["old_sample_over_ours"] == pytest.approx(3.0)
    assert figures["capture_mem_over_old"] == pytest.approx(100 / 500)
    assert figures["nav_redraw_ms_p50"] == pytest.approx(50.5)
    assert figures["nav_redraw_ms_p95"] == pytest.approx(95.05)


def test_bench_memory_is_a_peak_above_the_loaded_model(demo_figures):
    baseline = demo_figures["baseline_bytes"]
    assert baseline > 0
    for name in VARIANTS:
        peak = demo_figures["peak_bytes"][name]
        assert peak >= baseline // 2
        assert demo_figures["bytes_above_load"][name] == peak - baseline
    assert demo_figures["memory_method"]


def test_bench_runs_every_variant_on_one_sequence(demo_figures):
    assert demo_figures["new_tokens"] == 3
    assert demo_figures["sequence_length"] == demo_figures["prompt_length"] + 3


def test_bench_redraw_figures_are_the_percentiles_of_the_measured_redraws(demo_figures):
    redraws = demo_figures["nav_redraw_ms"]
    assert len(redraws) == 16 and all(ms > 0 for ms in redraws)
    assert demo_figures["nav_redraw_ms_p95"] == pytest.approx(float(np.percentile(redraws, 95)))


def test_bench_runs_a_small_dataset_three_ways_with_one_vision_pass_per_film(demo_figures):
    assert (demo_figures["films"], demo_figures["rows"]) == (1, 2)
    assert demo_figures["vision_reuse_rows_per_film"] == 2.0
    assert demo_figures["eval_over_loop"] == pytest.approx(demo_figures["eval_s_per_row"]
                                                           / demo_figures["loop_s_per_row"])
    assert demo_figures["old_s_per_row"] > 0 and demo_figures["gpu_util"] is None  # no GPU here
    assert len(demo_figures["eval_row_s"]) == 2 and demo_figures["batch_size"] == 2  # the film's rows together


def test_bench_holds_the_capture_to_eager_on_every_layer(demo_figures):
    assert len(demo_figures["layers"]) == 2  # the demo's decoder
    assert demo_figures["max_abs_diff"] < 1e-5 and max(demo_figures["layers"]) == demo_figures["max_abs_diff"]


def test_bench_reports_the_machine_and_its_load(demo_figures):
    machine = demo_figures["machine"]
    assert machine["nproc"] >= 1 and machine["torch"] and machine["transformers"]
    assert len(demo_figures["load_average"]["before"]) == 3


def test_medgemma_shapes_keep_the_model_card_widths():
    from transformers import AutoConfig

    from medgemma_tui.model.shapes import MEDGEMMA_4B_DEPTH, MEDGEMMA_LITE_DEPTH, medgemma_config
    from medgemma_tui.resources import demo_model_dir

    demo = AutoConfig.from_pretrained(demo_model_dir())
    full = medgemma_config(demo, MEDGEMMA_4B_DEPTH["text_layers"], MEDGEMMA_4B_DEPTH["vision_layers"],
                           MEDGEMMA_4B_DEPTH["vocab_size"])
    text, vision = full.get_text_config(), full.vision_config
    assert (text.num_hidden_layers, text.hidden_size, text.intermediate_size) == (34, 2560, 10240)
    assert (text.num_attention_heads, text.num_key_value_heads, text.head_dim) == (8, 4, 256)
    assert (text.query_pre_attn_scalar, text.sliding_window, text.vocab_size) == (256, 1024, 262208)
    assert [i for i, kind in enumerate(text.layer_types) if kind == "full_attention"] == [5, 11, 17, 23, 29]
    assert (vision.num_hidden_layers, vision.hidden_size, vision.intermediate_size) == (27, 1152, 4304)
    assert (vision.num_attention_heads, vision.image_size, vision.patch_size) == (16, 896, 14)
    assert full.mm_tokens_per_image == 256
    assert full.image_token_index == demo.image_token_index

    lite = medgemma_config(demo, MEDGEMMA_LITE_DEPTH["text_layers"], MEDGEMMA_LITE_DEPTH["vision_layers"],
                           demo.get_text_config().vocab_size)
    lite_text = lite.get_text_config()
    assert lite_text.hidden_size == 2560 and lite.vision_config.image_size == 896
    assert lite_text.layer_types == ["sliding_attention", "sliding_attention", "full_attention"]
    assert lite.vision_config.num_hidden_layers == 1
    assert lite_text.vocab_size == demo.get_text_config().vocab_size


def test_the_4b_text_shape_is_the_whole_decoder_behind_one_vision_layer():
    from transformers import AutoConfig

    from medgemma_tui.model.shapes import MEDGEMMA_4B_TEXT_DEPTH, medgemma_config
    from medgemma_tui.resources import demo_model_dir

    demo = AutoConfig.from_pretrained(demo_model_dir())
    config = medgemma_config(demo, **MEDGEMMA_4B_TEXT_DEPTH)
    text, vision = config.get_text_config(), config.vision_config
    assert (text.num_hidden_layers, text.vocab_size, text.sliding_window) == (34, 262208, 1024)
    assert [i for i, kind in enumerate(text.layer_types) if kind == "full_attention"] == [5, 11, 17, 23, 29]
    assert text.rope_parameters["full_attention"]["factor"] == 8.0
    assert (vision.num_hidden_layers, vision.image_size, config.mm_tokens_per_image) == (1, 896, 256)


def test_random_fill_gives_trained_scales_and_keeps_the_rotary_buffers(demo_model):
    import copy

    import torch
    from transformers import Gemma3ForConditionalGeneration
    from transformers.initialization import no_init_weights

    from medgemma_tui.model.shapes import fill_random

    config = copy.deepcopy(demo_model.model.config)
    with no_init_weights():
        model = Gemma3ForConditionalGeneration._from_config(config)
    fill_random(model, seed=0)
    named = dict(model.named_parameters())
    linear = next(p for n, p in named.items() if n.endswith("q_proj.weight") and "language_model" in n)
    assert float(linear.detach().std()) == pytest.approx(0.02, rel=0.1)
    assert all(float(p.detach().abs().max()) == 0 for n, p in named.items() if "norm" in n and "language_model" in n)
    reference = Gemma3ForConditionalGeneration._from_config(config)
    for name, buffer in model.named_buffers():
        torch.testing.assert_close(buffer, dict(reference.named_buffers())[name])


def test_bench_command_never_imports_textual():
    code = "import sys, cli.bench, medgemma_tui.bench.run; assert 'textual' not in sys.modules, 'textual imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
