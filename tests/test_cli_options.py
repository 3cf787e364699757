"""``--device`` and ``--dtype``: one option in every command that loads a model, unset leaving the config's
``[model]`` value, given overriding it, and the value it ends with is the one the model is loaded with."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main
from medgemma_tui.errors import MedtuiError
from medgemma_tui.resources import demo_images_dir

DEMO_FILM = demo_images_dir() / "p0001.png"
MODEL_COMMANDS = ("check", "eval", "tui", "bench")


class Stopped(MedtuiError):
    """Raised by the stand-in loader once it has seen what it was asked for."""


@pytest.fixture
def loads(monkeypatch):
    """Every (device, dtype) a command asks a model for; the command stops there (exit 2, no model loaded)."""
    seen: list[tuple[str, str]] = []

    def load_for_capture(source, device, dtype, **_):
        seen.append((device, dtype))
        raise Stopped("stopped before loading")

    def launch(session, config, *args, **kwargs):
        seen.append((config.model.device, config.model.dtype))
        raise Stopped("stopped before the app")

    def run_bench(device, dtype, **_):
        seen.append((device, dtype))
        raise Stopped("stopped before the bench")

    monkeypatch.setattr("medgemma_tui.engine.loading.load_for_capture", load_for_capture)
    monkeypatch.setattr("cli.app.launch", launch)
    monkeypatch.setattr("medgemma_tui.bench.run.run_bench", run_bench)
    return seen


def command_line(name: str, tmp_path, config=None) -> list[str]:
    given = ["--config", str(config)] if config else []
    return {"check": ["check", str(DEMO_FILM), "-q", "Is there a nodule?", *given],
            "eval": ["eval", "--export", str(tmp_path / "out"), "--limit", "1", "--no-resume", *given],
            "tui": ["tui", *given],
            "bench": ["bench", "--shape", "demo"]}[name]


@pytest.mark.parametrize("name", MODEL_COMMANDS)
def test_each_model_command_loads_on_the_device_and_dtype_given(name, tmp_path, loads):
    result = CliRunner().invoke(main, [*command_line(name, tmp_path), "--device", "cpu", "--dtype", "fp16"])
    assert "stopped before" in result.output and result.exit_code == 2, result.output
    assert loads == [("cpu", "fp16")]


@pytest.mark.parametrize("name", ("check", "eval", "tui"))
def test_unset_device_and_dtype_keep_the_configs_and_given_ones_override_it(name, tmp_path, loads):
    config = tmp_path / "medtui.toml"
    config.write_text('[model]\ndevice = "cpu"\ndtype = "bf16"\n')
    CliRunner().invoke(main, command_line(name, tmp_path, config))
    CliRunner().invoke(main, [*command_line(name, tmp_path, config), "--device", "auto", "--dtype", "auto"])
    assert loads == [("cpu", "bf16"), ("auto", "auto")]


def test_bench_without_the_flags_loads_on_auto(tmp_path, loads):
    CliRunner().invoke(main, command_line("bench", tmp_path))
    assert loads == [("auto", "auto")]


@pytest.mark.parametrize("name", MODEL_COMMANDS)
def test_a_device_no_torch_knows_is_one_line_before_any_loading(name, tmp_path, loads):
    result = CliRunner().invoke(main, [*command_line(name, tmp_path), "--device", "gpu0"])
    assert result.exit_code == 2 and loads == []
    assert result.output.strip().splitlines() == [result.output.strip().splitlines()[-1]]
    assert "model.device" in result.output and "cuda:N" in result.output and "Traceback" not in result.output


def test_every_model_command_offers_the_same_device_and_dtype_help():
    helps = {name: {param.name: param.help for param in main.commands[name].params if param.name in ("device", "dtype")}
             for name in MODEL_COMMANDS}
    assert all(len(found) == 2 for found in helps.values()), helps
    assert len({tuple(sorted(found.items())) for found in helps.values()}) == 1
