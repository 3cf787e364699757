"""``medtui eval --export OUT``: a whole dataset into the standard results tree.

With no ``--model`` and no ``--data`` (and no dataset in the config) it runs the embedded demo bundle.
Progress goes to stderr (a rich bar on a terminal, plain lines otherwise); stdout carries only the
final summary. Exit codes: 0 every row done, 1 some rows failed (or a full disk stopped the run), 2 bad usage or
input, 130 interrupted by Ctrl-C, 143 by SIGTERM (128 + the signal).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from cli.errors import EXIT_FAILED, UsageError, fail, reports_errors
from cli.options import adapter_option, check_map_settings, device_options, with_model_flags
from cli.registry_options import HelpOf, StudyFlags, asked_studies, methods_help


def chosen_studies(config, asked: set[str], methods: str | None):
    """The config with ``--methods`` applied and the chosen studies' switches set, and the study names."""
    from medgemma_tui.pipeline.studies import study_names, with_studies

    if methods is not None:
        names = [name.strip() for name in methods.split(",") if name.strip()]
        try:
            config = config.with_overrides({"methods.names": names})
        except ValueError as exc:
            raise UsageError(f"--methods: {exc}") from None
    wanted = study_names(config, asked)
    return with_studies(config, wanted), wanted


def resolve_inputs(config, model, data, images):
    """(model source, CSV, images root, whether it is the demo bundle) from flags, then config, then demo."""
    from medgemma_tui.resources import demo_dataset_csv

    csv = Path(data) if data else config.data.csv
    root = Path(images) if images else config.data.images
    demo_data = csv is None
    if demo_data:
        csv = demo_dataset_csv()  # its image_path values are relative to its own folder
        if not csv.exists():
            raise UsageError(f"the demo dataset is not installed ({csv}); give --data CSV")
    model = model or config.model.name_or_path
    return model, csv, root, demo_data and model == "demo"


def batch_option(text: str | None) -> int | str | None:
    """``--batch-size``: a whole number, or "auto"; checked by the config like the file's value."""
    if text is None or text.strip().lower() == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        return text  # the config's check names the option's expected values


class PlainProgress:
    """One line per sample on stderr, for logs and pipes."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def __call__(self, p) -> None:
        if p.event == "start":
            self.echo(f"medtui eval: {p.total} to run, {p.skipped} finished already (skipped)")
        elif p.event == "sample":
            eta = f", about {format_seconds(p.eta_s)} left" if p.eta_s is not None else ""
            status = f"FAILED: {p.error}" if p.error else "done"
            self.echo(f"[{p.index}/{p.total}] {p.key} {status} ({p.sample_s:.2f}s{eta}{cluster_text(p)})")
        elif p.event == "worker" and getattr(p, "note", None):
            self.echo(f"medtui eval: {p.note} ({cluster_text(p, bare=True).strip()})")
        elif p.event == "analysis":
            self.echo("writing analysis/ (summary, tables, plots)")

    def echo(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        pass


class BarProgress:
    """A rich progress bar on stderr: samples done, rate, time left, current key."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]eval[/bold]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TextColumn("{task.fields[key]}"),
            TextColumn("[red]{task.fields[failed]}"), console=self.console, transient=False,
        )
        self.task = None

    def __call__(self, p) -> None:
        if p.event == "start":
            self.console.print(f"{p.total} to run, {p.skipped} finished already (skipped)")
            self.bar.start()
            self.task = self.bar.add_task("eval", total=p.total, rate="", key="", failed="")
        elif p.event == "sample" and self.task is not None:
            rate = f"{p.rate:.2f}/s" if p.rate else ""
            failed = f"{p.failed} failed" if p.failed else ""
            self.bar.update(self.task, completed=p.index, rate=rate + cluster_text(p, bare=True), key=p.key,
                            failed=failed)
            if p.error:
                from rich.markup import escape

                self.console.print(f"[red]{escape(p.key)}: {escape(p.error)}[/red]", highlight=False)
        elif p.event == "worker" and getattr(p, "note", None):
            from rich.markup import escape

            self.console.print(f"{escape(p.note)} ({cluster_text(p, bare=True).strip()})", highlight=False)
        elif p.event == "analysis" and self.task is not None:
            self.bar.update(self.task, key="writing analysis/")

    def close(self) -> None:
        self.bar.stop()


