"""What a run configuration is: its sections, their keys with defaults and checks, and ``Config``.

Sections: [model] [data] [decoding] [prompt] [analysis] [robustness] [faithfulness] [visualization] [app]
(with [app.keys]). Every key has a default, so an empty file (or no file) is a valid configuration;
``fixtures/medtui.example.toml`` lists every key with a comment. Unknown sections and keys are errors
that name them; so are wrong types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgemma_tui.config.checks import (
    ConfigError,
    _auto_or_count,
    _auto_or_positive,
    _choice,
    _describe,
    _device,
    _flag,
    _integer,
    _key_table,
    _layers,
    _model_source,
    _number,
    _option,
    _optional_count,
    _optional_path,
    _optional_text,
    _row,
    _text,
    _text_list,
    _Where,
)
from medgemma_tui.json_values import jsonable

DEFAULT_MODEL = "demo"  # the embedded demo bundle, for every command alike
DTYPE_CHOICES = ("auto", "bf16", "fp16", "fp32")  # the weights' dtype; auto: bf16 on a GPU, fp32 on the CPU


@dataclass(frozen=True)
class ModelConfig:
    name_or_path: str = _option(DEFAULT_MODEL, _model_source)  # hub id, local folder, or "demo"
    device: str = _option("auto", _device)  # auto | cpu | cuda | cuda:N | cuda:auto (the GPU with most free memory)
    dtype: str = _option("auto", _choice(*DTYPE_CHOICES, aliases={
        "bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}))
    revision: str | None = _option(None, _optional_text)  # hub branch, tag or commit; None = default
    adapter: Path | None = _option(None, _optional_path)  # a PEFT LoRA adapter folder merged into the model


@dataclass(frozen=True)
class DataConfig:
    csv: Path | None = _option(None, _optional_path)  # the dataset CSV
    images: Path | None = _option(None, _optional_path)  # images root; None = the CSV's folder
    limit: int | None = _option(None, _optional_count)  # only the first N rows (--limit); None = every row


@dataclass(frozen=True)
class DecodingConfig:
    max_new_tokens: int = _option(128, _integer(1))  # MedGemma answers in sentences of 20 to 100 tokens
    # rows of one film answered by one generate, each record the same as alone: "auto" is 1 on a CPU and
    # on a GPU as many as half its free memory holds, at most 8 (engine.extract.auto_batch_size)
    batch_size: str | int = _option("auto", _auto_or_positive)


PROMPT_ORDERS = ("text_first", "image_first")  # where the image sits in the user turn, after or before the text
GENERIC_QUESTION = "Describe the image."  # the relative view's generic prompt


@dataclass(frozen=True)
class PromptConfig:
    """The chat prompt put to the model: a research variable, recorded in run.json and in every meta."""

    system: str | None = _option(None, _optional_text)  # a system turn; None = none
    instruction: str | None = _option(None, _optional_text)  # appended to the question, e.g. "Answer yes or no."
    order: str = _option("text_first", _choice(*PROMPT_ORDERS))  # text_first: the question, then the image
    generic_question: str = _option(GENERIC_QUESTION, _text)  # the relative view's generic prompt


# what a hedge that leans towards a finding ("suggestive of pneumonia") reads as (analysis.answers): left
# "uncertain", as the CheXpert labeler reads it, or "lean", the label it leans to, as many VQA studies count it
HEDGED_READINGS = ("uncertain", "lean")


@dataclass(frozen=True)
class AnalysisConfig:
    terms: tuple[str, ...] | None = _option(None, _text_list(allow_none=True))  # None = default lexicon
    map_view: str = _option("answer", _text)
    layers: str | tuple[int, int] = _option("all", _layers)  # "all" or (start, end), end exclusive
    # decision (the row that produced the token carrying the verdict) | first_answer | answer | question | index
    default_row: str | int = _option("decision", _row)
    pointing_tolerance_px: float = _option(15.0, _number(0))  # pointing game tolerance, px (analysis.grounding)
    hedged_answers: str = _option(HEDGED_READINGS[0], _choice(*HEDGED_READINGS))  # README: Answers

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
    # the one-pixel attack (Su et al. 2019; pipeline/studies/one_pixel.py): k pixels inside the lungs searched
    # by differential evolution; 0 = off
    one_pixel: int = _option(0, _integer(0))
    one_pixel_max_delta: float = _option(255.0, _number(0, 255, low_open=True))  # a pixel's largest change, 0-255
    one_pixel_population: int = _option(10, _integer(1))  # candidates per generation per searched number (popsize)
    one_pixel_generations: int = _option(8, _integer(0))  # generations after the first population (maxiter)
    one_pixel_batch: int = _option(16, _integer(1))  # candidate films per forward pass


FAITHFULNESS_BASELINES = ("mean", "zero", "blur")


@dataclass(frozen=True)
class FaithfulnessConfig:
    enabled: bool = _option(False, _flag)
    steps: int = _option(8, _integer(1))  # deletion / insertion steps
    baseline: str = _option("mean", _choice(*FAITHFULNESS_BASELINES))  # what removed cells become
    seed: int = _option(0, _integer(0))
    random_orders: int = _option(8, _integer(1))  # seeded random orders, the baseline and its spread


FIGURE_FORMATS = ("png", "pdf", "svg")  # what matplotlib writes for export.figures


@dataclass(frozen=True)
class VisualizationConfig:
    colormap: str = _option("magma", _text)
    overlay_alpha: float = _option(0.45, _number(0, 1))
    save_overlays: bool = _option(True, _flag)
    save_full: bool = _option(True, _flag)
    save_masks: bool = _option(True, _flag)
    # analysis/*.png, the dataset plots (the tables and summary.json are always written): off for shards
    # that `medtui merge` will summarise again, or quick runs
    save_plots: bool = _option(True, _flag)
    formats: tuple[str, ...] = _option(("png",), _text_list(FIGURE_FORMATS))  # of every figure: png, pdf, svg
    dpi: float = _option(150.0, _number(10, 1200))  # resolution of the raster figures (300 for print)


COLOR_MODES = ("auto", "truecolor", "256", "16", "none")
GRAPHICS_MODES = ("off", "auto", "sixel", "kitty")  # how the app draws the X-ray (app/graphics.py)


@dataclass(frozen=True)
class ExportConfig:
    # worker processes that write each row's files while the model answers the next rows: "auto" is one
    # on a GPU host and none on a CPU (where the model already uses every core)
    writers: str | int = _option("auto", _auto_or_count)


@dataclass(frozen=True)
class AppConfig:
    theme: str = _option("medtui-dark", _text)
    color: str = _option("auto", _choice(*COLOR_MODES))
    graphics: str = _option("off", _choice(*GRAPHICS_MODES))  # the X-ray through sixel / kitty graphics
    keys: dict[str, str] = _option({}, _key_table)  # binding id -> key, e.g. {"quit": "ctrl+q"}


METHOD_NAMES = ("occlusion", "rise", "ig", "gradcampp", "gradient", "gradcam")  # engine.attribution.methods
SANITY_METHODS = ("answer", *METHOD_NAMES)


def _names_or_none(options: tuple[str, ...]):
    """An array of names from ``options``, the empty array included (no method)."""
    named = _text_list(options)

    def check(value: Any, where: _Where) -> tuple[str, ...]:
        return () if isinstance(value, list | tuple) and not value else named(value, where)

    return check


@dataclass(frozen=True)
class MethodsConfig:
    """Attribution methods beside attention, the heads that localise, and the sanity checks."""

    names: tuple[str, ...] = _option((), _names_or_none(METHOD_NAMES))  # maps added to each row in `medtui eval`
    batch_size: int = _option(16, _integer(1))  # sequences per forward (occlusion, RISE) or path points (IG)
    seed: int = _option(0, _integer(0))  # RISE masks and the randomised layers
    occlusion_window: int = _option(1, _integer(1))  # cells per side of the occluding square
    occlusion_input: str = _option("pixels", _choice("pixels", "tokens"))  # occlude film pixels, or image tokens
    occlusion_baseline: str = _option("mean", _choice("mean", "zero", "blur"))  # what an occluded cell becomes
    rise_masks: int = _option(512, _integer(1))
    rise_cells: int = _option(8, _integer(1))  # cells per side of RISE's coarse random grid
    rise_keep: float = _option(0.5, _number(0, 0.95, low_open=True))  # chance a coarse cell is kept
    ig_steps: int = _option(32, _integer(1))  # integrated-gradients path points to start with (midpoint rule)
    ig_tolerance: float = _option(0.05, _number(0, 1, low_open=True))  # completeness gap allowed, over |f(x) - f(b)|
    ig_max_steps: int = _option(864, _integer(1))  # steps are tripled until complete or past this
    ig_baseline: str = _option("blur", _choice("blur", "black"))  # where the path starts
    heads: bool = _option(False, _flag)  # per layer x head pointing and mass-in-box (analysis/heads.csv)
    top_heads: int = _option(4, _integer(1))  # k of the top-heads view
    sanity: bool = _option(False, _flag)  # cascading randomisation (analysis/sanity.csv)
    sanity_methods: tuple[str, ...] = _option(("answer", "gradient", "gradcam"), _text_list(SANITY_METHODS))
    sanity_vision: bool = _option(True, _flag)  # also randomise the vision tower, after the decoder


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "decoding": DecodingConfig,
    "prompt": PromptConfig,
    "analysis": AnalysisConfig,
    "robustness": RobustnessConfig,
    "faithfulness": FaithfulnessConfig,
    "visualization": VisualizationConfig,
    "export": ExportConfig,
    "app": AppConfig,
    "methods": MethodsConfig,
}


# where ``with_overrides`` values come from, as its errors name it: a command's flags, in the user's words
FLAGS = "the command's flags"


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    faithfulness: FaithfulnessConfig = field(default_factory=FaithfulnessConfig)
    visualization: VisualizationConfig = field(default_factory=VisualizationConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    app: AppConfig = field(default_factory=AppConfig)
    methods: MethodsConfig = field(default_factory=MethodsConfig)
    source: Path | None = field(default=None, compare=False)  # the TOML file, if any
    # keys of a JSON config of the original system that have no counterpart, each with why (config.original)
    ignored: tuple[str, ...] = field(default=(), compare=False)
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
            cls = _section_class(section, FLAGS, name)
            if section == "app" and key.startswith("keys."):
                binding = key[len("keys."):]
                current = changes.get("app", {}).get("keys", self.app.keys)
                value = {**current, binding: value}
                key = "keys"
            spec = _field_named(cls, key, section, FLAGS)
            check = spec.metadata["check"]
            changes.setdefault(section, {})[key] = check(value, _Where(f"{section}.{key}", FLAGS, None))
        updated = {section: dataclasses.replace(getattr(self, section), **values)
                   for section, values in changes.items()}
        return dataclasses.replace(self, **updated)

    def to_json(self) -> dict[str, dict[str, Any]]:
        """Plain JSON-able dict, {section: {key: value}} (paths as strings, tuples as lists)."""
        return {section: {spec.name: jsonable(getattr(getattr(self, section), spec.name))
                          for spec in dataclasses.fields(cls)}
                for section, cls in SECTIONS.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], label: str = "run.json") -> Config:
        """The inverse of to_json (reads the config block of a results tree's run.json)."""
        return _build(data, label, base=None)


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
