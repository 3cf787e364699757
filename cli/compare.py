"""``medtui compare A B --into C``: two results trees of the same rows side by side (answer flips, how far each
map moved, paired study-bootstrap intervals of the dataset figures). ``medtui open C`` shows C."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cli.errors import reports_errors

HEADLINES = (("accuracy", "accuracy"), ("pointing_game", "pointing game"), ("mass_in_box_lift", "mass-in-box lift"),
             ("hard_positive_answer_consistency", "hard-positive consistency"))


def _figure_line(label: str, entry: dict) -> str:
    if entry.get("difference") is None:
        return f"  {label}: no paired rows"
    interval = entry.get("interval")
    bound = f"[{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else "(no interval: fewer than 2 studies)"
    return (f"  {label}: {entry['a']:.3f} -> {entry['b']:.3f}, B - A {entry['difference']:+.3f} {bound} "
            f"over {entry['n']} (studies {entry['studies']})")


@click.command("compare")
@click.argument("a", type=click.Path(file_okay=False))
@click.argument("b", type=click.Path(file_okay=False))
@click.option("--into", "into", required=True, type=click.Path(file_okay=False), metavar="C",
              help="The comparison tree (created); `medtui open C` shows it.")
@click.option("--no-plots", is_flag=True, help="Skip the figures (tables and comparison.json only).")
@click.option("--json", "as_json", is_flag=True, help="Print the dataset figures as one JSON object on stdout.")
@reports_errors
def compare_command(a, b, into, no_plots, as_json):
    """Set results trees A and B (the same rows, another model, adapter, prompt or config) side by side in C."""
    from medgemma_tui.export.comparison_tree import compare_trees

    payload = compare_trees(a, b, into, plots=not no_plots)
    if as_json:
        keys = ("a", "b", "differences", "paired_rows", "unpaired_rows", "dataset", "flips", "shifts")
        sys.stdout.write(json.dumps({k: payload[k] for k in keys}) + "\n")
        return
    blocks = dict.fromkeys(".".join(k.split(".")[:3 if k.startswith("config.") else 2]) for k in payload["differences"])
    differs = ", ".join(blocks) or "nothing in run.json"
    click.echo(f"A {a} vs B {b}: {payload['paired_rows']} rows paired, {payload['unpaired_rows']} unpaired; "
               f"differs in {differs}")
    flips = payload["flips"]
    directions = ", ".join(f"{k} {v}" for k, v in flips["by_direction"].items()) or "none"
    click.echo(f"  verdicts flipped: {flips['flipped']} of {flips['rows']} ({directions})")
    js = payload["shifts"]["js"]
    if js["median"] is not None:
        click.echo(f"  map JS (nats): median {js['median']:.4f} [IQR {js['q1']:.4f}, {js['q3']:.4f}]; top cell moved "
                   f"on {payload['shifts']['top_cell_moved']} rows")
    for name, label in HEADLINES:
        click.echo(_figure_line(label, payload["dataset"][name]))
    if payload["unpaired_rows"]:
        click.echo(f"  unpaired rows (not compared): {Path(into) / 'unpaired.csv'}")
    click.echo(f"comparison: {into}")