def cluster_text(p, bare: bool = False) -> str:
    """Rows per second and workers alive, for the steps of a Ray run (``RayProgress``); '' otherwise."""
    workers = getattr(p, "workers", None)
    if workers is None:
        return ""
    rate = "" if bare else (f", {p.rate:.2f} rows/s" if p.rate else "")
    return f"{rate}{' ' if bare else ', '}{workers} worker{'' if workers == 1 else 's'} alive"


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def print_summary(counts, as_json: bool, unscored: str | None = None) -> None:
    """The run's summary on stdout; ``unscored`` (why no row could be scored) is its last line."""
    payload = {
        "done": counts.done,
        "skipped": counts.skipped,
        "failed": counts.failed,
        "selected": counts.selected,
        "accuracy": counts.accuracy,
        "accuracy_interval": list(counts.accuracy_interval) if counts.accuracy_interval else None,
        "scored": counts.scored,
        "analysis_error": counts.analysis_error,
        "wall_s": round(counts.wall_s, 3),
        "out": counts.out,
        "interrupted": counts.interrupted,
        "exit_code": counts.exit_code,
        "unscored_reason": unscored if not counts.scored else None,
    }
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    from medgemma_tui.export.intervals_summary import INTERVAL_NOTE

    accuracy = "n/a" if counts.accuracy is None else f"{counts.accuracy:.3f}"
    if counts.accuracy is not None:
        if counts.accuracy_interval:
            low, high = counts.accuracy_interval
            accuracy += f" [{low:.3f}, {high:.3f}] ({INTERVAL_NOTE})"
        else:
            accuracy += " (no interval: fewer than 2 studies)"
        accuracy += f" over {counts.scored} scored rows"
    state = "interrupted" if counts.interrupted else "finished"
    click.echo(f"{state}: {counts.done} done, {counts.skipped} skipped, {counts.failed} failed "
               f"in {format_seconds(counts.wall_s)}; accuracy {accuracy}")
    if counts.analysis_error:
        click.echo(f"analysis/ could not be written: {counts.analysis_error}", err=True)
    for failure in counts.failures[:10]:
        click.echo(f"  failed {failure['key']}: {failure['error']}")
    if len(counts.failures) > 10:
        click.echo(f"  ... and {len(counts.failures) - 10} more (see the error column)")
    click.echo(f"results: {counts.out}")
    if unscored and not counts.scored:
        click.echo(f"accuracy n/a: {unscored}")


@click.command("eval", cls=StudyFlags, after="--methods",
               short_help="Every row of a dataset into the standard results tree.")
@click.option("--export", "out", required=True, type=click.Path(file_okay=False), metavar="OUT",
              help="The results tree to write (created; a re-run completes it).")
@click.option("--model", default=None, metavar="M",
              help="A local model folder, a hub id (google/medgemma-4b-it) or 'demo'. Default: the config's "
                   "[model] name_or_path, else the demo model.")
@click.option("--data", default=None, type=click.Path(dir_okay=False), metavar="CSV",
              help="The dataset CSV (MIMIC-CXR hard-positive schema). Default: the config's, else the demo.")
@click.option("--images", default=None, type=click.Path(exists=True, file_okay=False), metavar="ROOT",
              help="Folder the CSV's image_path values are relative to. Default: the CSV's folder.")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="A TOML config (see fixtures/medtui.example.toml), or the original system's JSON config; "
                   "flags override it.")
@click.option("--limit", type=click.IntRange(1), default=None, metavar="N", help="Only the first N rows.")
# one flag per study of registry.STUDIES (``StudyFlags``) follows --methods
@click.option("--methods", cls=HelpOf, help_of=methods_help, default=None, metavar="NAMES")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Skip keys the tree already finished (--no-resume recomputes every row).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout and nothing else there.")
@click.option("--no-plots", is_flag=True, help="Skip the dataset plots of analysis/ (tables and summary only), as "
              "merge does; the same as [visualization] save_plots = false.")
