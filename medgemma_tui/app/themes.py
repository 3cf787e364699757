"""App themes registered from ``themes/*.toml``: one file per theme, the fields of ``textual.theme.Theme``."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

from textual.theme import Theme

from medgemma_tui.resources import themes_dir

DEFAULT_THEME = "medtui-dark"
_FIELDS = {f.name for f in fields(Theme)}


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message names the file."""


def theme_from_file(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ThemeFileError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ThemeFileError(f"{path}: unknown theme keys {', '.join(unknown)}")
    if "name" not in data or "primary" not in data:
        raise ThemeFileError(f"{path}: a theme needs at least 'name' and 'primary'")
    return Theme(**data)


def load_themes(folder: Path | None = None) -> dict[str, Theme]:
    """Every ``*.toml`` theme in ``folder`` (the shipped ``themes/`` by default), by name."""
    folder = themes_dir() if folder is None else folder
    themes = {}
    for path in sorted(folder.glob("*.toml")):
        theme = theme_from_file(path)
        themes[theme.name] = theme
    return themes


def use_themes(app, wanted: str) -> str | None:
    """Register every theme with ``app`` and show ``wanted``; an unknown name keeps the default and
    returns the line saying so."""
    for theme in load_themes().values():
        app.register_theme(theme)
    try:
        app.theme = wanted
    except Exception:  # an unknown theme name
        app.theme = DEFAULT_THEME
        return f"unknown theme {wanted!r}; using {DEFAULT_THEME}"
    return None


def hex_to_rgb(value: str | None, default: tuple[int, int, int] = (0, 0, 0)) -> tuple[int, int, int]:
    if not value or not value.startswith("#") or len(value) != 7:
        return default
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
