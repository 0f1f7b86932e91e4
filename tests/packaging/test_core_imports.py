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


def test_a_circle_of_imports_is_found():
    graph = {"node": {"observe"}, "observe": {"frames"}, "frames": {"node"}, "log": set()}
    cycle = _a_cycle(graph)
    assert cycle is not None and set(cycle) == {"node", "observe", "frames"}


def test_an_import_inside_a_function_counts_and_the_standard_librarys_do_not(tmp_path):
    module = tmp_path / "frames.py"
    module.write_text(
        "import queue\nfrom typing import TYPE_CHECKING\nimport meshnet.context\n"
        "if TYPE_CHECKING:\n    from meshnet.dispatch import Dispatcher\n"
        "def late():\n    from meshnet.node import Node\n    from . import mailbox\n"
    )
    assert _core_imports(module) == {"context", "node", "mailbox"}


def _core_imports(path: Path) -> set[str]:
    """The core modules ``path`` imports (``meshnet.x`` or relative), wherever it does."""
    found: set[str] = set()

    class Imports(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
            if name == "TYPE_CHECKING":
                for statement in node.orelse:
                    self.visit(statement)
            else:
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                if alias.name.startswith("meshnet."):
                    found.add(alias.name.split(".")[1])

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module == "meshnet" or (node.level and node.module is None):
                found.update(alias.name for alias in node.names)
            elif node.level:
                found.add(node.module.split(".")[0])
            elif node.module and node.module.startswith("meshnet."):
                found.add(node.module.split(".")[1])

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
