"""``medtui figures OUT``: every figure of a results tree drawn again, in the current style, without the model."""

from __future__ import annotations

import json
import sys

import click

from cli.errors import UsageError, reports_errors


@click.command("figures", short_help="Redraw a tree's figures from its files, without the model.")
@click.argument("out", type=click.Path(), metavar="OUT")
@click.option("--format", "formats", default="png", show_default=True, metavar="FMT[,FMT]",
              help="Formats to write, comma-separated: png, pdf, svg.")
@click.option("--dpi", type=float, default=300, show_default=True,
              help="Resolution of the PNG (and of the films inside a PDF or SVG).")
@click.option("--rows/--no-rows", default=True, show_default=True,
              help="Also redraw each finished row's visualizations/{key}_full figure.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout and nothing else there.")
@reports_errors
def figures_command(out, formats, dpi, rows, as_json):
    """Redraw every figure of the results tree OUT: the dataset figures of analysis/ with captions.md,
    the methods, heads and sanity figures where their tables exist, and each row's figure.

    Reads the tree's files only (summary.json, the CSVs, grids, masks, the films named in meta.json);
    no model is loaded and no number is recomputed. Exit 1 when a figure could not be drawn (each named
    on stderr), 2 for bad input.
    """
    from medgemma_tui.export.figures import check_dpi, check_formats
    from medgemma_tui.export.redraw import redraw_tree

    try:
        chosen = check_formats([part for part in formats.split(",") if part.strip()])
        dpi = check_dpi(dpi)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    def progress(done: int, total: int, key: str) -> None:
        if not as_json and (done == total or done % 25 == 0):
            click.echo(f"[{done}/{total}] row figures", err=True)

    result = redraw_tree(out, chosen, dpi, rows=rows, progress=progress)
    if as_json:
        sys.stdout.write(json.dumps({"out": str(result.root), "dataset": result.dataset, "rows": result.rows,
                                     "captions": result.captions, "failed": result.failed,
                                     "formats": list(chosen), "dpi": dpi}) + "\n")
    else:
        click.echo(f"redrew {len(result.dataset)} dataset figures and {result.rows} row figures "
                   f"({', '.join(chosen)} at {dpi:g} dpi) in {result.root}"
                   + ("; captions in analysis/captions.md" if result.captions else ""))
    for name, why in result.failed.items():
        click.echo(f"medtui figures: {name}: {why}", err=True)
    sys.exit(result.exit_code)
