"""Every binding of the app read from where it is declared (each screen's class, ``bindings`` for the
shared ones): the help screen's sections, the ids ``[app.keys]`` may remap, and the remaps that would put
two ids of one screen on one key."""

from __future__ import annotations

from textual.binding import Binding

from medgemma_tui.app.bindings import (
    APP_BINDINGS,
    CLOSE_BINDINGS,
    CURSOR_BINDINGS,
    FILTER_BINDINGS,
    HELP_BINDINGS,
    TILE_BINDINGS,
    key_names,
)
from medgemma_tui.app.screens.compare import CompareScreen
from medgemma_tui.app.screens.gallery import GalleryScreen
from medgemma_tui.app.screens.inspect import InspectScreen
from medgemma_tui.app.screens.methods import MethodsScreen
from medgemma_tui.app.screens.robustness import RobustnessScreen
from medgemma_tui.app.screens.variants import VariantsScreen


def sections() -> list[tuple[str, list[Binding]]]:
    """Every binding, grouped where it acts, as the help screen lists them."""
    return [
        ("Everywhere", APP_BINDINGS),
        ("Inspector", InspectScreen.BINDINGS),
        ("Samples filter", FILTER_BINDINGS),
        ("Picture (when focused)", CURSOR_BINDINGS),
        ("Head gallery", GalleryScreen.BINDINGS + TILE_BINDINGS),
        ("Methods side by side", MethodsScreen.BINDINGS),
        ("Variants", VariantsScreen.BINDINGS),
        ("Compare prompts", CompareScreen.BINDINGS),
        ("Robustness", RobustnessScreen.BINDINGS),
        ("Other screens", CLOSE_BINDINGS + HELP_BINDINGS),
    ]


def all_bindings() -> list[Binding]:
    return [binding for _, bindings in sections() for binding in bindings]


def binding_ids() -> set[str]:
    return {b.id for b in all_bindings() if b.id}


def scopes() -> list[list[Binding]]:
    """The bindings live at the same time, screen by screen (the app's own are live on every screen): two
    ids of one scope on one key shadow each other (the screen's wins, so a remap of layer_next onto "q"
    hides quit)."""
    shown = dict(sections())
    app = shown["Everywhere"]
    return [
        [*app, *shown["Inspector"], *CURSOR_BINDINGS],
        [*app, *FILTER_BINDINGS],
        [*app, *shown["Head gallery"]],
        [*app, *shown["Methods side by side"], *TILE_BINDINGS],
        [*app, *shown["Variants"], *TILE_BINDINGS],
        [*app, *shown["Robustness"]],
        [*app, *shown["Other screens"]],
    ]


def checked_keymap(overrides: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """``[app.keys]`` as Textual's keymap, without the ids no binding has, and the line naming those."""
    unknown = sorted(set(overrides) - binding_ids())
    keymap = {k: v for k, v in overrides.items() if k not in unknown}
    return keymap, f"[app.keys]: unknown binding ids {', '.join(unknown)} (see ? for the ids)" if unknown else None


def key_clashes(overrides: dict[str, str]) -> list[str]:
    """Pairs of binding ids that ``overrides`` (``[app.keys]``) put on one key within one scope, as
    "layer_next and quit on 'q'"; the defaults' own deliberate overlaps (a screen's escape) are not clashes."""

    def keys_of(binding: Binding, remapped: bool) -> set[str]:
        return key_names(overrides[binding.id] if remapped and binding.id in overrides else binding.key)

    clashes = []
    for scope in scopes():
        for i, first in enumerate(scope):
            for second in scope[i + 1:]:
                if first.id == second.id or first.id not in overrides and second.id not in overrides:
                    continue
                shared = keys_of(first, True) & keys_of(second, True)
                if shared and not keys_of(first, False) & keys_of(second, False):
                    text = f"{first.id} and {second.id} on {sorted(shared)[0]!r}"
                    if text not in clashes:
                        clashes.append(text)
    return clashes
