"""``medtui bench``: what a whole attention record costs, beside the floor and the old pipeline.

Every variant runs on one sequence: the same image and question, and the same number of answer
tokens (the generation config's ``min_new_tokens`` is pinned to ``max_new_tokens`` for the run, so a
random-weight model that would stop early cannot make one variant cheaper than another):

- floors: one forward over prompt + answer on SDPA everywhere; a plain greedy generate on SDPA;
- ours: a capture forward over the same sequence (``capture_over_forward``), and the whole sample,
  ``extract_record`` (prompt, generate with rows captured in flight, record assembly);
- the old way: one forward with eager attention everywhere (the SigLIP tower too) and
  ``output_attentions=True``; the old whole sample: generate with ``output_attentions=True`` on eager,
  then an eager ``output_attentions`` re-run of the full sequence;
- memory above the loaded model for each, the app's redraw after a navigation key, and the demo eval.

Shapes, all with random weights so nothing is downloaded: ``demo`` (the fixture bundle),
``medgemma-lite`` (MedGemma-4b's widths, heads, window and image size on a few text layers, one
vision layer and the demo tokenizer's vocabulary) and ``medgemma-4b`` (the full config, for a GPU host).
Only this module and the demo bundle's builder name sizes.

Nothing here imports textual: the app's redraw measure is imported inside ``measure_nav``.
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SHAPES = ("demo", "medgemma-lite", "medgemma-4b")
BENCH_QUESTION = "Is there a pleural effusion on this chest radiograph?"
BENCH_NEW_TOKENS = 8
BENCH_IMAGE_SIDE = 512
BENCH_SEED = 0

# MedGemma-4b-it (DESIGN.md, the model's facts). The lite shape keeps every width and cuts the depth.
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
# 2 sliding + 1 global text layers and one SigLIP layer: about a minute for the whole bench on 2 cores
MEDGEMMA_LITE_DEPTH = {"text_layers": 3, "vision_layers": 1, "vocab_size": None}  # None: the tokenizer's


# issue 3: where the figures must be on medgemma-lite, fp32, CPU
TARGETS = {
    "sample_over_generate": ("<=", 1.10),
    "old_sample_over_ours": (">=", 3.0),
    "capture_mem_over_old": ("<=", 0.2),
    "nav_redraw_ms_p95": ("<", 16.0),
}


def target_verdicts(figures: dict[str, Any]) -> dict[str, str]:
    """'met' / 'MISSED' beside each target, where the run is the one the targets are set for."""
    applies = (figures["shape"], figures["device"], figures["dtype"]) == ("medgemma-lite", "cpu", "float32")
    out = {}
    for name, (op, limit) in TARGETS.items():
        value = figures.get(name)
        if not applies or value is None:
            out[name] = f"(target {op} {limit} on medgemma-lite fp32 CPU)"
            continue
        met = {"<=": value <= limit, ">=": value >= limit, "<": value < limit}[op]
        out[name] = f"target {op} {limit}: {'met' if met else 'MISSED'}"
    return out


def medgemma_layer_types(text_layers: int) -> list[str]:
    """5 sliding : 1 global, as MedGemma; a cut-down stack still ends on a global layer."""
    period = MEDGEMMA_SLIDING_PER_GLOBAL + 1
    types = ["full_attention" if (i + 1) % period == 0 else "sliding_attention" for i in range(text_layers)]
    if "full_attention" not in types:
        types[-1] = "full_attention"
    return types


def medgemma_config(demo_config, text_layers: int, vision_layers: int, vocab_size: int):
    """MedGemma-4b's widths at the given depth, with the demo bundle's special tokens."""
    from transformers import Gemma3Config, Gemma3TextConfig, SiglipVisionConfig

    demo_text = demo_config.get_text_config()
    text = Gemma3TextConfig(
        vocab_size=vocab_size,
        num_hidden_layers=text_layers,
        layer_types=medgemma_layer_types(text_layers),
        pad_token_id=demo_text.pad_token_id,
        bos_token_id=demo_text.bos_token_id,
        eos_token_id=demo_text.eos_token_id,
        **MEDGEMMA_TEXT,
    )
    vision = SiglipVisionConfig(num_hidden_layers=vision_layers, **MEDGEMMA_VISION)
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


def medgemma_processor(demo_processor):
    """The demo processor's tokenizer and chat template with MedGemma's 896 px image processor."""
    from transformers import Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    side = MEDGEMMA_VISION["image_size"]
    image_processor = Gemma3ImageProcessorPil(
        size={"height": side, "width": side},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_pan_and_scan=False,
    )
    return Gemma3Processor(
        image_processor=image_processor,
        tokenizer=demo_processor.tokenizer,
        chat_template=demo_processor.chat_template,
        image_seq_length=MEDGEMMA_TOKENS_PER_IMAGE,
    )


def load_shape(shape: str, device: str = "auto", dtype: str = "auto"):
    """A ``LoadedModel`` for ``shape``, set up exactly as ``load_model`` sets up a real one."""
    from medgemma_tui.model.loading import load_model

    if shape == "demo":
        return load_model("demo", device=device, dtype=dtype)
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: expected one of {', '.join(SHAPES)}")
    import torch
    from transformers import AutoConfig, AutoProcessor, Gemma3ForConditionalGeneration, GenerationConfig

    from medgemma_tui.engine.capture import CAPTURE_ATTENTION, register_capture_attention
    from medgemma_tui.model.loading import LoadedModel, model_info, resolve_device, resolve_dtype
    from medgemma_tui.resources import demo_model_dir

    register_capture_attention()
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    processor = medgemma_processor(AutoProcessor.from_pretrained(demo_model_dir()))
    demo_config = AutoConfig.from_pretrained(demo_model_dir())
    depth = MEDGEMMA_4B_DEPTH if shape == "medgemma-4b" else MEDGEMMA_LITE_DEPTH
    vocab_size = depth["vocab_size"] or demo_config.get_text_config().vocab_size
    config = medgemma_config(demo_config, depth["text_layers"], depth["vision_layers"], vocab_size)
    torch.manual_seed(BENCH_SEED)
    with torch.device(device):  # initialise where it will run: the full model's random init is slow on a CPU
        model = Gemma3ForConditionalGeneration._from_config(config, dtype=torch_dtype, attn_implementation="sdpa")
    model.generation_config = GenerationConfig(
        do_sample=False,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    model.set_attn_implementation({"text_config": CAPTURE_ATTENTION, "vision_config": "sdpa"})
    model.eval()
    source = f"bench:{shape}"
    return LoadedModel(model=model, processor=processor, info=model_info(model, source), source=source)


def bench_image(side: int = BENCH_IMAGE_SIDE):
    """A deterministic film-like picture: dark lung fields in a brighter body, on black."""
    from PIL import Image

    y, x = np.mgrid[0:side, 0:side] / side
    body = ((x - 0.5) / 0.45) ** 2 + ((y - 0.55) / 0.5) ** 2 < 1
    lungs = (((np.abs(x - 0.5) - 0.2) / 0.13) ** 2 + ((y - 0.5) / 0.3) ** 2) < 1
    film = 0.15 + 0.55 * body - 0.35 * lungs + 0.05 * np.sin(40 * y)  # ribs, faintly
    gray = np.clip(film * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


# --- the variants ---------------------------------------------------------------------------------


@contextmanager
def attention_paths(model, text: str, vision: str):
    """Run the text decoder and the SigLIP tower on the named attention functions, then restore."""
    config = model.config
    before = {"text_config": config.get_text_config()._attn_implementation,
              "vision_config": config.vision_config._attn_implementation}
    model.set_attn_implementation({"text_config": text, "vision_config": vision})
    try:
        yield
    finally:
        model.set_attn_implementation(before)


@contextmanager
def answer_length(model, new_tokens: int):
    """Every generate of the run makes exactly ``new_tokens`` tokens: same sequence for every variant."""
    generation = model.generation_config
    before = generation.min_new_tokens
    generation.min_new_tokens = new_tokens
    try:
        yield
    finally:
        generation.min_new_tokens = before


@dataclass
class Variant:
    name: str
    what: str
    run: Callable[[], Any]
    # entered before the timer starts and left after it stops: switching attention functions walks
    # every module, which is not the variant's work
    setup: Callable[[], Any] = nullcontext


class Workload:
    """One image, one question, one answer length: the same sequence for every variant."""

    def __init__(self, loaded, image, question: str, new_tokens: int):
        from medgemma_tui.engine.extract import extract_record, forbidden_tokens

        self.loaded, self.image, self.question, self.new_tokens = loaded, image, question, new_tokens
        self.suppress = forbidden_tokens(loaded.config)
        record = extract_record(loaded, image, question, max_new_tokens=new_tokens)
        self.record = record
        self.answers: dict[str, list[int]] = {}  # the answer each generating variant made last
        # prompt + every answer token: the sequence the forwards and the old re-run read
        self.sequence = self._with_answer(self._prompt_inputs(), torch_tensor(record.answer_ids, loaded.device))

    @property
    def model(self):
        return self.loaded.model

    def _prompt(self):
        from medgemma_tui.engine.prompt import build_prompt

        return build_prompt(self.loaded.processor, self.loaded.config, self.image, self.question)

    def _prompt_inputs(self) -> dict:
        from medgemma_tui.engine.extract import model_inputs

        return model_inputs(self.loaded, self._prompt())

    @staticmethod
    def _with_answer(inputs: dict, answer) -> dict:
        import torch

        answer = answer.reshape(1, -1)  # [1, A]
        out = dict(inputs)
        out["input_ids"] = torch.cat([inputs["input_ids"], answer], dim=1)
        out["attention_mask"] = torch.ones_like(out["input_ids"])
        out["token_type_ids"] = torch.cat([inputs["token_type_ids"], torch.zeros_like(answer)], dim=1)
        return out

    def _session(self):
        from medgemma_tui.engine.capture import CaptureSession

        record = self.record
        return CaptureSession(
            num_layers=record.model.num_layers,
            keep_positions=set(record.question_positions.tolist()),
            keep_from=record.prompt_length - 1,
        )

    def on_sdpa(self):
        return attention_paths(self.model, "sdpa", "sdpa")

    def on_eager(self):
        return attention_paths(self.model, "eager", "eager")

    # the floors (run under on_sdpa)
    def plain_forward(self):
        return self.model(**self.sequence, use_cache=False)

    def plain_generate(self):
        inputs = self._prompt_inputs()
        sequences = self.model.generate(**inputs, max_new_tokens=self.new_tokens, do_sample=False,
                                        suppress_tokens=self.suppress)
        self.answers["plain_generate"] = sequences[0, inputs["input_ids"].shape[1]:].tolist()
        return sequences

    # ours
    def capture_forward(self):
        from medgemma_tui.engine.capture import capturing

        with capturing(self._session()) as session:
            self.model(**self.sequence, use_cache=False)
        return session

    def our_sample(self):
        from medgemma_tui.engine.extract import extract_record

        record = extract_record(self.loaded, self.image, self.question, max_new_tokens=self.new_tokens)
        self.answers["our_sample"] = record.answer_ids.tolist()
        return record

    # the old way (run under on_eager): eager everywhere, output_attentions
    def old_forward(self):
        return self.model(**self.sequence, output_attentions=True, use_cache=False)

    def old_sample(self):
        inputs = self._prompt_inputs()
        generated = self.model.generate(**inputs, max_new_tokens=self.new_tokens, do_sample=False,
                                        suppress_tokens=self.suppress, output_attentions=True,
                                        return_dict_in_generate=True)
        answer = generated.sequences[:, inputs["input_ids"].shape[1]:]
        rerun = self.model(**self._with_answer(inputs, answer), output_attentions=True, use_cache=False)
        self.answers["old_sample"] = answer[0].tolist()
        return generated, rerun

    def answer_notes(self) -> list[str]:
        """Where a variant answered differently from the record (eager and SDPA round differently)."""
        expected = self.record.answer_ids.tolist()
        return [f"{name} generated {answer}, the record {expected} (same length, so the same work)"
                for name, answer in self.answers.items() if answer != expected]

    def variants(self) -> list[Variant]:
        return [
            Variant("plain_forward", "one forward over prompt + answer, SDPA everywhere", self.plain_forward,
                    self.on_sdpa),
            Variant("capture_forward", "the same forward capturing every question and answer row",
                    self.capture_forward),
            Variant("old_forward", "the same forward, eager everywhere, output_attentions=True", self.old_forward,
                    self.on_eager),
            Variant("plain_generate", "prompt + greedy generate, SDPA everywhere", self.plain_generate, self.on_sdpa),
            Variant("our_sample", "extract_record: prompt, generate with in-flight capture, record", self.our_sample),
            Variant("old_sample", "prompt + eager generate(output_attentions) + eager re-run of the sequence",
                    self.old_sample, self.on_eager),
        ]


def torch_tensor(values, device):
    import torch

    return torch.as_tensor(np.asarray(values), device=device)


# --- timing and memory ----------------------------------------------------------------------------


def synchronizer(device) -> Callable[[], None]:
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


@dataclass
class Timings:
    seconds: dict[str, list[float]]  # wall clock, per run
    cpu_seconds: dict[str, list[float]]  # this process's CPU time (all threads), per run
    peak_bytes: dict[str, int]  # during the last round's run
    settled_bytes: dict[str, int]  # just before it
    round_load: list[float]  # the machine's 1-minute load average as each round began


def time_variants(variants: list[Variant], repeats: int, device, memory: MemoryProbe,
                  progress: Callable[[str], None]) -> Timings:
    """Wall and CPU seconds of each run after one warm-up each; each variant's peak memory in the last
    round, and what was resident (allocated) just before that run. Where CPU seconds fall well below
    wall seconds, the run waited for a core that other work held.

    Rounds interleave the variants, so a burst of load from elsewhere lands on all of them rather than
    on one, and a ratio can also be taken within each round (``paired_ratios``). Before every run the
    garbage of the last one is collected, outside the timer.
    """
    sync = synchronizer(device)
    for variant in variants:
        progress(f"warm-up {variant.name}")
        with variant.setup():
            variant.run()
    seconds: dict[str, list[float]] = {v.name: [] for v in variants}
    cpu_seconds: dict[str, list[float]] = {v.name: [] for v in variants}
    peaks: dict[str, int] = {}
    settled: dict[str, int] = {}
    round_load: list[float] = []
    for round_ in range(repeats):
        last = round_ == repeats - 1
        round_load.append(os.getloadavg()[0])
        # odd rounds run backwards, so no variant always runs right after the same neighbour
        for variant in variants if round_ % 2 == 0 else variants[::-1]:
            progress(f"round {round_ + 1}/{repeats}: {variant.name}")
            _return_free_heap()
            with variant.setup():
                sync()
                if last:
                    settled[variant.name] = memory.current()
                    memory.start()
                start, cpu_start = time.perf_counter(), time.process_time()
                variant.run()
                sync()
                seconds[variant.name].append(time.perf_counter() - start)
                cpu_seconds[variant.name].append(time.process_time() - cpu_start)
                if last:
                    peaks[variant.name] = memory.stop()
    return Timings(seconds, cpu_seconds, peaks, settled, round_load)


def _status_kib(field_name: str) -> int:
    match = re.search(rf"^{field_name}:\s+(\d+) kB", open("/proc/self/status").read(), re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def _return_free_heap() -> None:
    """Give freed heap back to the system, so the resident size before a run is what is live."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class MemoryProbe:
    """Peak memory of a run: ``start()`` before it, ``stop()`` after it gives the peak in bytes.

    CPU: the kernel's resident high-water mark (VmHWM), reset at ``start`` by writing 5 to
    /proc/self/clear_refs, so the peak is exact and nothing samples while the run runs; where that
    reset is refused, a thread samples VmRSS every millisecond instead. CUDA: max allocated bytes.
    """

    def __init__(self, device):
        self.cuda = str(device).startswith("cuda")
        self.method = "cuda max_memory_allocated" if self.cuda else "VmHWM after a clear_refs reset"
        if not self.cuda and not self._reset_hwm():
            self.method = "VmRSS sampled every 1 ms"
        self._sampler: tuple[threading.Thread, threading.Event, list[int]] | None = None

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def current(self) -> int:
        """What is live now: allocated on CUDA, resident on the CPU (after returning freed heap)."""
        _return_free_heap()
        if self.cuda:
            import torch

            return torch.cuda.memory_allocated()
        return _status_kib("VmRSS")

    def start(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        elif self.method.startswith("VmHWM"):
            self._reset_hwm()
        else:
            done, peak = threading.Event(), [_status_kib("VmRSS")]

            def sample():
                while not done.wait(0.001):
                    peak[0] = max(peak[0], _status_kib("VmRSS"))

            thread = threading.Thread(target=sample, daemon=True)
            thread.start()
            self._sampler = (thread, done, peak)

    def stop(self) -> int:
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated()
        if self._sampler is None:
            return _status_kib("VmHWM")
        thread, done, peak = self._sampler
        done.set()
        thread.join()
        self._sampler = None
        return max(peak[0], _status_kib("VmRSS"))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


# --- the app and the demo eval --------------------------------------------------------------------


def measure_nav(record, keys: int) -> tuple[list[float] | None, str]:
    """Milliseconds per redraw after a layer, head or token key, headless (the app's own measure)."""
    try:
        from medgemma_tui.app.bench import measure_nav_redraw
    except ImportError as exc:
        return None, f"not measured: the app's measure_nav_redraw is not importable ({exc})"
    measure_nav_redraw(record, max(4, keys // 10))  # warm-up: first-use imports and caches
    return measure_nav_redraw(record, keys), "medgemma_tui.app.bench.measure_nav_redraw"


@dataclass
class EvalFigures:
    samples: int
    failed: int
    wall_s: float
    sample_s: list[float]
    method: str

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.wall_s if self.wall_s > 0 else float("nan")


def measure_demo_eval(device: str, dtype: str, limit: int) -> EvalFigures:
    """The demo eval (demo bundle, the first ``limit`` rows of the demo CSV) into a temporary tree."""
    import tempfile

    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.model.loading import load_model
    from medgemma_tui.resources import demo_dataset_csv

    loaded = load_model("demo", device=device, dtype=dtype)
    samples = list(load_dataset(demo_dataset_csv()).samples[:limit])
    try:
        from medgemma_tui.config import load_config
        from medgemma_tui.evaluation import EvalProgress, run_evaluation
        from medgemma_tui.export.tree import ResultsTree
    except ImportError:
        return _demo_samples_by_runner(loaded, samples)
    sample_s: list[float] = []

    def progress(event: EvalProgress) -> None:
        if event.event == "sample" and event.sample_s is not None:
            sample_s.append(event.sample_s)

    with tempfile.TemporaryDirectory(prefix="medtui-bench-") as out:
        tree = ResultsTree(out)
        with tree.locked():
            start = time.perf_counter()
            counts = run_evaluation(loaded, samples, tree, load_config(None), resume=False, progress=progress)
            wall = time.perf_counter() - start
    return EvalFigures(counts.done, counts.failed, wall, sample_s,
                       "evaluation.run_evaluation into a temporary results tree, summary and plots included")


def _demo_samples_by_runner(loaded, samples) -> EvalFigures:
    from medgemma_tui.runner import run_sample

    sample_s = []
    for sample in samples:
        start = time.perf_counter()
        run_sample(loaded, sample)
        sample_s.append(time.perf_counter() - start)
    return EvalFigures(len(samples), 0, sum(sample_s), sample_s,
                       "runner.run_sample over the demo CSV (no evaluation module): nothing written")


# --- one run --------------------------------------------------------------------------------------


@dataclass
class BenchResult:
    shape: str
    device: str
    dtype: str
    repeats: int
    new_tokens: int
    prompt_length: int
    sequence_length: int
    what: dict[str, str]
    seconds: dict[str, list[float]]
    cpu_seconds: dict[str, list[float]]
    memory_method: str
    rss_after_load_bytes: int
    peak_bytes: dict[str, int]  # peak during the run (resident on CPU, allocated on CUDA)
    settled_bytes: dict[str, int]  # resident (allocated) just before that run, after a warm-up
    nav_ms: list[float] | None
    nav_method: str
    eval: EvalFigures | None
    load_average: dict[str, list[float]]
    machine: dict[str, Any]
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def median_s(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def paired(self, num: str, den: str) -> list[float]:
        return [a / b for a, b in zip(self.seconds[num], self.seconds[den], strict=True)]

    def above_load(self, name: str) -> int:
        return self.peak_bytes[name] - self.rss_after_load_bytes

    def figures(self) -> dict[str, Any]:
        """The named figures of issue 3, then the raw seconds and bytes they come from."""
        m = self.median_s
        nav = self.nav_ms
        return {
            "shape": self.shape,
            "device": self.device,
            "dtype": self.dtype,
            **{name: m(num) / m(den) for name, (num, den) in TIME_RATIOS.items()},
            "capture_mem_over_old": self.above_load("our_sample") / self.above_load("old_sample"),
            "capture_forward_mem_over_old": self.above_load("capture_forward") / self.above_load("old_forward"),
            "nav_redraw_ms_p50": percentile(nav, 50) if nav else None,
            "nav_redraw_ms_p95": percentile(nav, 95) if nav else None,
            "eval_samples_per_s": self.eval.samples_per_s if self.eval else None,
            "seconds_median": {name: m(name) for name in self.seconds},
            # the same ratios within each round, and from CPU seconds: checks on a noisy machine
            "paired_ratios": {name: statistics.median(self.paired(*pair)) for name, pair in TIME_RATIOS.items()},
            "paired_ratio_rounds": {name: self.paired(*pair) for name, pair in TIME_RATIOS.items()},
            "cpu_ratios": {name: statistics.median(self.cpu_seconds[num]) / statistics.median(self.cpu_seconds[den])
                           for name, (num, den) in TIME_RATIOS.items()},
            "seconds": self.seconds,
            "cpu_seconds_median": {name: statistics.median(v) for name, v in self.cpu_seconds.items()},
            "cpu_seconds": self.cpu_seconds,
            "bytes_above_load": {name: self.above_load(name) for name in self.peak_bytes},
            "bytes_above_settled": {name: self.peak_bytes[name] - self.settled_bytes[name]
                                    for name in self.peak_bytes},
            "peak_bytes": self.peak_bytes,
            "baseline_bytes": self.rss_after_load_bytes,
            "memory_method": self.memory_method,
            "repeats": self.repeats,
            "new_tokens": self.new_tokens,
            "prompt_length": self.prompt_length,
            "sequence_length": self.sequence_length,
            "variants": self.what,
            "nav_redraw_ms": self.nav_ms,
            "nav_method": self.nav_method,
            "eval": None if self.eval is None else {
                "samples": self.eval.samples, "failed": self.eval.failed, "wall_s": self.eval.wall_s,
                "sample_s_median": statistics.median(self.eval.sample_s) if self.eval.sample_s else None,
                "method": self.eval.method,
            },
            "load_average": self.load_average,
            "machine": self.machine,
            "wall_s": self.wall_s,
            "notes": self.notes,
        }


# named ratio -> (numerator, denominator) variants
TIME_RATIOS = {
    "capture_over_forward": ("capture_forward", "plain_forward"),
    "sample_over_generate": ("our_sample", "plain_generate"),
    "old_sample_over_ours": ("old_sample", "our_sample"),
    "old_forward_over_forward": ("old_forward", "plain_forward"),
}


def machine_info(device: str) -> dict[str, Any]:
    import platform

    import torch
    import transformers

    cpu = "unknown"
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", open("/proc/cpuinfo").read(), re.MULTILINE)
        cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if str(device).startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def run_bench(
    shape: str = "medgemma-lite",
    device: str = "auto",
    dtype: str = "auto",
    repeats: int = 3,
    new_tokens: int = BENCH_NEW_TOKENS,
    nav_keys: int = 200,
    eval_samples: int = 8,
    threads: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> BenchResult:
    """Every variant on one sequence, then the app's redraw and the demo eval."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    load_before = list(os.getloadavg())
    progress(f"loading {shape}")
    loaded = load_shape(shape, device, dtype)
    memory = MemoryProbe(loaded.device)
    baseline = memory.current()
    with torch.no_grad(), answer_length(loaded.model, new_tokens):
        workload = Workload(loaded, bench_image(), BENCH_QUESTION, new_tokens)
        variants = workload.variants()
        timings = time_variants(variants, repeats, loaded.device, memory, progress)
    record = workload.record
    what = {v.name: v.what for v in variants}
    notes = workload.answer_notes()
    progress("app redraw")
    nav_ms, nav_method = measure_nav(record, nav_keys) if nav_keys else (None, "not measured (--nav-keys 0)")
    del workload, variants, loaded
    _return_free_heap()
    progress("demo eval")
    evaluation = measure_demo_eval(device, dtype, eval_samples) if eval_samples else None
    result = BenchResult(
        shape=shape,
        device=str(record.model.device),
        dtype=record.model.dtype,
        repeats=repeats,
        new_tokens=new_tokens,
        prompt_length=record.prompt_length,
        sequence_length=record.prompt_length + len(record.answer_ids),
        what=what,
        seconds=timings.seconds,
        cpu_seconds=timings.cpu_seconds,
        memory_method=memory.method,
        rss_after_load_bytes=baseline,
        peak_bytes=timings.peak_bytes,
        settled_bytes=timings.settled_bytes,
        nav_ms=nav_ms,
        nav_method=nav_method,
        eval=evaluation,
        load_average={"before": load_before, "rounds": timings.round_load, "after": list(os.getloadavg())},
        machine=machine_info(record.model.device),
        notes=notes,
    )
    result.wall_s = time.perf_counter() - started
    return result
