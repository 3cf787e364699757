"""``medtui bench``: what a whole attention record costs, beside the floor and the old pipeline.

Every variant of ``bench.workload`` on one sequence, memory above the loaded model for each, the app's
redraw after a navigation key (measured by a function the caller passes in, so nothing here imports
the app), and the demo eval. Shapes come from ``model.shapes``, all with random weights.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medgemma_tui.bench.dataset_run import BENCH_QUESTIONS, DatasetFigures, measure_dataset
from medgemma_tui.bench.demo_eval import EvalFigures, measure_demo_eval
from medgemma_tui.bench.timing import MemoryProbe, _return_free_heap, percentile, time_variants
from medgemma_tui.bench.workload import BENCH_NEW_TOKENS, BENCH_QUESTION, Workload, answer_length, bench_image
from medgemma_tui.engine.loading import prepare_for_capture
from medgemma_tui.engine.reference import verify_layers
from medgemma_tui.model.shapes import load_shape

# A measure of the app's redraw: (record, keys) -> milliseconds per redraw
NavMeasure = Callable[[Any, int], list[float]]

# where the figures must be on medgemma-lite, fp32, CPU (README, "medtui bench")
TARGETS = {
    "sample_over_generate": ("<=", 1.10),
    "old_sample_over_ours": (">=", 3.0),
    "capture_mem_over_old": ("<=", 0.2),
    "nav_redraw_ms_p95": ("<", 16.0),
    "eval_over_loop": ("<=", 0.8),  # with at least 6 rows per film
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


def measure_nav(record, keys: int, measure: NavMeasure | None) -> tuple[list[float] | None, str]:
    """Milliseconds per redraw after a layer, head or token key, headless (the app's own measure)."""
    if measure is None:
        return None, "not measured: no redraw measure given"
    measure(record, max(4, keys // 10))  # warm-up: first-use imports and caches
    return measure(record, keys), f"{measure.__module__}.{measure.__name__}"


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
    verify: dict[str, Any] | None = None  # the capture against eager: max_abs_diff and per-layer diffs
    dataset: DatasetFigures | None = None  # a small dataset three ways: bare loop, old way, our eval

    def median_s(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def paired(self, num: str, den: str) -> list[float]:
        return [a / b for a, b in zip(self.seconds[num], self.seconds[den], strict=True)]

    def above_load(self, name: str) -> int:
        return self.peak_bytes[name] - self.rss_after_load_bytes

    def ratios_run(self) -> list[tuple[str, tuple[str, str]]]:
        """The time ratios whose two variants both ran (a shape may run fewer variants)."""
        return [(name, pair) for name, pair in TIME_RATIOS.items() if all(v in self.seconds for v in pair)]

    def ratio(self, num: str, den: str) -> float | None:
        return self.median_s(num) / self.median_s(den) if num in self.seconds and den in self.seconds else None

    def memory_ratio(self, num: str, den: str) -> float | None:
        if num not in self.peak_bytes or den not in self.peak_bytes:
            return None
        return self.above_load(num) / self.above_load(den)

    def figures(self) -> dict[str, Any]:
        """The named figures, then the raw seconds and bytes they come from."""
        m = self.median_s
        nav = self.nav_ms
        return {
            "shape": self.shape,
            "device": self.device,
            "dtype": self.dtype,
            **{name: self.ratio(num, den) for name, (num, den) in TIME_RATIOS.items()},
            "capture_mem_over_old": self.memory_ratio("our_sample", "old_sample"),
            "capture_forward_mem_over_old": self.memory_ratio("capture_forward", "old_forward"),
            **(self.dataset.to_json() if self.dataset is not None else {}),
            "max_abs_diff": None if self.verify is None else self.verify["max_abs_diff"],
            "layers": None if self.verify is None else self.verify["layers"],
            "nav_redraw_ms_p50": percentile(nav, 50) if nav else None,
            "nav_redraw_ms_p95": percentile(nav, 95) if nav else None,
            "eval_samples_per_s": self.eval.samples_per_s if self.eval else None,
            "seconds_median": {name: m(name) for name in self.seconds},
            # the same ratios within each round, and from CPU seconds: checks on a noisy machine
            "paired_ratios": {name: statistics.median(self.paired(*pair)) for name, pair in self.ratios_run()},
            "paired_ratio_rounds": {name: self.paired(*pair) for name, pair in self.ratios_run()},
            "cpu_ratios": {name: statistics.median(self.cpu_seconds[num]) / statistics.median(self.cpu_seconds[den])
                           for name, (num, den) in self.ratios_run()},
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


# shapes that run only some variants: the whole decoder on a CPU makes every eager variant minutes long
SHAPE_VARIANTS = {"medgemma-4b-text": ("plain_generate", "our_sample")}

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
    dataset_films: int = 2,
    dataset_questions: int = 6,
    dataset_batch_size: int | str = 1,
    progress: Callable[[str], None] = lambda message: None,
    nav_measure: NavMeasure | None = None,
    adapter: str | None = None,
) -> BenchResult:
    """Every variant on one sequence, then the app's redraw and the demo eval."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    load_before = list(os.getloadavg())
    progress(f"loading {shape}")
    loaded = prepare_for_capture(load_shape(shape, device, dtype, adapter=adapter))
    memory = MemoryProbe(loaded.device)
    baseline = memory.current()
    with torch.no_grad(), answer_length(loaded.model, new_tokens):
        workload = Workload(loaded, bench_image(), BENCH_QUESTION, new_tokens)
        variants = workload.variants()
        chosen = SHAPE_VARIANTS.get(shape)
        if chosen is not None:
            variants = [v for v in variants if v.name in chosen]
        timings = time_variants(variants, repeats, loaded.device, memory, progress, warm_up=chosen is None)
        progress("capture against eager")
        verify = verify_layers(loaded, workload.image, workload.record)
        dataset = (measure_dataset(loaded, dataset_films, BENCH_QUESTIONS[:dataset_questions], new_tokens, progress,
                                   dataset_batch_size) if dataset_films and dataset_questions else None)
    record = workload.record
    what = {v.name: v.what for v in variants}
    notes = workload.answer_notes()
    if chosen is not None:
        notes.append(f"shape {shape}: only {', '.join(chosen)} timed, without a warm-up round (every eager "
                     "variant over the whole decoder takes minutes on a CPU); the capture is still checked "
                     "against eager on every layer")
    progress("app redraw")
    nav_ms, nav_method = (measure_nav(record, nav_keys, nav_measure) if nav_keys
                          else (None, "not measured (--nav-keys 0)"))
    del workload, variants, loaded
    _return_free_heap()
    progress("demo eval")
    demo_adapter = adapter if shape == "demo" else None  # an adapter made for a random shape does not fit the demo
    evaluation = measure_demo_eval(device, dtype, eval_samples, adapter=demo_adapter) if eval_samples else None
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
        verify=verify,
        dataset=dataset,
    )
    result.wall_s = time.perf_counter() - started
    return result
