"""Reading ``--config`` for every command (the original system's JSON config included, with one warning line),
and ``medtui config convert OLD.json``, which writes its TOML equivalent."""

from __future__ import annotations

from pathlib import Path

import click

from cli.errors import UsageError, reports_errors


def read_config(path: str | None):
    """``load_config(path)``; for the original's JSON config, one line on stderr naming every key ignored."""
    from medgemma_tui.config import load_config

    config = load_config(path)
    if config.ignored:
        click.echo(f"medtui: {path} is the original system's JSON config, read as medtui settings; ignored: "
                   f"{'; '.join(config.ignored)}", err=True)
    return config


@click.group("config")
def config_group() -> None:
    """Configuration files: convert the original system's JSON config."""


@config_group.command("convert")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="TOML",
              help="Where to write the TOML (default: SOURCE with .toml; '-' for stdout).")
@click.option("--force", is_flag=True, help="Overwrite an existing TOML file.")
@reports_errors
def convert_command(source: str, output: str | None, force: bool) -> None:
    """Write the medtui TOML equivalent of the original system's JSON config SOURCE."""
    from medgemma_tui.config import load_config
    from medgemma_tui.config.original import is_original, read_original, to_toml

    path = Path(source)
    if not path.is_file():
        raise UsageError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if not is_original(text):
        raise UsageError(f"{path} is not a JSON config (already TOML?); nothing to convert")
    tables, ignored = read_original(text, str(path))
    load_config(path)  # the same checks as --config, before anything is written
    header = "\n".join([f"medtui config converted from {path.name} (the original system's JSON config).",
                        "Keys of the original without a counterpart, left out:",
                        *(f"  {item}" for item in ignored)])
    toml = to_toml(tables, header)
    if output == "-":
        click.echo(toml, nl=False)
        return
    target = Path(output) if output else path.with_suffix(".toml")
    if target.exists() and not force:
        raise UsageError(f"{target} exists; give --force to overwrite it or -o for another name")
    target.write_text(toml, encoding="utf-8")
    click.echo(f"wrote {target} ({sum(len(t) for t in tables.values())} settings; {len(ignored)} keys ignored)")
