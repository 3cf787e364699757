"""The run configuration: a TOML file read into nested frozen dataclasses, every key checked.

Sections: [model] [data] [decoding] [analysis] [robustness] [faithfulness] [visualization] [app]
(with [app.keys]). Every key has a default, so an empty file (or no file) is a valid configuration.
``fixtures/medtui.example.toml`` lists every key with a comment.

Unknown sections and keys are errors that name them; so are wrong types. Relative paths in [data]
(and a ``model.name_or_path`` starting with ``.`` or ``~``) are resolved against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration that cannot be used; the message is one line naming the file and key."""


@dataclass(frozen=True)
class _Where:
    key: str  # dotted, e.g. "decoding.max_new_tokens"
    label: str  # the file, or "overrides"
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
    if text is None or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise where.fail("auto, cpu, cuda or cuda:N", value)
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
    return _choice("first_answer", "answer", "question")(value, where)


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


# --- sections -----------------------------------------------------------------------------------------

DEFAULT_MODEL = "google/medgemma-4b-it"


@dataclass(frozen=True)
class ModelConfig:
    name_or_path: str = _option(DEFAULT_MODEL, _model_source)  # hub id, local folder, or "demo"
    device: str = _option("auto", _device)  # auto | cpu | cuda | cuda:N
    dtype: str = _option("auto", _choice("auto", "bf16", "fp16", "fp32", aliases={
        "bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}))
    revision: str | None = _option(None, _optional_text)  # hub branch, tag or commit; None = default


@dataclass(frozen=True)
class DataConfig:
    csv: Path | None = _option(None, _optional_path)  # the dataset CSV
    images: Path | None = _option(None, _optional_path)  # images root; None = the CSV's folder


@dataclass(frozen=True)
class DecodingConfig:
    max_new_tokens: int = _option(24, _integer(1))


@dataclass(frozen=True)
class AnalysisConfig:
    terms: tuple[str, ...] | None = _option(None, _text_list(allow_none=True))  # None = default lexicon
    map_view: str = _option("answer", _text)
    layers: str | tuple[int, int] = _option("all", _layers)  # "all" or (start, end), end exclusive
    default_row: str | int = _option("first_answer", _row)  # first_answer | answer | question | row index

    @property
    def layer_span(self) -> tuple[int, int] | None:
        """None for all layers, else (start, end) with end exclusive (analysis.views.MapSpec.layers)."""
        return None if self.layers == "all" else self.layers


PREPROCESSING = ("pad", "crop", "resize")


@dataclass(frozen=True)
class RobustnessConfig:
    enabled: bool = _option(False, _flag)
    noise_sigma: float = _option(8.0, _number(0))  # Gaussian noise, on the 0-255 scale
    contrast: float = _option(0.8, _number(0, low_open=True))  # factor about the mean
    brightness: float = _option(20.0, _number())  # offset on the 0-255 scale
    blur_sigma: float = _option(1.5, _number(0))  # Gaussian blur, pixels
    rotation_deg: float = _option(3.0, _number(0, 180))
    pixels_changed: int = _option(20, _integer(0))  # pixels set at random (sparse perturbation)
    seed: int = _option(0, _integer(0))
    preprocessing: tuple[str, ...] = _option(("pad", "crop"), _text_list(PREPROCESSING))


FAITHFULNESS_BASELINES = ("mean", "zero", "blur")


@dataclass(frozen=True)
class FaithfulnessConfig:
    enabled: bool = _option(False, _flag)
    steps: int = _option(8, _integer(1))  # deletion / insertion steps
    baseline: str = _option("mean", _choice(*FAITHFULNESS_BASELINES))  # what removed cells become
    seed: int = _option(0, _integer(0))


@dataclass(frozen=True)
class VisualizationConfig:
    colormap: str = _option("magma", _text)
    overlay_alpha: float = _option(0.45, _number(0, 1))
    save_overlays: bool = _option(True, _flag)
    save_full: bool = _option(True, _flag)
    save_masks: bool = _option(True, _flag)


COLOR_MODES = ("auto", "truecolor", "256", "16", "none")
GRAPHICS_MODES = ("off", "auto", "sixel", "kitty")  # how the app draws the X-ray (app/graphics.py)


@dataclass(frozen=True)
class AppConfig:
    theme: str = _option("medtui-dark", _text)
    color: str = _option("auto", _choice(*COLOR_MODES))
    graphics: str = _option("off", _choice(*GRAPHICS_MODES))  # the X-ray through sixel / kitty graphics
    keys: dict[str, str] = _option({}, _key_table)  # binding id -> key, e.g. {"quit": "ctrl+q"}


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "decoding": DecodingConfig,
    "analysis": AnalysisConfig,
    "robustness": RobustnessConfig,
    "faithfulness": FaithfulnessConfig,
    "visualization": VisualizationConfig,
    "app": AppConfig,
}


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    faithfulness: FaithfulnessConfig = field(default_factory=FaithfulnessConfig)
    visualization: VisualizationConfig = field(default_factory=VisualizationConfig)
    app: AppConfig = field(default_factory=AppConfig)
    source: Path | None = field(default=None, compare=False)  # the TOML file, if any
    # "section.key" names the file itself set (defaults do not count), e.g. to tell a config that
    # chose MedGemma from one that only set [analysis]
    explicit: frozenset[str] = field(default=frozenset(), compare=False)

    def sets(self, dotted: str) -> bool:
        """Whether the config file itself set ``section.key``."""
        return dotted in self.explicit

    def with_overrides(self, overrides: Mapping[str, Any] | None = None, /, **dotted: Any) -> Config:
        """A new Config with "section.key" values replaced, checked like the file's values.

        ``{"app.keys.quit": "ctrl+q"}`` sets one key binding and keeps the others. Paths are taken as
        given (relative to the current directory), not resolved against the config file.
        """
        changes: dict[str, dict[str, Any]] = {}
        for name, value in {**dict(overrides or {}), **dotted}.items():
            section, _, key = name.partition(".")
            cls = _section_class(section, "overrides", name)
            if section == "app" and key.startswith("keys."):
                binding = key[len("keys."):]
                current = changes.get("app", {}).get("keys", self.app.keys)
                value = {**current, binding: value}
                key = "keys"
            spec = _field_named(cls, key, section, "overrides")
            check = spec.metadata["check"]
            changes.setdefault(section, {})[key] = check(value, _Where(f"{section}.{key}", "overrides", None))
        updated = {section: dataclasses.replace(getattr(self, section), **values)
                   for section, values in changes.items()}
        return dataclasses.replace(self, **updated)

    def to_json(self) -> dict[str, dict[str, Any]]:
        """Plain JSON-able dict, {section: {key: value}} (paths as strings, tuples as lists)."""
        return {section: {spec.name: _jsonable(getattr(getattr(self, section), spec.name))
                          for spec in dataclasses.fields(cls)}
                for section, cls in SECTIONS.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], label: str = "run.json") -> Config:
        """The inverse of to_json (reads the config block of a results tree's run.json)."""
        return _build(data, label, base=None)


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
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML {_toml_position(exc)}") from exc
    config = _build(data, str(source), base=source.resolve().parent)
    explicit = frozenset(f"{section}.{key}" for section, table in data.items() for key in table)
    return dataclasses.replace(config, source=source, explicit=explicit)


# --- building -----------------------------------------------------------------------------------------


def _build(data: Mapping[str, Any], label: str, base: Path | None) -> Config:
    sections: dict[str, Any] = {}
    for section, table in data.items():
        cls = _section_class(section, label)
        if not isinstance(table, Mapping):
            raise ConfigError(f"'{section}' in {label} must be a table [{section}], got {_describe(table)}")
        values = {}
        for key, value in table.items():
            spec = _field_named(cls, key, section, label)
            values[key] = spec.metadata["check"](value, _Where(f"{section}.{key}", label, base))
        sections[section] = cls(**values)
    return Config(**sections)


def _section_class(section: str, label: str, dotted: str | None = None) -> type:
    if section not in SECTIONS:
        known = ", ".join(SECTIONS)
        if dotted is not None:
            raise ConfigError(f"unknown key '{dotted}' in {label} (known sections: {known})")
        raise ConfigError(f"unknown section '[{section}]' in {label} (known: {known})")
    return SECTIONS[section]


def _field_named(cls: type, key: str, section: str, label: str) -> dataclasses.Field:
    for spec in dataclasses.fields(cls):
        if spec.name == key:
            return spec
    known = ", ".join(spec.name for spec in dataclasses.fields(cls))
    raise ConfigError(f"unknown key '{section}.{key}' in {label} (known: {known})")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


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
