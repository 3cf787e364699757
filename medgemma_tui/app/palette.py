"""The command palette's entries (ctrl+p): colormaps, views, head modes, and each screen and job, opened
as its key opens it."""

from __future__ import annotations

from collections.abc import Iterator

from textual.app import SystemCommand

from medgemma_tui.app import state as st
from medgemma_tui.app.screens.ask import AskScreen
from medgemma_tui.app.screens.compare import CompareScreen
from medgemma_tui.app.screens.export import ExportScreen
from medgemma_tui.app.screens.gallery import GalleryScreen
from medgemma_tui.app.screens.methods import MethodsScreen
from medgemma_tui.app.screens.robustness import RobustnessScreen
from medgemma_tui.app.screens.summary import SummaryScreen
from medgemma_tui.app.screens.variants import VariantsScreen
from medgemma_tui.colormaps import available as available_colormaps


def commands(app) -> Iterator[SystemCommand]:
    for name, cmap in available_colormaps().items():
        yield SystemCommand(f"Colormap: {name}", f"{cmap.kind} heatmap colours. {cmap.note}",
                            lambda name=name: app.set_state(app.state.with_(colormap=name), charts=False))
    analysis = app.current_analysis()
    if analysis is not None:
        for view in st.available_views(analysis.record):
            yield SystemCommand(f"View: {view}", "Show this map view",
                                lambda v=view: app.set_state(app.state.with_(view=v)))
    for mode in st.HEAD_MODES:
        yield SystemCommand(f"Heads: {mode}", "Head mean, one GQA group, or one head",
                            lambda m=mode: app.step(lambda s, r: s.with_(head_mode=m, head=0)))

    def opener(screen):
        return lambda: screen.open(app)

    yield SystemCommand("Run all samples", "Run every sample that has not run (x)", app.run_all)
    yield SystemCommand("Cancel the running job", "Stops after the current sample (esc)", app.cancel_jobs)
    yield SystemCommand("Export", "Write the standard results tree (e)", opener(ExportScreen))
    yield SystemCommand("Compare prompts", "This row's prompt and another about the same film (C)",
                        opener(CompareScreen))
    yield SystemCommand("Ask about this film", "A question of your own, answered as a new row (k)",
                        opener(AskScreen))
    yield SystemCommand("Dataset figures", "Accuracy, consistency, pointing, lift, faithfulness with their "
                        "95% study-bootstrap intervals (D)", opener(SummaryScreen))
    yield SystemCommand("Head gallery", "Every layer x head as a small map (G)", opener(GalleryScreen))
    yield SystemCommand("Methods side by side", "Every map view of this row with its pointing and lift (M)",
                        opener(MethodsScreen))
    yield SystemCommand("Variants", "The hard-positive group side by side (V)", opener(VariantsScreen))
    yield SystemCommand("Robustness", "Perturbed films against the original (R)", opener(RobustnessScreen))
    yield SystemCommand("Toggle masks", "Body, lung and mediastinum outlines and the ground-truth box (m)",
                        lambda: app.set_state(st.toggle_masks(app.state)))
