"""The package's shape (README "Layout"): no import cycle, few top-level modules, one accessor
of the context, keyword arguments for long calls.

The layers themselves are import-linter contracts (pyproject.toml, ``make lint``); these
tests check what those contracts do not say: no cycle between any two modules (grimp's
graph, which counts imports inside functions and under ``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mlserve"
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Groups of two or more modules importing each other, directly or not (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("mlserve", include_external_packages=False)
    parents = {m for m in graph.modules if graph.find_children(m)}
    for module in parents:  # a package's __init__ importing its own children is no cycle
        for child in graph.find_children(module):
            if graph.direct_import_exists(importer=module, imported=child):
                graph.remove_import(importer=module, imported=child)
    assert strongly_connected(graph) == []


def test_a_cycle_is_found_when_there_is_one() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]:
        graph.add_import(importer=importer, imported=imported)
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_the_top_level_holds_few_modules() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 10, modules


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_call_passes_six_positional_arguments(path: Path) -> None:
    tree = ast.parse(path.read_text())
    crowded = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and sum(not isinstance(a, ast.Starred) for a in node.args) >= 6
    ]
    assert crowded == []


def test_only_the_accessor_reads_the_context_from_the_application() -> None:
    readers = [
        str(p.relative_to(PACKAGE))
        for p in SOURCES
        if "extensions[EXTENSION]" in p.read_text() or 'extensions["mlserve"]' in p.read_text()
    ]
    assert readers == ["api/current.py"]
