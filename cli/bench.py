"""``medtui bench``: the cost of a whole attention record beside the floor and the old pipeline."""

from __future__ import annotations

import json
import math
import sys
import time

import click

from cli.errors import reports_errors
from cli.options import adapter_option, device_options, with_model_flags
from medgemma_tui.config import Config
from medgemma_tui.json_values import jsonable
from medgemma_tui.model.shapes import SHAPES

MIB = 1024 * 1024


def shown(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "" if value is None else "n/a"
    return f"{value:.3f}"


def print_human(figures: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from medgemma_tui.bench.run import target_verdicts

    console = Console()
    console.print(
        f"[bold]{figures['shape']}[/bold] on {figures['device']} ({figures['dtype']}): "
        f"prompt {figures['prompt_length']} + {figures['new_tokens']} answer tokens, "
        f"median of {figures['repeats']} after a warm-up"
    )
    table = Table(box=None, pad_edge=False)
    for column in ("variant", "median s", "cpu s", "MiB above load", "what"):
        table.add_column(column, justify="left" if column in ("variant", "what") else "right")
    for name, what in figures["variants"].items():
        if name not in figures["seconds_median"]:
            continue
        table.add_row(name, f"{figures['seconds_median'][name]:.3f}", f"{figures['cpu_seconds_median'][name]:.3f}",
                      f"{figures['bytes_above_load'][name] / MIB:.0f}", what)
    console.print(table)
    verdicts = target_verdicts(figures)
    ratios = Table(box=None, pad_edge=False)
    for column in ("figure", "value", "within rounds", "cpu s", "target"):
        ratios.add_column(column, justify="left" if column in ("figure", "target") else "right")
    for name in ("capture_over_forward", "sample_over_generate", "old_sample_over_ours", "old_forward_over_forward",
                 "capture_mem_over_old", "nav_redraw_ms_p50", "nav_redraw_ms_p95", "eval_samples_per_s"):
        ratios.add_row(name, shown(figures[name]), shown(figures["paired_ratios"].get(name)),
                       shown(figures["cpu_ratios"].get(name)), verdicts.get(name, ""))
    console.print(ratios)
    if figures.get("rows"):
        title = (f"a dataset of {figures['films']} films, {figures['rows']} rows, "
                 f"{figures.get('batch_size', 1)} per generate in the eval")
        data = Table(box=None, pad_edge=False, title=title)
        for column in ("figure", "value", "target"):
            data.add_column(column, justify="right" if column == "value" else "left")
        for name in ("loop_s_per_row", "old_s_per_row", "eval_s_per_row", "eval_over_loop", "old_over_eval",
                     "vision_reuse_rows_per_film", "gpu_util"):
            data.add_row(name, shown(figures.get(name)), verdicts.get(name, ""))
        console.print(data)
    if figures.get("max_abs_diff") is not None:
        console.print(f"capture against eager: max |diff| {figures['max_abs_diff']:.3g} over "
                      f"{len(figures['layers'])} layers")
    load = figures["load_average"]
    rounds = " ".join(f"{x:.1f}" for x in load["rounds"])
    console.print(f"[dim]memory: {figures['memory_method']}; 1-min load average before {load['before'][0]:.2f}, "
                  f"at each round {rounds} (this run's own threads count), after {load['after'][0]:.2f}; "
                  f"{figures['machine']['torch_threads']} torch threads; {figures['wall_s']:.0f}s in all[/dim]")
    for note in figures["notes"]:
        console.print(f"[dim]note: {note}[/dim]")


def print_scale(figures: dict) -> None:
    """``--scale``: each measure on a line, then the verdicts."""
    writer, long, both = figures.get("writer"), figures.get("long_eval"), figures.get("run_all")
    if writer:
        click.echo(f"tree writer, {writer['rows']} rows of {writer['columns']} columns: "
                   f"{writer['start_rows_per_s']:.0f} rows/s over the first {writer['window']}, "
                   f"{writer['end_rows_per_s']:.0f} over the last "
                   f"(x{writer['end_over_start']:.2f}); CPU {writer['start_cpu_ms_per_row']:.2f} -> "
                   f"{writer['end_cpu_ms_per_row']:.2f} ms a row; CSV built in {writer['csv_build_s']:.2f}s")
    if long:
        memory = (f"RSS {long['early_rss_mib']:.0f} -> {long['late_rss_mib']:.0f} MiB "
                  f"(x{long['memory_end_over_start']:.2f})" if long.get("memory_end_over_start") else "RSS not read")
        click.echo(f"long demo eval, {long['rows']} rows ({long['rows_per_s']:.2f} rows/s), figures off, "
                   f"{figures['shape']} on {figures['device']}: "
                   f"{long['early_s_per_row'] * 1000:.0f} ms/row at 5-15%, {long['late_s_per_row'] * 1000:.0f} in the "
                   f"last tenth (x{long['cost_end_over_start']:.2f}); CPU {long['early_cpu_s_per_row'] * 1000:.0f} -> "
                   f"{long['late_cpu_s_per_row'] * 1000:.0f} ms a row; {memory}")
    if both:
        app = f"{both['app_rows_per_s']:.2f}" if both.get("app_rows_per_s") else "n/a"
        ratio = f" (x{both['app_over_eval']:.2f})" if both.get("app_over_eval") else ""
        click.echo(f"run-all against eval, {both['rows']} rows: eval {both['eval_rows_per_s']:.2f} rows/s, "
                   f"the app's run-all {app}{ratio}")
    for name, verdict in figures["targets"].items():
        click.echo(f"  {name} = {verdict}")
    click.echo(f"{figures['wall_s']:.0f}s in all")


def bench_batch_size(text: str) -> int | str:
    """``--batch-size``: "auto" or a whole number >= 1."""
    if text.strip().lower() == "auto":
        return "auto"
    if not text.strip().isdigit() or int(text) < 1:
        raise click.BadParameter(f"'auto' or a whole number >= 1, got {text!r}", param_hint="--batch-size")
    return int(text)


def skippable(flag: str, most: int, default: int, what: str):
    """A count of what one part of the bench runs, from 0 (that part skipped) to ``most``."""
    return click.option(flag, type=click.IntRange(0, most), default=default, show_default=True,
                        help=f"{what} (0 skips it).")


@click.command("bench", short_help="Speed and memory against the old pipeline and the floor.")
@click.option("--shape", type=click.Choice(SHAPES), default="medgemma-lite",
              show_default=True, help="Model shape, random weights: the demo bundle, MedGemma-4b's widths on a "
              "few layers, MedGemma-4b's whole decoder behind one SigLIP layer (medgemma-4b-text, for a CPU), or "
              "the full MedGemma-4b config (for a GPU host); NAME-heads: a Gemma 3 family layout's heads (4B, "
              "12B, 27B) at small widths.")
@device_options
@click.option("--repeats", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Timed runs of each variant after one warm-up; the figure is their median.")
@click.option("--new-tokens", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Answer length, the same for every variant.")
@skippable("--nav-keys", 10_000, 200, "Navigation keys timed in the app's redraw")
@skippable("--eval-samples", 10_000, 8, "Rows of the demo CSV in the demo eval")
@click.option("--dataset-films", type=click.IntRange(0, 100), default=None,
              help="Films of the bench dataset run three ways: bare loop, old way, medtui eval (0 skips it; "
                   "default 2, and 0 on medgemma-4b-text, where each way takes many minutes on a CPU).")
@click.option("--dataset-questions", type=click.IntRange(1, 6), default=6, show_default=True,
              help="Questions asked about each film of the bench dataset.")
@click.option("--batch-size", "batch_size", default="1", show_default=True, metavar="N|auto",
              help="Rows of one film per generate in the dataset's medtui eval, as eval --batch-size (auto: 1 on "
                   "a CPU, by free memory on a GPU); the figure is in the JSON as batch_size.")
@click.option("--threads", type=click.IntRange(1, 512), default=None,
              help="torch CPU threads (default: torch's choice, one per core).")
@click.option("--scale", is_flag=True,
              help="Instead: whether a row costs at the end of a long run what it did at the start: the tree "
                   "writer alone, a long demo eval with figures off, the app's run-all against eval (README, "
                   "\"medtui bench --scale\").")
@skippable("--scale-writer-rows", 10_000_000, 100_000, "--scale: synthetic rows through the tree writer")
@skippable("--scale-eval-rows", 1_000_000, 2000, "--scale: repeated demo rows in the long eval")
@skippable("--scale-app-rows", 100_000, 60, "--scale: repeated demo rows run by the app's run-all and by eval")
@click.option("--scale-shape", type=click.Choice(SHAPES), default="demo", show_default=True,
              help="--scale: the model answering the demo rows (a random-weight shape, as --shape).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout and nothing else there.")
@adapter_option
@reports_errors
def bench_command(shape, device, dtype, repeats, new_tokens, nav_keys, eval_samples, dataset_films, dataset_questions,
                  batch_size, threads, scale, scale_writer_rows, scale_eval_rows, scale_app_rows, scale_shape,
                  as_json, adapter):
    """Measure capture against the plain fast path and the old eager pipeline, on one sequence."""
    from medgemma_tui.app.bench import measure_nav_redraw

    started = time.perf_counter()
    settings = with_model_flags(Config(), device, dtype).model  # no --config: the defaults, auto and auto
    device, dtype = settings.device, settings.dtype

    def progress(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

    if scale:
        if adapter:
            raise click.BadParameter("--scale measures the demo or a random shape; leave it out",
                                     param_hint="--adapter")
        if 0 < scale_eval_rows < 3:
            raise click.BadParameter("0 (skip it) or at least 3 rows", param_hint="--scale-eval-rows")
        if threads:
            import torch

            torch.set_num_threads(threads)
        from medgemma_tui.app.bench import measure_run_all
        from medgemma_tui.bench.scale import run_scale_bench

        figures = run_scale_bench(device=device, dtype=dtype, writer_rows=scale_writer_rows, eval_rows=scale_eval_rows,
                                  app_rows=scale_app_rows, batch_size=bench_batch_size(batch_size),
                                  run_all=measure_run_all, progress=progress, shape=scale_shape)
        if as_json:
            sys.stdout.write(json.dumps(jsonable(figures)) + "\n")
        else:
            print_scale(figures)
        return
    from medgemma_tui.bench.run import run_bench

    if dataset_films is None:
        dataset_films = 0 if shape == "medgemma-4b-text" else 2
    result = run_bench(shape=shape, device=device, dtype=dtype, repeats=repeats, new_tokens=new_tokens,
                       nav_keys=nav_keys, eval_samples=eval_samples, threads=threads, nav_measure=measure_nav_redraw,
                       dataset_films=dataset_films, dataset_questions=dataset_questions,
                       dataset_batch_size=bench_batch_size(batch_size), progress=progress, adapter=adapter)
    figures = result.figures()
    if as_json:
        sys.stdout.write(json.dumps(jsonable(figures)) + "\n")
    else:
        print_human(figures)
