"""Reading a TOML config file: its text, its TOML errors with line and column, and the keys it set.

A file whose text is a JSON object is the original system's config (``config.original``): its keys are
mapped onto medtui's, and ``Config.ignored`` names those left out.

Relative paths in [data] (and a ``model.name_or_path`` starting with ``.`` or ``~``) are resolved
against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path

from medgemma_tui.config.checks import ConfigError
from medgemma_tui.config.original import is_original, read_original
from medgemma_tui.config.schema import Config, _build


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read a TOML config; None gives the defaults."""
    if path is None:
        return Config()
    source = Path(path).expanduser()
    if not source.exists():
        raise ConfigError(f"config file not found: {source}")
    if source.is_dir():
        raise ConfigError(f"config path is a directory, not a TOML file: {source}")
    try:
        text = source.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config ({exc.strerror or exc})") from exc
    ignored: list[str] = []
    if is_original(text):  # the original system's JSON config (config.original)
        data, ignored = read_original(text, str(source))
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: invalid TOML {_toml_position(exc)}") from exc
    config = _build(data, str(source), base=source.resolve().parent)
    explicit = frozenset(f"{section}.{key}" for section, table in data.items() for key in table)
    return dataclasses.replace(config, source=source, explicit=explicit, ignored=tuple(ignored))


def _toml_position(exc: tomllib.TOMLDecodeError) -> str:
    """'at line 3, column 7: <reason>' from tomllib's message (3.11 has no lineno attribute)."""
    message = str(exc)
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    reason = getattr(exc, "msg", None)
    if line is None:
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if match:
            line, column = int(match.group(1)), int(match.group(2))
            reason = message[: match.start()].strip()
        elif "(at end of document)" in message:
            return "at end of document: " + message.replace("(at end of document)", "").strip()
    if line is None:
        return ": " + re.sub(r"\s+", " ", message).strip()
    reason = re.sub(r"\s+", " ", reason or message).strip()
    return f"at line {line}, column {column}: {reason}"
