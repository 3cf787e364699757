"""Options shared by the commands that load a model, declared once: the same flag, default and help in each."""

from __future__ import annotations

import click

from cli.errors import UsageError
from medgemma_tui.config.schema import DTYPE_CHOICES


def adapter_option(command):
    """``--adapter PATH``: a PEFT LoRA adapter folder merged into the model (``[model] adapter``)."""
    return click.option(
        "--adapter", "adapter", type=click.Path(), default=None, metavar="PATH",
        help="A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) applied to the model "
             "(merged into its weights); needs `pip install 'medgemma-tui[peft]'`.",
    )(command)


def device_options(command):
    """``--device`` and ``--dtype``. Unset (None), each leaves the config's ``[model]`` value, itself auto
    unless the file says otherwise; given, it overrides the file (``with_model_flags``)."""
    command = click.option(
        "--dtype", type=click.Choice(DTYPE_CHOICES), default=None,
        help="Weights dtype: auto is bf16 on a GPU, fp32 on the CPU. Default: the config's [model] dtype, else auto.",
    )(command)
    command = click.option(
        "--device", default=None, metavar="DEVICE",
        help="auto, cpu, cuda[:N] or cuda:auto (the GPU with the most free memory). Default: the config's "
             "[model] device, else auto.",
    )(command)
    return command


def with_model_flags(config, device: str | None = None, dtype: str | None = None, adapter: str | None = None):
    """``config`` with the ``--device``, ``--dtype`` and ``--adapter`` that were given over its ``[model]`` keys,
    each checked as the file's value is (a bad ``--device`` is a one-line ``ConfigError``)."""
    flags = {"model.device": device, "model.dtype": dtype, "model.adapter": adapter}
    return config.with_overrides({key: value for key, value in flags.items() if value is not None})


def model_options(command):
    """``--model``, ``--device``, ``--dtype`` and ``--adapter``."""
    command = adapter_option(command)
    command = device_options(command)
    command = click.option(
        "--model", "model", default=None, metavar="M",
        help="A local model folder, a hub id (e.g. google/medgemma-4b-it), or 'demo' (the default).",
    )(command)
    return command


def check_map_settings(config) -> None:
    """The config's map view and colormap, each checked before any model loads (one line where unknown)."""
    from medgemma_tui.analysis.views import VIEWS
    from medgemma_tui.colormaps import get_colormap

    view = config.analysis.map_view
    if view not in VIEWS:
        raise UsageError(f"analysis.map_view {view!r} is not a view (known: {', '.join(VIEWS)})")
    get_colormap(config.visualization.colormap)  # an unknown name: one line, before any model loads
