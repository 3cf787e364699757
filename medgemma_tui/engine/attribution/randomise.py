"""Cascading randomisation for the model-parameter sanity check (Adebayo et al., 2018, "Sanity Checks
for Saliency Maps"): layers re-initialised one at a time from the top of the decoder down, then the
vision tower's from the top down, cumulatively.

Always on a deep copy (``randomisable_copy``): the shared model is never changed. A layer is
re-initialised by the model's own ``_init_weights`` (the distribution it was built with:
normal(0, initializer_range) matrices, zero RMS-norm offsets), under a seeded generator.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch

from medgemma_tui.model.loading import LoadedModel


def decoder_layers(model) -> list[torch.nn.Module]:
    return list(model.model.language_model.layers)


def vision_layers(model) -> list[torch.nn.Module]:
    tower = model.model.vision_tower
    tower = getattr(tower, "vision_model", tower)
    return list(tower.encoder.layers)


def cascade(model, vision: bool = True) -> list[tuple[str, torch.nn.Module]]:
    """(label, layer) in the order they are randomised: decoder top down, then the vision tower top down."""
    steps = [(f"decoder.{i}", layer) for i, layer in reversed(list(enumerate(decoder_layers(model))))]
    if vision:
        steps += [(f"vision.{i}", layer) for i, layer in reversed(list(enumerate(vision_layers(model))))]
    return steps


def randomise_layer(model, layer: torch.nn.Module, seed: int) -> None:
    """Re-initialise every parameter of ``layer`` in place, as ``model`` initialises it."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in layer.modules():
            model._init_weights(module)


def randomisable_copy(loaded: LoadedModel) -> LoadedModel:
    """A deep copy of the loaded model (same processor), for randomising."""
    return LoadedModel(model=copy.deepcopy(loaded.model), processor=loaded.processor, info=loaded.info,
                       source=f"{loaded.source} (randomised copy)")


def restore(copy_of: LoadedModel, original: LoadedModel) -> None:
    """Put the original's weights back into the copy."""
    copy_of.model.load_state_dict(original.model.state_dict())


def cascading_randomisation(copy_of: LoadedModel, seed: int = 0, vision: bool = True
                            ) -> Iterator[tuple[int, str]]:
    """Randomise the copy's layers one more at a time; yields (step, label) after each (step 1 first)."""
    for step, (label, layer) in enumerate(cascade(copy_of.model, vision), start=1):
        randomise_layer(copy_of.model, layer, seed + step)
        yield step, label
