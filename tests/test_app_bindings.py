"""Binding ids: what the documentation and the example config tell people to remap must exist."""

from __future__ import annotations

import re
from pathlib import Path

from medgemma_tui.app.keymap import all_bindings, binding_ids

ROOT = Path(__file__).resolve().parents[1]


def example_key_ids(text: str) -> list[str]:
    """The ids named in the ``[app.keys]`` section of a TOML file, commented-out examples included."""
    section = text.split("[app.keys]", 1)[1]
    section = re.split(r"^\[", section, maxsplit=1, flags=re.MULTILINE)[0]
    return re.findall(r"^#?\s*([a-z_]+)\s*=\s*\"", section, flags=re.MULTILINE)


def test_every_binding_has_a_unique_id():
    ids = [b.id for b in all_bindings()]
    assert all(ids)
    assert len(ids) == len(set(ids))
    assert set(ids) == binding_ids()


def test_the_example_config_remaps_only_real_binding_ids():
    ids = example_key_ids((ROOT / "fixtures" / "medtui.example.toml").read_text(encoding="utf-8"))
    assert ids and set(ids) <= binding_ids(), sorted(set(ids) - binding_ids())


def test_the_readme_names_only_real_binding_ids():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    named = re.findall(r"\[app\.keys\]\s+([a-z_]+)\s*=", text)
    assert named and set(named) <= binding_ids(), sorted(set(named) - binding_ids())


def test_an_unknown_binding_id_in_the_config_is_an_error_naming_it_and_the_ids(tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    config = tmp_path / "keys.toml"
    config.write_text('[app.keys]\nnext_layer = "l"\nquit = "ctrl+q"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config)])
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert "next_layer: not a binding id" in line and "layer_next" in line and "quit" in line


def test_a_remap_onto_a_key_another_binding_of_the_screen_holds_is_an_error_naming_both(tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    config = tmp_path / "keys.toml"
    config.write_text('[app.keys]\nlayer_next = "q"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "quit and layer_next on 'q'" in lines[0]


def test_remaps_that_keep_every_key_apart_are_no_clash_and_a_swap_of_two_keys_is_none_either():
    from medgemma_tui.app.keymap import key_clashes

    assert key_clashes({}) == []  # the defaults' own overlaps (a screen's escape over the app's) are deliberate
    assert key_clashes({"layer_next": "l", "quit": "ctrl+q"}) == []
    assert key_clashes({"layer_next": "left_square_bracket", "layer_prev": "right_square_bracket"}) == []
    assert key_clashes({"gallery_sort": "?"}) == ["help and gallery_sort on 'question_mark'"]  # "?" by its name
    assert key_clashes({"layer_all": "x"}) == ["layer_all and run_all on 'x'"]
