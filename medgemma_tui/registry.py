"""What the tool can run, each thing declared once: the attribution methods (``METHODS``) and the studies
of a row (``STUDIES``).

The shape is transformers' ``AttentionInterface`` / ``ALL_ATTENTION_FUNCTIONS``: one registry in a low
module, entries registered by name, and callers that look them up by name instead of keeping a list of
their own. The config's checks, ``medtui eval``'s flags and help, Ray, the results tree, the map views
of ``analysis.views`` and the app's tiles all iterate these registries, so an entry registered here (or
by a plugin, with ``register``) shows up in each of them.

This module sits in the base layer, beside ``config``, so that a config can be checked before any
engine or pipeline module is imported. An entry's code is a callable or a ``"module:attribute"`` path,
imported on first use: the built-in entries name code of the layers above without importing it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from medgemma_tui.errors import MedtuiError


class UnknownNameError(MedtuiError, KeyError):
    """A name no registry entry has; the message lists the names it has."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def resolve(code: Callable | str) -> Callable:
    """A callable, or the one a ``"module:attribute"`` path names."""
    if callable(code):
        return code
    module, _, attribute = code.partition(":")
    return getattr(importlib.import_module(module), attribute)


class _Named(Protocol):
    name: str


Entry = TypeVar("Entry", bound=_Named)


