"""The layers hold in the real import graph (imports inside functions included): each module imports
only modules of its own layer or the layers below it, no two modules import each other through a
cycle, and only the app imports textual. The same rules are import-linter contracts in pyproject.toml."""

from __future__ import annotations

import grimp
import pytest

# bottom to top, as in the README's "Layout"
LAYERS = (
    ("medgemma_tui.config", "medgemma_tui.resources", "medgemma_tui.colormaps", "medgemma_tui.errors",
     "medgemma_tui.json_values", "medgemma_tui.registry"),
    ("medgemma_tui.data",),
    ("medgemma_tui.model",),
    ("medgemma_tui.engine",),
    ("medgemma_tui.analysis",),
    ("medgemma_tui.export",),
    ("medgemma_tui.pipeline",),
    ("medgemma_tui.bench",),
    ("medgemma_tui.app",),
    ("cli",),
)


def layer_of(module: str) -> int | None:
    for index, packages in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return index
    return None


def upward_imports(edges) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a module imports one of a layer above its own."""
    out = []
    for importer, imported in edges:
        low, high = layer_of(importer), layer_of(imported)
        if low is not None and high is not None and high > low:
            out.append((importer, imported))
    return sorted(out)


def cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("medgemma_tui", "cli", include_external_packages=True)


@pytest.fixture(scope="module")
def edges(graph):
    ours = [m for m in graph.modules if layer_of(m) is not None]
    return [(m, imported) for m in ours for imported in graph.find_modules_directly_imported_by(m)
            if layer_of(imported) is not None]


def test_no_module_imports_a_layer_above_its_own(edges):
    assert len(edges) > 200  # the graph really was read
    assert upward_imports(edges) == []


def test_no_import_cycles_between_modules(edges):
    internal = [(a, b) for a, b in edges if not (a.endswith(b) or b.endswith(a))]
    # a package's __init__ importing its own module is not a cycle between modules
    assert cycles([(a, b) for a, b in internal if not b.startswith(a + ".") and not a.startswith(b + ".")]) == []


def test_only_the_app_imports_textual(graph):
    importers = {m for m in graph.find_modules_that_directly_import("textual")}
    assert importers, "no module imports textual: the graph misses the app"
    assert {m for m in importers if layer_of(m) != layer_of("medgemma_tui.app")} == set()


def test_the_checks_catch_an_upward_import_and_a_cycle():
    assert upward_imports([("medgemma_tui.model.loading", "medgemma_tui.engine.capture"),
                           ("medgemma_tui.engine.capture", "medgemma_tui.model.loading")]) == [
        ("medgemma_tui.model.loading", "medgemma_tui.engine.capture")]
    assert cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [["a", "b", "c"]]
