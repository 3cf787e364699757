"""``medtui tui`` (bare ``medtui``) and ``medtui open OUT``: the Textual app.

Textual is imported only inside the command bodies, after ``--color`` has been applied to the
environment: Textual reads ``TEXTUAL_COLOR_SYSTEM`` once, when it is first imported, and OpenSSH does
not forward ``COLORTERM``, so truecolor goes undetected over SSH unless asked for.
"""

from __future__ import annotations

import os

import click

from cli.errors import UsageError, reports_errors
from cli.options import adapter_option, device_options, with_model_flags
from medgemma_tui.config import GRAPHICS_MODES

COLOR_CHOICES = ("auto", "truecolor", "256")
TEXTUAL_COLOR = {"truecolor": "truecolor", "256": "256", "16": "standard"}


def apply_color(mode: str) -> None:
    """Set the colour system for Textual and rich before either is imported by the app."""
    if mode == "auto":
        return
    if mode == "none":
        os.environ["NO_COLOR"] = "1"
        return
    os.environ["TEXTUAL_COLOR_SYSTEM"] = TEXTUAL_COLOR[mode]
    if mode == "truecolor":
        os.environ["COLORTERM"] = "truecolor"
    else:
        os.environ.pop("COLORTERM", None)


def app_options(command):
    command = click.option("--colormap", default=None, help="Heatmap colours: viridis, magma, cividis, coolwarm, "
                           "gray, jet (default: the config's, else magma).")(command)
    command = click.option("--theme", default=None, help="App theme: medtui-dark, medtui-light, "
                           "medtui-high-contrast, or any Textual theme.")(command)
    command = click.option("--color", "color", type=click.Choice(COLOR_CHOICES), default=None,
                           help="Colour system. 'auto' detects; over SSH use truecolor if your terminal has it "
                           "(COLORTERM is not forwarded), else 256.")(command)
    command = click.option("--graphics", type=click.Choice(GRAPHICS_MODES), default=None,
                           help="Draw the X-ray through a terminal graphics protocol, sharper than half-blocks: "
                           "'auto' asks the terminal, or name it (sixel: xterm, foot, WezTerm, iTerm2, tmux with "
                           "sixel; kitty). Default: the config's, else off.")(command)
    command = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                           help="A medtui TOML config ([app], [visualization], [model], [data] ...).")(command)
    return command


def load_settings(config_path: str | None):
    from cli.config import read_config

    return read_config(config_path)


def chosen_colormap(colormap: str | None, config) -> str:
    """``--colormap``, else the config's; a name not known is an ``UnknownColormapError`` before the app starts."""
    from medgemma_tui.colormaps import get_colormap

    return get_colormap(colormap or config.visualization.colormap).name


def launch(session, config, color: str | None, theme: str | None, colormap: str | None,
           graphics: str | None = None) -> None:
    """Apply the colour mode, ask the terminal about graphics, then import textual and run the app."""
    from medgemma_tui.app.keymap import binding_ids, key_clashes

    where = config.source or "the config"
    unknown = sorted(set(config.app.keys) - binding_ids())
    if unknown:
        raise UsageError(f"{where}: [app.keys] {', '.join(unknown)}: not a binding id "
                         f"(ids: {', '.join(sorted(binding_ids()))})")
    clashes = key_clashes(dict(config.app.keys))
    if clashes:
        raise UsageError(f"{where}: [app.keys] puts two bindings on one key: {'; '.join(clashes)} "
                         "(? lists every id and key)")
    apply_color(color or config.app.color)
    from medgemma_tui.app.graphics import prepare

    drawing = prepare(graphics or config.app.graphics)  # before Textual owns the terminal
    from medgemma_tui.app.app import MedtuiApp

    colormap = chosen_colormap(colormap, config)
    app = MedtuiApp(
        session,
        theme=theme or config.app.theme,
        colormap=colormap,
        alpha=config.visualization.overlay_alpha,
        view=config.analysis.map_view,
        keys=dict(config.app.keys),
        config=config,
        graphics=drawing,
    )
    app.run()


def launch_comparison(out: str, config, color: str | None, colormap: str | None) -> None:
    """The comparison app on a tree ``medtui compare`` wrote."""
    from medgemma_tui.export.comparison_tree import ComparisonReader

    reader = ComparisonReader(out)
    if reader.rows.empty:
        raise UsageError(f"{out} holds no paired rows")
    colormap = chosen_colormap(colormap, config)
    apply_color(color or config.app.color)
    from medgemma_tui.app.comparison import ComparisonApp

    ComparisonApp(reader, colormap=colormap).run()


@click.command("tui", short_help="The app on real data: where the model looks, layer by layer.")
@click.option("--model", default=None, metavar="M", help="Model folder, hub id, or 'demo' (default: the embedded "
              "demo bundle, unless the config names one).")
@click.option("--data", "data", type=click.Path(dir_okay=False), default=None, help="Dataset CSV (default: the "
              "demo dataset).")
@click.option("--images", type=click.Path(exists=True, file_okay=False), default=None,
              help="Images root (default: the CSV's folder).")
@device_options
@adapter_option
@app_options
@reports_errors
def tui_command(model, data, images, device, dtype, config_path, color, graphics, theme, colormap, adapter=None):
    """Open the app: pick a sample, see where the model looks, walk layers, heads and tokens."""
    from medgemma_tui.app.session import Session
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.resources import demo_dataset_csv

    config = load_settings(config_path)
    config = with_model_flags(config, device, dtype, adapter)
    if model is not None:
        config = config.with_overrides({"model.name_or_path": model})
    csv_path = data or config.data.csv
    images_root = images or config.data.images
    if csv_path is None:
        csv_path = demo_dataset_csv()  # its image paths are relative to its own folder
        if not os.path.exists(csv_path):
            raise UsageError(f"the demo dataset is missing ({csv_path}); pass --data CSV --images ROOT")
    dataset = load_dataset(csv_path, images_root)
    session = Session.from_dataset(dataset, model_source=config.model.name_or_path, config=config)
    launch(session, config, color, theme, colormap, graphics)


@click.command("open", short_help="The app on a results tree that eval wrote (no model).")
@click.argument("out", type=click.Path(file_okay=False))
@app_options
@reports_errors
def open_command(out, config_path, color, graphics, theme, colormap):
    """Open a results tree written by `medtui eval --export OUT`, or a comparison written by `medtui compare`
    (no model needed)."""
    from medgemma_tui.app.session import Session
    from medgemma_tui.export.comparison_tree import is_comparison

    config = load_settings(config_path)
    if is_comparison(out):
        launch_comparison(out, config, color, colormap)
        return
    session = Session.from_tree(out)
    if not session.items:
        raise UsageError(f"{out} holds no finished samples")
    launch(session, config, color, theme, colormap, graphics)
