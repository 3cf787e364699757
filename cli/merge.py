"""``medtui merge OUT_1 ... OUT_N --into OUT``: shard trees (``medtui eval --shard I/N``) joined into one.

Refuses, in one line and exit 2, trees that different models or configs wrote, a missing tree and a
folder that is not a results tree. Exit 0 when the merged tree is complete, 1 when rows failed, a
shard is missing or a part's run did not end.
"""

from __future__ import annotations

import json
import sys

import click

from cli.errors import reports_errors


@click.command("merge", short_help="Shard trees joined into one, analysis/ recomputed.")
@click.argument("parts", nargs=-1, required=True, type=click.Path(), metavar="OUT_1 ... OUT_N")
@click.option("--into", "into", required=True, type=click.Path(file_okay=False), metavar="OUT",
              help="The merged results tree (created; a merge into it again adds what came since).")
@click.option("--no-plots", is_flag=True, help="Skip the dataset plots of analysis/ (tables and summary only).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout and nothing else there.")
@reports_errors
def merge_command(parts, into, no_plots, as_json):
    """Join the results trees OUT_1 ... OUT_N (shards of one run) into OUT, recomputing analysis/."""
    from medgemma_tui.pipeline.merge import merge_trees

    counts = merge_trees(parts, into, plots=not no_plots, argv=sys.argv[1:])
    if as_json:
        sys.stdout.write(json.dumps(counts.to_json()) + "\n")
    else:
        accuracy = "n/a" if counts.accuracy is None else f"{counts.accuracy:.3f} over {counts.scored} scored rows"
        click.echo(f"merged {counts.parts} trees: {counts.rows} rows ({counts.done} done, {counts.failed} failed, "
                   f"{counts.duplicates} duplicates dropped); accuracy {accuracy}")
        click.echo(f"results: {counts.out}")
    if counts.missing_shards:
        click.echo(f"medtui merge: shards missing: {', '.join(counts.missing_shards)}", err=True)
    if counts.unfinished_parts:
        click.echo(f"medtui merge: runs that did not finish: {', '.join(counts.unfinished_parts)}", err=True)
    if counts.analysis_error:
        click.echo(f"medtui merge: analysis/ could not be written: {counts.analysis_error}", err=True)
    sys.exit(counts.exit_code)
