"""Timing the variants round by round, and the memory each one takes above the loaded model."""

from __future__ import annotations

import ctypes
import gc
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medgemma_tui.bench.workload import Variant


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
                  progress: Callable[[str], None], warm_up: bool = True) -> Timings:
    """Wall and CPU seconds of each run after one warm-up each; each variant's peak memory in the last
    round, and what was resident (allocated) just before that run. Where CPU seconds fall well below
    wall seconds, the run waited for a core that other work held.

    Rounds interleave the variants, so a burst of load from elsewhere lands on all of them rather than
    on one, and a ratio can also be taken within each round (``paired_ratios``). Before every run the
    garbage of the last one is collected, outside the timer.
    """
    sync = synchronizer(device)
    for variant in variants if warm_up else ():
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
