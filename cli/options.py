"""Options shared by the commands that load a model."""

from __future__ import annotations

import click


def adapter_option(command):
    """``--adapter PATH``: a PEFT LoRA adapter folder merged into the model (``[model] adapter``)."""
    return click.option(
        "--adapter", "adapter", type=click.Path(), default=None, metavar="PATH",
        help="A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) applied to the model "
             "(merged into its weights); needs `pip install 'medgemma-tui[peft]'`.",
    )(command)


def model_options(command):
    command = adapter_option(command)
    command = click.option(
        "--dtype", type=click.Choice(["auto", "bf16", "fp16", "fp32"]), default="auto", show_default=True,
        help="Weights dtype: bf16 on a GPU, fp32 on the CPU by default.",
    )(command)
    command = click.option(
        "--device", default="auto", show_default=True,
        help="auto, cpu, cuda[:N] or cuda:auto (the GPU with the most free memory).",
    )(command)
    command = click.option(
        "--model", "model", default=None, metavar="M",
        help="A local model folder, a hub id (e.g. google/medgemma-4b-it), or 'demo' (the default).",
    )(command)
    return command
