"""The core's modules (``meshnet/*.py``) import one another without a cycle, counting
imports inside functions (a late import hides a cycle; it does not remove it) and leaving
out those under ``if TYPE_CHECKING:``."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "meshnet"
MODULES = {path.stem for path in CORE.glob("*.py")} - {"__init__", "__main__"}


def test_the_core_modules_import_one_another_without_a_cycle():
    graph = {name: _core_imports(CORE / f"{name}.py") for name in MODULES}
    assert _a_cycle(graph) is None


def test_a_late_import_that_closes_a_circle_is_found():
    graph = {"node": {"observe"}, "observe": {"frames"}, "frames": {"node"}, "log": set()}
    cycle = _a_cycle(graph)
    assert cycle is not None and set(cycle) == {"node", "observe", "frames"}


def _core_imports(path: Path) -> set[str]:
    found: set[str] = set()

    class Imports(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name.removeprefix("meshnet.") for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module == "meshnet":
                found.update(alias.name for alias in node.names)
            elif node.module:
                found.add(node.module.removeprefix("meshnet.").split(".")[0])

    Imports().visit(ast.parse(path.read_text()))
    return (found & MODULES) - {path.stem}


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its modules in order), or None."""
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name) :]
        if name in done:
            return None
        for imported in sorted(graph.get(name, ())):
            cycle = walk(imported, [*path, name])
            if cycle is not None:
                return cycle
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = walk(name, [])
        if cycle is not None:
            return cycle
    return None
