"""Every key of the app, each with an id (remap it from the config's ``[app.keys]``) and a description.

``[app.keys]`` maps a binding id to a key, e.g. ``layer_next = "l"`` or ``quit = "ctrl+q"``; the help
screen (``?``) lists every id with its current key.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.keys import _character_to_key

from medgemma_tui.registry import ATTRIBUTION, METHODS

# the attribution methods' labels as the tooltips write them (``registry.METHODS``): "occlusion, RISE, IG"
ATTRIBUTION_LABELS = ", ".join(spec.label for spec in METHODS.values() if spec.kind == ATTRIBUTION)

APP_BINDINGS = [
    Binding("question_mark", "help", "Help", id="help"),
    Binding("D", "summary", "Dataset", tooltip="The dataset figures with their study-bootstrap 95% intervals",
            id="summary", show=False),
    Binding("q", "quit", "Quit", id="quit"),
    Binding("ctrl+p", "command_palette", "Commands", id="command_palette", show=False),
]

INSPECT_BINDINGS = [
    Binding("right_square_bracket", "layer(1)", "Layer+",
            tooltip="Next layer (all -> 0 -> 1 ... -> last -> all)", id="layer_next"),
    Binding("left_square_bracket", "layer(-1)", "Layer-", tooltip="Previous layer", id="layer_prev", show=False),
    Binding("a", "all_layers", "All layers", tooltip="Back to all layers", id="layer_all", show=False),
    Binding("full_stop", "head(1)", "Head+", tooltip="Next head or GQA group (from the mean: head 0)", id="head_next"),
    Binding("comma", "head(-1)", "Head-", tooltip="Previous head or group", id="head_prev", show=False),
    Binding("g", "head_mode", "Head mode", tooltip="Cycle head mean / GQA group / single head", id="head_mode",
            show=False),
    Binding("n", "token(1)", "Token+",
            tooltip="Next query token that can see the image (with the question before the image: the answer rows)",
            id="token_next"),
    Binding("p", "token(-1)", "Token-", tooltip="Previous query token", id="token_prev", show=False),
    Binding("v", "view", "View",
            tooltip="Cycle the map view (answer, gated, layer-weighted, rollout; question if its tokens see the image; "
                    f"{ATTRIBUTION_LABELS} and top heads where a run computed them)",
            id="view"),
    Binding("o", "overlay", "Overlay",
            tooltip="Cycle heatmap over the film / heatmap alone / film alone", id="overlay", show=False),
    Binding("z", "scale", "Scale", tooltip="Colours over 0..max or over the map's own min..max", id="scale",
            show=False),
    Binding("m", "masks", "Masks", tooltip="Body and lung outlines, and the ground-truth box", id="masks",
            show=False),
    Binding("c", "colormap", "Colormap", tooltip="Next heatmap colormap", id="colormap", show=False),
    Binding("plus", "alpha(0.1)", "Alpha+", id="alpha_up", show=False),
    Binding("minus", "alpha(-0.1)", "Alpha-", id="alpha_down", show=False),
    Binding("s", "samples", "Samples", tooltip="Show or hide the samples table", id="samples", show=False),
    Binding("slash", "filter", "Filter samples", id="filter", show=False),
    Binding("G", "gallery", "Heads", tooltip="Head gallery: every layer x head", id="gallery"),
    Binding("M", "methods", "Methods",
            tooltip=f"Every map view side by side (attention, gradients, {ATTRIBUTION_LABELS}, top heads) with its "
                    "pointing and lift on this row", id="methods", show=False),
    Binding("V", "variants", "Variants", tooltip="The hard-positive group side by side", id="variants"),
    Binding("R", "robustness", "Robustness",
            tooltip="Perturbed films and their maps against the original (from eval, or run here)", id="robustness",
            show=False),
    Binding("e", "export", "Export",
            tooltip="Export this sample or every finished one to a results tree", id="export", show=False),
    Binding("x", "run_all", "Run all", tooltip="Run every sample that has not run", id="run_all"),
    Binding("C", "compare", "Compare prompts",
            tooltip="This row's prompt and another about the same film: both maps, their difference and JS",
            id="compare", show=False),
    Binding("k", "ask", "Ask", tooltip="Ask a question of your own about the film on screen (a new row, live sessions)",
            id="ask", show=False),
    Binding("escape", "cancel", "Cancel job", tooltip="Cancel the running job after the current sample", id="cancel"),
]

CURSOR_BINDINGS = [
    Binding("up", "cursor(-1, 0)", "Cell up", id="cell_up", show=False),
    Binding("down", "cursor(1, 0)", "Cell down", id="cell_down", show=False),
    Binding("left", "cursor(0, -1)", "Cell left", id="cell_left", show=False),
    Binding("right", "cursor(0, 1)", "Cell right", id="cell_right", show=False),
]

GALLERY_BINDINGS = [
    Binding("escape", "close", "Back", id="gallery_close"),
    Binding("s", "sort", "Sort", id="gallery_sort"),
    Binding("d", "dataset_sort", "Dataset/row",
            tooltip="Sort by how the heads localise over the dataset (the tree's analysis/heads.csv, or the boxed "
                    "rows run here), or back to this row's box", id="gallery_dataset"),
    Binding("enter", "choose", "Show head", id="gallery_choose"),
]

TILE_BINDINGS = [
    Binding("up", "move(0, -1)", "Up", id="tile_up", show=False),
    Binding("down", "move(0, 1)", "Down", id="tile_down", show=False),
    Binding("left", "move(-1, 0)", "Left", id="tile_left", show=False),
    Binding("right", "move(1, 0)", "Right", id="tile_right", show=False),
]

CLOSE_BINDINGS = [Binding("escape", "close", "Back", id="close")]

HELP_BINDINGS = [Binding("question_mark", "close", "Close help", id="help_close")]

FILTER_BINDINGS = [Binding("escape", "leave", "Back to the table", id="filter_leave", show=False)]

VARIANT_BINDINGS = [
    Binding("escape", "close", "Back", id="variants_close"),
    Binding("r", "run_group", "Run the group", tooltip="Run the variants not run yet (on a results tree: read them)",
            id="variants_run"),
]

COMPARE_BINDINGS = [
    Binding("escape", "close", "Back", id="compare_close"),
    Binding("n", "other(1)", "Next prompt B", tooltip="The next other prompt about this film", id="compare_next"),
    Binding("p", "other(-1)", "Previous prompt B", id="compare_prev", show=False),
]

ROBUSTNESS_BINDINGS = [
    Binding("escape", "close", "Back", id="robustness_close"),
    Binding("r", "run_study", "Run the study",
            tooltip="Run the robustness study of this sample with the loaded model (live sessions)",
            id="robustness_run"),
]


METHODS_BINDINGS = [
    Binding("escape", "close", "Back", id="methods_close"),
    Binding("enter", "choose", "Show view", id="methods_choose"),
    Binding("r", "run_methods", "Compute methods",
            tooltip="Compute the attribution methods of [methods] names (all of them when none is named) for "
                    "this row with the loaded model (live sessions)", id="methods_run"),
]


def all_bindings() -> list[Binding]:
    return [*APP_BINDINGS, *INSPECT_BINDINGS, *CURSOR_BINDINGS, *FILTER_BINDINGS, *GALLERY_BINDINGS,
            *TILE_BINDINGS, *VARIANT_BINDINGS, *ROBUSTNESS_BINDINGS, *CLOSE_BINDINGS, *HELP_BINDINGS,
            *METHODS_BINDINGS, *COMPARE_BINDINGS]


def binding_ids() -> set[str]:
    return {b.id for b in all_bindings() if b.id}


# The bindings live at the same time, screen by screen (the app's own are live on every screen): two ids of
# one scope on one key shadow each other (the screen's wins, so a remap of layer_next onto "q" hides quit).
SCOPES = [
    [*APP_BINDINGS, *INSPECT_BINDINGS, *CURSOR_BINDINGS],
    [*APP_BINDINGS, *FILTER_BINDINGS],
    [*APP_BINDINGS, *GALLERY_BINDINGS, *TILE_BINDINGS],
    [*APP_BINDINGS, *METHODS_BINDINGS, *TILE_BINDINGS],
    [*APP_BINDINGS, *VARIANT_BINDINGS, *TILE_BINDINGS],
    [*APP_BINDINGS, *ROBUSTNESS_BINDINGS],
    [*APP_BINDINGS, *CLOSE_BINDINGS, *HELP_BINDINGS],
]


def key_names(keys: str) -> set[str]:
    """The keys of a binding or a remap ("l", "ctrl+q", "?,h"), in Textual's names ("?" is question_mark)."""
    names = set()
    for key in keys.split(","):
        key = key.strip()
        if key:
            names.add(_character_to_key(key) if len(key) == 1 else key)
    return names


def key_clashes(overrides: dict[str, str]) -> list[str]:
    """Pairs of binding ids that ``overrides`` (``[app.keys]``) put on one key within one scope, as
    "layer_next and quit on 'q'"; the defaults' own deliberate overlaps (a screen's escape) are not clashes."""

    def keys_of(binding: Binding, remapped: bool) -> set[str]:
        return key_names(overrides[binding.id] if remapped and binding.id in overrides else binding.key)

    clashes = []
    for scope in SCOPES:
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
