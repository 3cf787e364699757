#!/usr/bin/env python3
"""The GPU check, in one call of at most 10 minutes on a lent GPU machine (BENCHMARKS.md, "The GPU row").

    python scripts/gpu_check.py --out "$OUT"            # on the GPU machine, from the repository root

What it measures, each step a ``medtui`` command in its own process under its own time limit, so a step that
fails or hangs costs only itself:

1. ``medtui bench --shape medgemma-4b --dtype bf16`` at ``--batch-size 1`` and ``auto``: capture against
   eager, sample over generate, memory above the loaded model, the bench dataset's eval;
2. ``medtui bench --scale`` over the demo rows: an eval's rows per second (demo bundle), and the app's
   run-all against it;
3. the same eval over a random MedGemma-4b-shaped bundle (``--scale-shape medgemma-4b``, 896 px films):
   rows per second, the figure the goal of 20 rows a second for the whole eval on one H100 is about.

Everything lands under ``OUT/gpu-check/``: each step's JSON and log, ``summary.json`` (every step: ok,
seconds, figures) and ``summary.md``, the rows for BENCHMARKS.md.

The machine's image has torch and an older transformers, but not this package's other dependencies: put
wheels in ``wheels/`` (``scripts/gpu_wheels.sh`` fills it here) and they are installed, without their
dependencies and without an index, into ``OUT/gpu-check/site`` first. The CPU path (``--device cpu
--shape demo --quick``) is what the test suite runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu-check-out"), help="folder for the results")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--shape", default="medgemma-4b", help="the bench's shape and the shaped eval's")
    parser.add_argument("--demo-rows", type=int, default=400, help="demo rows in the demo eval")
    parser.add_argument("--shape-rows", type=int, default=120, help="demo rows answered by the shaped bundle")
    parser.add_argument("--budget-s", type=float, default=540.0, help="the whole check's limit")
    parser.add_argument("--wheels", default=str(ROOT / "wheels"), help="wheels to install first, when present")
    parser.add_argument("--quick", action="store_true", help="few repeats and rows (the CPU path of the tests)")
    parser.add_argument("--steps", default=None, help="comma-separated step names to run (default: all)")
    return parser.parse_args(argv)


def install_wheels(wheels: Path, site: Path, log: Path) -> str:
    """The carried wheels into ``site`` (no index, no dependencies); returns what happened in one line."""
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if not found:
        return "no wheels carried"
    site.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                             "--target", str(site), *map(str, found)], capture_output=True, text=True)
    log.write_text(result.stdout + result.stderr, encoding="utf-8")
    return f"{len(found)} wheels installed" if result.returncode == 0 else f"pip failed ({result.returncode})"


def steps(args: argparse.Namespace) -> list[tuple[str, list[str], float]]:
    """(name, medtui arguments, share of the budget) of every step, in the order run."""
    common = ["--device", args.device, "--dtype", args.dtype]
    quick = ["--repeats", "1", "--new-tokens", "2", "--nav-keys", "0", "--eval-samples", "0",
             "--dataset-films", "0"] if args.quick else ["--nav-keys", "0", "--eval-samples", "0"]
    bench = ["bench", "--shape", args.shape, *common, *quick, "--json"]
    scale = ["bench", "--scale", *common, "--scale-writer-rows", "0", "--batch-size", "auto", "--json"]
    return [
        ("bench-batch-1", [*bench, "--batch-size", "1"], 0.25),
        ("bench-batch-auto", [*bench, "--batch-size", "auto"], 0.25),
        ("eval-demo", [*scale, "--scale-eval-rows", str(args.demo_rows), "--scale-app-rows",
                       str(max(2, args.demo_rows // 8))], 0.2),
        ("eval-shape", [*scale, "--scale-shape", args.shape, "--scale-eval-rows", str(args.shape_rows),
                        "--scale-app-rows", "0"], 0.3),
    ]


def run_step(name: str, medtui: list[str], limit_s: float, folder: Path, env: dict[str, str]) -> dict:
    started = time.perf_counter()
    out, log = folder / f"{name}.json", folder / f"{name}.log"
    try:
        with open(out, "w", encoding="utf-8") as stdout, open(log, "w", encoding="utf-8") as stderr:
            code = subprocess.run([sys.executable, "-m", "cli.main", *medtui], cwd=ROOT, env=env, stdout=stdout,
                                  stderr=stderr, timeout=max(1.0, limit_s)).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    entry: dict = {"step": name, "argv": ["medtui", *medtui], "seconds": round(time.perf_counter() - started, 1),
                   "limit_s": round(limit_s, 1), "ok": code == 0, "exit": code}
    try:
        entry["figures"] = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:] if log.exists() else []
        entry["error"] = " | ".join(tail) or "no output"
    return entry


def headline(entry: dict) -> str:
    """The figures of one step that BENCHMARKS.md quotes."""
    figures = entry.get("figures") or {}
    if not entry["ok"]:
        return f"failed ({entry['exit']}): {entry.get('error', '')}"[:300]
    if "long_eval" in figures or "run_all" in figures:
        long, both = figures.get("long_eval") or {}, figures.get("run_all") or {}
        parts = [f"{figures.get('shape')} on {figures.get('gpu') or figures.get('device')} ({figures.get('dtype')})"]
        if long:
            parts.append(f"eval {long['rows_per_s']:.2f} rows/s over {long['rows']} rows (cost end/start "
                         f"x{long['cost_end_over_start']:.2f}, RSS x{long['memory_end_over_start'] or 0:.2f})")
        if both.get("app_over_eval"):
            parts.append(f"run-all/eval x{both['app_over_eval']:.2f}")
        return "; ".join(parts)
    names = ("capture_over_forward", "sample_over_generate", "capture_mem_over_old", "eval_s_per_row",
             "eval_over_loop", "batch_size")
    return ", ".join(f"{name} {figures[name]:.3g}" if isinstance(figures.get(name), float) else
                     f"{name} {figures.get(name)}" for name in names if name in figures)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    folder = Path(args.out) / "gpu-check"
    folder.mkdir(parents=True, exist_ok=True)
    site = folder / "site"
    wheels = install_wheels(Path(args.wheels), site, folder / "pip.log")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(site), str(ROOT),
                                                                  os.environ.get("PYTHONPATH", "")) if p)}
    summary: dict = {"wheels": wheels, "python": sys.version.split()[0], "steps": []}
    plan = steps(args)
    if args.steps:
        wanted = args.steps.split(",")
        unknown = sorted(set(wanted) - {name for name, _, _ in plan})
        if unknown:
            print(f"gpu_check: unknown step(s) {', '.join(unknown)}", file=sys.stderr)
            return 2
        plan = [step for step in plan if step[0] in wanted]
    for i, (name, medtui, share) in enumerate(plan):
        left = args.budget_s - (time.perf_counter() - started)
        later = sum(s for _, _, s in plan[i + 1:])
        limit = left * share / (share + later)  # what a step leaves unused goes to the steps after it
        if limit < 5:
            summary["steps"].append({"step": name, "ok": False, "exit": "skipped", "error": "no time left"})
            continue
        print(f"[{time.perf_counter() - started:5.0f}s] {name}: up to {limit:.0f}s", file=sys.stderr, flush=True)
        summary["steps"].append(run_step(name, medtui, limit, folder, env))
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    lines = ["| step | seconds | figures |", "| --- | --- | --- |"]
    lines += [f"| {e['step']} | {e.get('seconds', '')} | {headline(e)} |" for e in summary["steps"]]
    (folder / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if all(e["ok"] for e in summary["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
