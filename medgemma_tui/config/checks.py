"""The checks every config value goes through: each returns the value in its canonical form, or raises a
``ConfigError`` whose one line names the file, the key, what was expected and what was found."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgemma_tui.errors import MedtuiError


class ConfigError(MedtuiError, ValueError):
    """A configuration that cannot be used; the message is one line naming the file and key."""


@dataclass(frozen=True)
class _Where:
    key: str  # dotted, e.g. "decoding.max_new_tokens"
    label: str  # the file, or the command's flags (``schema.FLAGS``)
    base: Path | None  # folder that relative paths are resolved against

    def fail(self, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"'{self.key}' in {self.label} must be {expected}, got {_describe(value)}")


Check = Callable[[Any, _Where], Any]


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


# --- value checks -------------------------------------------------------------------------------------


def _text(value: Any, where: _Where) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.fail("a non-empty string", value)
    return value.strip()


def _optional_text(value: Any, where: _Where) -> str | None:
    return None if value is None else _text(value, where)


def _flag(value: Any, where: _Where) -> bool:
    if not isinstance(value, bool):
        raise where.fail("true or false", value)
    return value


def _integer(low: int | None = None) -> Check:
    def check(value: Any, where: _Where) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.fail("an integer" + (f" >= {low}" if low is not None else ""), value)
        if low is not None and value < low:
            raise where.fail(f"an integer >= {low}", value)
        return value

    return check


def _number(low: float | None = None, high: float | None = None, low_open: bool = False) -> Check:
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"<= {high:g}")
    expected = "a number" + (f" {' and '.join(bounds)}" if bounds else "")

    def check(value: Any, where: _Where) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise where.fail(expected, value)
        if low is not None and (value <= low if low_open else value < low):
            raise where.fail(expected, value)
        if high is not None and value > high:
            raise where.fail(expected, value)
        return float(value)

    return check


def _choice(*options: str, aliases: Mapping[str, str] | None = None) -> Check:
    aliases = dict(aliases or {})

    def check(value: Any, where: _Where) -> str:
        text = str(value).strip().lower() if isinstance(value, str | int) and not isinstance(value, bool) else None
        text = aliases.get(text, text) if text is not None else None
        if text not in options:
            raise where.fail("one of " + ", ".join(options), value)
        return text

    return check


def _device(value: Any, where: _Where) -> str:
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or not re.fullmatch(r"auto|cpu|cuda(:\d+|:auto)?", text):
        raise where.fail("auto, cpu, cuda, cuda:N or cuda:auto (the GPU with the most free memory)", value)
    return text


def _optional_path(value: Any, where: _Where) -> Path | None:
    if value is None:
        return None
    path = Path(value if isinstance(value, os.PathLike) else _text(value, where)).expanduser()
    if where.base is not None and not path.is_absolute():
        path = where.base / path
    return path


def _model_source(value: Any, where: _Where) -> str:
    """A hub id ("google/medgemma-4b-it"), "demo", or a local folder; ./ ../ ~ paths resolve locally."""
    text = str(value) if isinstance(value, os.PathLike) else _text(value, where)
    if text.startswith(("./", "../", "~")) or text in (".", ".."):
        path = Path(text).expanduser()
        if where.base is not None and not path.is_absolute():
            path = where.base / path
        return str(path)
    return text


def _text_list(options: tuple[str, ...] | None = None, allow_none: bool = False) -> Check:
    expected = "an array of " + ("strings from " + ", ".join(options) if options else "non-empty strings")

    def check(value: Any, where: _Where) -> tuple[str, ...] | None:
        if value is None and allow_none:
            return None
        if not isinstance(value, list | tuple) or not value:
            raise where.fail(expected + " (at least one)", value)
        items = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise where.fail(expected, value)
            item = item.strip()
            if options is not None:
                item = item.lower()
                if item not in options:
                    raise where.fail(expected, value)
            items.append(item)
        return tuple(items)

    return check


def _layers(value: Any, where: _Where) -> str | tuple[int, int]:
    expected = '"all" or [start, end] layer indices with 0 <= start < end (end exclusive)'
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    if (isinstance(value, list | tuple) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and 0 <= value[0] < value[1]):
        return (int(value[0]), int(value[1]))
    raise where.fail(expected, value)


def _row(value: Any, where: _Where) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return _choice("decision", "first_answer", "answer", "question")(value, where)


def _optional_count(value: Any, where: _Where) -> int | None:
    return None if value is None else _integer(1)(value, where)


def _auto_or(low: int) -> Check:
    """"auto", or a whole number >= ``low``."""

    def check(value: Any, where: _Where) -> str | int:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if isinstance(value, int) and not isinstance(value, bool) and value >= low:
            return value
        raise where.fail(f'"auto" or a whole number >= {low}', value)

    return check


_auto_or_count = _auto_or(0)
_auto_or_positive = _auto_or(1)


def _key_table(value: Any, where: _Where) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise where.fail("a table of binding id = \"key\"", value)
    keys: dict[str, str] = {}
    for binding, key in value.items():
        if not isinstance(key, str) or not key.strip():
            raise _Where(f"{where.key}.{binding}", where.label, where.base).fail("a key string such as \"ctrl+q\"",
                                                                                key)
        keys[str(binding)] = key.strip()
    return keys


def _option(default: Any, check: Check, doc: str = "") -> Any:
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), hash=False, metadata={"check": check, "doc": doc})
    return field(default=default, metadata={"check": check, "doc": doc})
