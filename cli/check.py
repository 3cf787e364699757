"""``medtui check IMAGE -q QUESTION``: one question about one film, answered in seconds."""

from __future__ import annotations

import json
import sys

import click

from cli.errors import EXIT_FAILED, UsageError, fail, reports_errors
from cli.options import check_map_settings, model_options, with_model_flags
from medgemma_tui.analysis.views import VIEWS
from medgemma_tui.errors import MedtuiError, first_line
from medgemma_tui.json_values import jsonable


def check_payload(image_path, analysis, timings, verify=None) -> dict:
    record = analysis.record
    payload = {
        "image": str(image_path),
        "question": record.question,
        "answer": record.answer,
        "answer_label": analysis.answer_label,
        "model": record.model.to_json(),
        "image_token_span": list(record.image_token_span),
        "map": analysis.view.description,
        "grid": [[float(v) for v in row] for row in analysis.grid],
        "metrics": jsonable({k: float(v) for k, v in analysis.metrics.items()}),
        "gating": analysis.gating.to_json(),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
    }
    if verify is not None:
        payload["verify"] = verify
    return payload


def print_human(payload: dict, analysis, colormap: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from medgemma_tui.export.ansi import SHADES, colorbar_text, heatmap_text

    console = Console()
    console.print(f"[bold]Q:[/bold] {payload['question']}")
    console.print(f"[bold]A:[/bold] {payload['answer']!r}  → [bold]{payload['answer_label']}[/bold]")
    console.print(f"[dim]map: {payload['map']}; image tokens {payload['image_token_span']}[/dim]")
    if console.color_system is None:
        console.print(heatmap_text(analysis.grid, colormap, color=False), end="")
        console.print(f"shades {SHADES!r} from 0 to the max cell {float(analysis.grid.max()):.4f}")
    else:
        console.print(heatmap_text(analysis.grid, colormap), end="")
        console.print(colorbar_text(analysis.grid, colormap))
    table = Table(show_header=False, box=None, pad_edge=False)
    m = payload["metrics"]
    for name in ("entropy_norm", "focus", "top10_mass", "inside_lungs_ratio", "left_fraction", "right_fraction",
                 "bos_share", "image_share", "text_share"):
        if name in m:
            table.add_row(name, "n/a" if m[name] is None else f"{m[name]:.3f}")
    console.print(table)
    if payload["gating"]["terms"]:
        console.print("gated terms: " + ", ".join(payload["gating"]["terms"]))
    if "verify" in payload:
        console.print(f"verify against eager: max |diff| = {payload['verify']['max_abs_diff']:.3g}")
    console.print(f"[dim]{sum(payload['timings_s'].values()):.2f}s total[/dim]")


@click.command("check")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("-q", "--question", required=True, help="The yes/no question to ask about the image.")
@model_options
@click.option("--max-new-tokens", type=click.IntRange(1, 512), default=None,
              help="Longest answer, in tokens (default: the config's decoding.max_new_tokens, 128).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout and nothing else there.")
@click.option("--verify-eager", is_flag=True, help="Also run the eager output_attentions reference and compare.")
@click.option("--colormap", default=None, help="Heatmap colours (default: the config's, magma).")
@click.option("--view", type=click.Choice(VIEWS), default=None,
              help="The map to show (default: the config's analysis.map_view, 'answer').")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="A medtui TOML config; flags override it.")
@click.option("--export", "export_dir", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="Also write this sample as a standard results tree in DIR.")
@reports_errors
def check_command(image, question, model, adapter, device, dtype, max_new_tokens, as_json, verify_eager, colormap, view,
                  config_path, export_dir):
    """Answer QUESTION about IMAGE and show where the answer looked."""
    from cli.config import read_config
    from medgemma_tui.data.images import load_image
    from medgemma_tui.data.schema import question_problem

    if problem := question_problem(question):
        raise UsageError(problem)
    config = read_config(config_path)
    # a bad film (or config) or an export folder that cannot be written is refused here, in half a second:
    # before torch and the model are imported
    load_image(image)
    if export_dir:
        from medgemma_tui.export.tree import check_writable

        check_writable(export_dir)

    from medgemma_tui.engine.loading import load_for_capture
    from medgemma_tui.pipeline.check import check_image, export_check
    from medgemma_tui.pipeline.rows import RowSettings

    overrides = {"model.name_or_path": model, "decoding.max_new_tokens": max_new_tokens,
                 "analysis.map_view": view, "visualization.colormap": colormap}
    config = with_model_flags(config.with_overrides({k: v for k, v in overrides.items() if v is not None}),
                              device, dtype, adapter)
    check_map_settings(config)
    settings = RowSettings.from_config(config)

    def load():
        return load_for_capture(config.model.name_or_path, device=config.model.device, dtype=config.model.dtype,
                                revision=config.model.revision, adapter=config.model.adapter)

    checked = check_image(load, image, question, settings, verify_eager=verify_eager)
    analysis = checked.result.analysis
    payload = check_payload(image, analysis, checked.timings, checked.verify)
    export_error = None
    if export_dir:
        try:
            payload["export"] = str(export_check(export_dir, checked, config))
        except (MedtuiError, OSError) as exc:  # the answer is printed all the same, then the error
            export_error = f"--export {export_dir}: {first_line(exc)}"
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        print_human(payload, analysis, config.visualization.colormap)
    if export_error:
        fail(export_error, EXIT_FAILED)
