"""The ``medtui`` launcher. Headless commands never import textual; only ``tui``/``open`` do."""

from __future__ import annotations

import click

from cli.app import app_options, open_command, tui_command
from cli.bench import bench_command
from cli.check import check_command
from cli.compare import compare_command
from cli.config import config_group
from cli.eval import eval_command
from cli.figures import figures_command
from cli.masks import masks_command
from cli.merge import merge_command


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="medgemma-tui")
@app_options
@click.pass_context
def main(ctx: click.Context, config_path, color, graphics, theme, colormap) -> None:
    """Where does MedGemma look? Attention capture and analysis for chest X-ray VQA.

    With no command, opens the terminal app on the embedded demo bundle; the options below apply to it
    (`medtui tui --help` for real data).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui_command, config_path=config_path, color=color, graphics=graphics, theme=theme,
                   colormap=colormap)


main.add_command(bench_command)
main.add_command(check_command)
main.add_command(compare_command)
main.add_command(config_group)
main.add_command(eval_command)
main.add_command(figures_command)
main.add_command(merge_command)
main.add_command(masks_command)
main.add_command(tui_command)
main.add_command(open_command)


if __name__ == "__main__":
    main()
