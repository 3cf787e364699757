"""The JSON config of the system medtui replaces (UNHSAILLab/lvlm-interpret-medgemma,
``medgemma4b_config.json``) read as medtui's settings.

``from_original(data)`` gives the TOML-shaped tables (``{section: {key: value}}``) that ``schema._build``
checks like a file's, and the dotted names of the original's keys that have no counterpart, each with
why (README: "Coming from the original system" has the table). ``to_toml`` writes those tables as the
TOML file ``medtui config convert`` leaves for the user to keep.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medgemma_tui.config.checks import ConfigError
from medgemma_tui.registry import ONE_PIXEL, ROBUSTNESS

# original key -> why it is not carried over (keys whose value is medtui's own behaviour are not listed)
NO_COUNTERPART = {
    "seeds": "medtui decodes greedily; the studies take their own seeds",
    "decoding.temperature": "medtui decodes greedily, as temperature 0 asks",
    "decoding.do_sample": "medtui decodes greedily, as do_sample false asks",
    "paths.output_dir": "give the tree with --export",
    "batch_processing.save_every": "every row is written as it finishes",
    "logging": "progress goes to stderr, the run's record to run.json",
    "architecture_info": "read from the model's own config",
    "eval.hard_positive_analysis": "hard-positive groups are always analysed",
    "eval.robustness.run_paraphrases": "paraphrase consistency comes from the CSV's variants",
    "visualization.save_grids": "grids are always written",
}
BRIGHTNESS_MID = 128.0  # a brightness factor f is read as the offset (f - 1) x mid-grey on the 0-255 scale


def is_original(text: str) -> bool:
    """Whether a config file's text is JSON (the original's format) rather than TOML."""
    return text.lstrip().startswith("{")


def read_original(text: str, label: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(medtui's tables, the ignored keys with why) of the original's JSON config text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{label}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: a JSON config must be an object {{...}}, got {type(data).__name__}")
    return from_original(data, label)


def from_original(data: Mapping[str, Any], label: str = "config") -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The original's keys mapped onto medtui's sections; the second item names each key left out, and why."""
    tables: dict[str, dict[str, Any]] = {}
    ignored: list[str] = []

    def put(dotted: str, value: Any) -> None:
        section, key = dotted.split(".")
        tables.setdefault(section, {})[key] = value

    def leave(dotted: str, why: str | None = None) -> None:
        """Name a key left out, and why (by default ``NO_COUNTERPART``'s reason, else 'unknown to medtui')."""
        ignored.append(f"{dotted} ({why or NO_COUNTERPART.get(dotted, 'unknown to medtui')})")

    for name, value in data.items():
        if name == "model_id":
            put("model.name_or_path", value)
        elif name == "paths":
            for key, path in _table(value, name, label).items():
                target = {"data_csv": "data.csv", "image_root": "data.images"}.get(key)
                if target and path:
                    put(target, path)
                else:
                    leave(f"paths.{key}")
        elif name == "decoding":
            for key, setting in _table(value, name, label).items():
                if key == "max_new_tokens":
                    put("decoding.max_new_tokens", setting)
                else:
                    leave(f"decoding.{key}")
        elif name == "eval":
            _eval_section(_table(value, name, label), put, leave, label)
        elif name == "batch_processing":
            for key, setting in _table(value, name, label).items():
                if key == "sample_limit":
                    if setting is not None:
                        put("data.limit", setting)
                elif key == "batch_size":
                    put("decoding.batch_size", setting)
                elif key == "skip_existing":
                    if setting is False:
                        leave("batch_processing.skip_existing", "false: give --no-resume")
                else:
                    leave(f"batch_processing.{key}")
        elif name == "visualization":
            for key, setting in _table(value, name, label).items():
                target = {"colormap": "visualization.colormap", "overlay_alpha": "visualization.overlay_alpha",
                          "save_overlays": "visualization.save_overlays",
                          "save_full_visualizations": "visualization.save_full"}.get(key)
                if target:
                    put(target, setting)
                elif key == "save_grids" and setting is not False:
                    continue
                else:
                    leave(f"visualization.{key}")
        else:
            leave(name)
    return tables, ignored


def _table(value: Any, name: str, label: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"'{name}' in {label} must be an object, got {type(value).__name__}")
    return value


def _eval_section(section: Mapping[str, Any], put, leave, label: str) -> None:
    for key, value in section.items():
        if key == "target_terms":
            put("analysis.terms", value)
        elif key == ROBUSTNESS:  # the original's section of the same name
            _robustness(_table(value, "eval.robustness", label), put, leave, label)
        else:
            leave(f"eval.{key}")


def _robustness(section: Mapping[str, Any], put, leave, label: str) -> None:
    """Its perturbation list onto [robustness]: the ones it names are set, every other one turned off."""
    for key, value in section.items():
        if key == "run_perturbations":
            put("robustness.enabled", value)
        elif key == "perturbations":
            # medtui's defaults add blur, rotation, random pixels and pad/crop: the original ran only its list
            for off, identity in (("noise_sigma", 0.0), ("contrast", 1.0), ("brightness", 0.0), ("blur_sigma", 0.0),
                                  ("rotation_deg", 0.0), ("pixels_changed", 0)):
                put(f"robustness.{off}", identity)
            put("robustness.preprocessing", ["resize"])
            for item in value if isinstance(value, list) else []:
                _perturbation(item, put, leave, label)
        else:
            leave(f"eval.robustness.{key}")


def _perturbation(item: Any, put, leave, label: str) -> None:
    if not isinstance(item, Mapping):
        raise ConfigError(f"a perturbation in {label} must be an object with 'type', got {item!r}")
    kind, params = item.get("type"), item.get("params") or {}
    where = f"eval.robustness.perturbations[{kind}]"
    if kind == "gaussian_noise" and "sigma" in params:
        put("robustness.noise_sigma", params["sigma"])
    elif kind == "contrast" and "factor" in params:
        put("robustness.contrast", params["factor"])
    elif kind == "brightness" and "factor" in params:
        factor = params["factor"]
        if isinstance(factor, int | float) and not isinstance(factor, bool) and math.isfinite(factor):
            put("robustness.brightness", round((factor - 1.0) * BRIGHTNESS_MID, 3))
        else:
            raise ConfigError(f"'{where}.factor' in {label} must be a number, got {factor!r}")
    elif kind == ONE_PIXEL:  # the original's perturbation of the same name
        put("robustness.one_pixel", params.get("num_pixels", 1))
        if "epsilon" in params:  # the largest change of a pixel, as a share of the 0-255 range
            epsilon = params["epsilon"]
            if not isinstance(epsilon, int | float) or isinstance(epsilon, bool) or not 0 < epsilon <= 1:
                raise ConfigError(f"'{where}.epsilon' in {label} must be a number in (0, 1], got {epsilon!r}")
            put("robustness.one_pixel_max_delta", round(float(epsilon) * 255.0, 3))
    else:
        leave(where, "unknown perturbation")


# ---- TOML ----------------------------------------------------------------------------------------------


def to_toml(tables: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """``{section: {key: value}}`` as TOML text (strings, numbers, booleans and arrays of them)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for section, table in tables.items():
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} as TOML")