@device_options
@click.option("--batch-size", "batch_size", default=None, metavar="N|auto",
              help="Rows of one film answered by one generate, each record the same as alone (default: the "
                   "config's [decoding] batch_size, auto: 1 on a CPU, on a GPU what half its free memory holds, "
                   "at most 8).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              help="Run on a Ray cluster: 'auto' or host:port joins one; no value starts a local Ray.")
@click.option("--workers", type=click.IntRange(1), default=None, metavar="N",
              help="Ray workers, one model each (default: one per GPU of the cluster, else one per 4 CPUs).")
@click.option("--shard", "shard_text", default=None, metavar="I/N",
              help="Only shard I of N (from 0), split by film; default inside a Slurm array: its task's shard.")
@adapter_option
@reports_errors
def eval_command(out, model, data, images, config_path, limit, methods, resume, as_json, no_plots, device, dtype,
                 batch_size, ray_address, workers, shard_text, adapter, **study_flags):
    """Run every row of a dataset and write the standard results tree to OUT."""
    # study_flags: one per study's flag (``StudyFlags``), read with the other options by ``asked_studies``
    from cli.config import read_config
    from medgemma_tui.data.schema import duplicate_rows, load_dataset
    from medgemma_tui.export.tree import ResultsTree, check_writable
    from medgemma_tui.pipeline.evaluation import model_needed, run_evaluation
    from medgemma_tui.pipeline.shards import parse_shard, shard_from_env, shard_info, shard_samples
    from medgemma_tui.pipeline.studies import make_studies

    started = time.perf_counter()
    shard = parse_shard(shard_text) if shard_text is not None else shard_from_env(os.environ)
    if workers is not None and ray_address is None:
        raise UsageError("--workers is the number of Ray workers; give --ray too")
    if ray_address is not None:
        from medgemma_tui.pipeline.ray_eval import import_ray

        import_ray()
    config = read_config(config_path)
    check_writable(out)
    limit = limit if limit is not None else config.data.limit
    config = with_model_flags(config, device, dtype, adapter)
    overrides = {"decoding.batch_size": batch_option(batch_size),
                 "visualization.save_plots": False if no_plots else None}
    config = config.with_overrides({k: v for k, v in overrides.items() if v is not None})
    model, csv, root, demo = resolve_inputs(config, model, data, images)
    config = config.with_overrides({"model.name_or_path": model, "data.csv": str(csv),
                                    **({"data.images": str(root)} if root else {})})
    check_map_settings(config)
    config, wanted = chosen_studies(config, asked_studies(click.get_current_context().params), methods)
    studies = make_studies(config, wanted)
    dataset = load_dataset(csv, root)
    samples = list(dataset.samples[:limit] if limit else dataset.samples)
    unscored = dataset.unscored_reason()
    if dataset.label_column != "answer" and "answer" in {c.strip().lower() for c in dataset.columns}:
        click.echo(f"medtui eval: labels read from {dataset.label_column!r}; the free-text 'answer' column is kept "
                   "as 'original_answer'", err=True)
    selected = samples
    if shard is not None:
        samples = shard_samples(selected, shard)
    repeated = duplicate_rows(samples)
    if repeated:
        pairs = ", ".join(f"line {again.line} repeats line {first.line}" for again, first in repeated[:3])
        more = f" and {len(repeated) - 3} more" if len(repeated) > 3 else ""
        click.echo(f"medtui eval: {len(repeated)} row(s) ask an earlier row's question about the same film "
                   f"({pairs}{more}): each is run and scored as a row of its own", err=True)
    bad = [s for s in samples if s.problem]
    if bad:
        click.echo(f"medtui eval: {len(bad)} bad row(s) will be recorded as failed, the others run:", err=True)
        for sample in bad[:5]:
            click.echo(f"  line {sample.line}: {sample.problem}", err=True)

    tree = ResultsTree(out)
    show = BarProgress() if sys.stderr.isatty() else PlainProgress()
    run_info = {
        "command": "medtui eval",
        "argv": sys.argv[1:],
        "dataset": {"csv": str(csv), "images": str(dataset.images_root), "rows": len(dataset),
                    "limit": limit, "demo_bundle": demo, "label_column": dataset.label_column,
                    "unscored_reason": unscored,
                    **({"shard": shard_info(selected, samples, shard)} if shard is not None else {})},
        "studies": wanted,
    }
    try:
        with tree.locked():
            if ray_address is not None:
                from medgemma_tui.pipeline.ray_eval import run_ray_evaluation

                counts = run_ray_evaluation(samples, tree, config, address=ray_address or None, workers=workers,
                                            resume=resume, progress=show, studies=wanted, run_info=run_info)
            else:
                from medgemma_tui.engine.loading import load_for_capture

                t = time.perf_counter()
                loaded = None  # nothing left to run: no model needed to rewrite analysis/
                if model_needed(samples, tree, resume):
                    loaded = load_for_capture(model, device=config.model.device, dtype=config.model.dtype,
                                              revision=config.model.revision, adapter=config.model.adapter)
                run_info["timings_s"] = {"load_model": round(time.perf_counter() - t, 3)}
                counts = run_evaluation(loaded, samples, tree, config, resume=resume, progress=show,
                                        studies=studies, run_info=run_info)
    finally:
        show.close()
    counts.wall_s = time.perf_counter() - started
    print_summary(counts, as_json, unscored)
    if counts.disk_full:
        fail(f"{counts.disk_full}; the run stopped there, every finished row is kept: free some space and run "
             "the same command again", EXIT_FAILED)
    if counts.interrupted:
        click.echo("medtui: interrupted; run the same command again to finish", err=True)
    sys.exit(counts.exit_code)