class Registry(Mapping[str, Entry], Generic[Entry]):
    """Entries by name, in the order they were registered."""

    def __init__(self, kind: str, entries: tuple[Entry, ...] = ()):
        self.kind = kind  # what an entry is, for messages: "attribution method"
        self._entries: dict[str, Entry] = {}
        for entry in entries:
            self.register(entry)

    def register(self, entry: Entry) -> Entry:
        if entry.name in self._entries:
            raise ValueError(f"the {self.kind} {entry.name!r} is registered already")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        del self._entries[name]

    @contextmanager
    def added(self, *entries: Entry) -> Iterator[None]:
        """The entries registered for the ``with`` block only (tests, one-off runs)."""
        for entry in entries:
            self.register(entry)
        try:
            yield
        finally:
            for entry in entries:
                self._entries.pop(entry.name, None)

    def __getitem__(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r} (known: {', '.join(self._entries)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


# ---- attribution methods ----------------------------------------------------------------------------
# kinds of method: the target row's attention, read again on the model (the sanity checks' reference);
# maps ``engine.gradients`` keeps in the record in shapes of their own, with views of their own in
# ``analysis.views``, compared in every methods study; and the maps ``--methods`` adds, each kept in
# ``record.maps`` under its name and shown as a map view of its own
ATTENTION, GRADIENT, ATTRIBUTION = "attention", "gradient", "attribution"


@dataclass(frozen=True)
class MethodSpec:
    name: str  # the name in `--methods`, `[methods] names`, record.maps, the map views and the app's tiles
    label: str  # how help and tooltips write it: "Grad-CAM++"
    compute: Callable | str  # (loaded, image, record, settings: config.MethodsConfig) -> (map [N] float32, notes)
    description: str = ""  # the sentence under its map (views of the ``attribution`` kind)
    kind: str = ATTRIBUTION
    needs: tuple[str, ...] = ("model",)  # and "gradients" (a backward pass), "pixels" (films re-encoded)
    # the notes kept with the record as record.extra[f"{name}_{notes_as}"], and in the methods study as notes_as
    notes_as: str | None = None
    tile: str | None = None  # its tile's label in the app's methods screen; None: its name

    @property
    def tile_label(self) -> str:
        return self.tile or self.name

    def run(self, loaded, image, record, settings) -> tuple[Any, dict[str, Any]]:
        return resolve(self.compute)(loaded, image, record, settings)


_ENGINE = "medgemma_tui.engine.attribution.methods"
METHODS: Registry[MethodSpec] = Registry("attribution method", (
    MethodSpec("answer", "attention", f"{_ENGINE}:answer_map", kind=ATTENTION),
    MethodSpec("occlusion", "occlusion", f"{_ENGINE}:occlusion_method",
               "occlusion: drop in the answer's probability when the cell's image token is replaced",
               needs=("model", "pixels")),
    MethodSpec("rise", "RISE", f"{_ENGINE}:rise_method",
               "RISE: random masks over the image tokens weighted by the answer's probability"),
    MethodSpec("ig", "IG", f"{_ENGINE}:ig_method",
               "integrated gradients on the pixels for the answer's probability, summed per cell",
               needs=("model", "gradients", "pixels"), notes_as="completeness"),
    MethodSpec("gradcampp", "Grad-CAM++", f"{_ENGINE}:gradcampp_method",
               "Grad-CAM++ on the last SigLIP layer for the answer logit, pooled to the grid",
               needs=("model", "gradients")),
    MethodSpec("gradient", "gradient x attention", f"{_ENGINE}:gradient_method", kind=GRADIENT,
               needs=("model", "gradients")),
    MethodSpec("gradcam", "Grad-CAM", f"{_ENGINE}:gradcam_method", kind=GRADIENT, needs=("model", "gradients")),
))


def method_names(*kinds: str) -> tuple[str, ...]:
    """The registered methods of these kinds (all when none is given), in registration order."""
    return tuple(name for name, spec in METHODS.items() if not kinds or spec.kind in kinds)


def chosen_method_names() -> tuple[str, ...]:
    """The names `--methods` and ``[methods] names`` may choose: every method but the attention reference."""
    return method_names(GRADIENT, ATTRIBUTION)


# ---- studies of a row -------------------------------------------------------------------------------
# the built-in studies' names, spelled here once: each is the study's key in ``result.analysis.extras``,
# its section of the tree's robustness/{key}.json and of analysis/summary.json, and the modules that read
# a section read it by these
ROBUSTNESS, ONE_PIXEL, FAITHFULNESS = "robustness", "one_pixel", "faithfulness"
METHODS_STUDY, HEADS, SANITY = "methods", "heads", "sanity"
PER_METHOD = METHODS_STUDY  # the per-method dict inside the methods and sanity sections: {"methods": {name: ...}}


@dataclass(frozen=True)
class StudySpec:
    # its key in ``result.analysis.extras`` and its section of the tree's robustness/{key}.json
    name: str
    # (config) -> a callable (loaded, result) run per row that returns the study's JSON-ready dict (or None);
    # ``pipeline.studies.make_studies`` files it under ``name``
    build: Callable | str
    help: str = ""  # its flag's help in `medtui eval --help`
    flag: str | None = None  # the `medtui eval` option that asks for it ("--robustness"); None: the config only
    switch: str | Callable[[Any], bool] | None = None  # what turns it on in the config: a "section.key", or a test
    # its "section.key" switch is set in the config it runs with when a flag asked for it, for the other studies
    # that read it (the methods study's deletion/insertion gains need faithfulness on)
    sets_switch: bool = False
    within: str | None = None  # runs only beside this study (the one-pixel attack beside robustness)
    needs: tuple[str, ...] = ("model",)
    summary: str = ""  # where analysis/ sums it up over the tree
    # a study with a table of its own, analysis/{name}.csv (``export.method_tables``): the figure drawn from
    # it, (table, path, formats, dpi) -> the path written or None
    figure: Callable | str | None = None

    def switched_on(self, config) -> bool:
        if self.switch is None:
            return False
        if callable(self.switch):
            return bool(self.switch(config))
        section, _, key = self.switch.partition(".")
        return bool(getattr(getattr(config, section), key))


_STUDIES = "medgemma_tui.pipeline.studies"
_FIGURES = "medgemma_tui.export.method_figures"
STUDIES: Registry[StudySpec] = Registry("study", (
    StudySpec(ROBUSTNESS, f"{_STUDIES}.robustness:robustness_eval_study",
              "Also run the robustness study on each sample.", "--robustness", "robustness.enabled",
              summary="analysis/summary.json"),
    StudySpec(ONE_PIXEL, f"{_STUDIES}.one_pixel:one_pixel_eval_study",
              switch=lambda config: config.robustness.one_pixel > 0, within=ROBUSTNESS,
              summary="analysis/summary.json"),
    StudySpec(FAITHFULNESS, f"{_STUDIES}.faithfulness:faithfulness_eval_study",
              "Also run the deletion/insertion faithfulness study.", "--faithfulness", "faithfulness.enabled",
              sets_switch=True, summary="analysis/summary.json"),
    StudySpec(METHODS_STUDY, f"{_STUDIES}.methods:methods_eval_study", flag="--methods",
              switch=lambda config: bool(config.methods.names), summary="analysis/methods.csv",
              figure=f"{_FIGURES}:plot_methods"),
    StudySpec(HEADS, f"{_STUDIES}.methods:heads_eval_study",
              "Score every layer x head by how well it localises (analysis/heads.csv).", "--heads", "methods.heads",
              needs=("record",), summary="analysis/heads.csv", figure=f"{_FIGURES}:plot_heads"),
    StudySpec(SANITY, f"{_STUDIES}.methods:sanity_eval_study",
              "Cascading-randomisation sanity check of the maps (analysis/sanity.csv).", "--sanity", "methods.sanity",
              summary="analysis/sanity.csv", figure=f"{_FIGURES}:plot_sanity"),
))


def tabled_studies() -> tuple[StudySpec, ...]:
    """The studies with a table analysis/{name}.csv and a figure of it, in the registry's order."""
    return tuple(spec for spec in STUDIES.values() if spec.figure is not None)
