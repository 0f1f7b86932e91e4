"""Every public name has a docstring, and every public module a place in the reference.

Public: a module whose dotted path has no part starting with ``_``, and in it every class,
function, method and property it defines whose name does not start with ``_`` (names it
only imports are documented where they are defined). A method that overrides a documented
method of a base class inherits that docstring, as ``help()`` shows it. A module is placed
in the reference by a ``::: dotted.path`` line in one of the pages under ``docs/``.

It runs as a mkdocs hook (``hooks:`` in mkdocs.yml, checking the packages listed under
``extra: checked_packages``, found beside mkdocs.yml): each problem is a warning, so
``mkdocs build --strict`` (``make docs``) fails on it. ``python docs/docstrings.py`` prints
the same problems for this project, one a line, and exits 1 if there is any.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import griffe

PACKAGES = ("meshnet", "demo_game")
ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REFERENCED = re.compile(r"^:::\s*([\w.]+)", re.MULTILINE)

logger = logging.getLogger("mkdocs.hooks.docstrings")


def undocumented(packages: Sequence[str], search_paths: Sequence[Path]) -> list[str]:
    """Dotted paths of the public modules, classes, functions and methods of ``packages``
    (found in ``search_paths``) that have no docstring."""
    return [
        obj.path
        for module in _load(packages, search_paths)
        for obj in _public_objects(module)
        if not _documented(obj)
    ]


def unreferenced(
    packages: Sequence[str], search_paths: Sequence[Path], pages: Sequence[Path]
) -> list[str]:
    """Public modules of ``packages`` that no ``::: module`` line of ``pages`` renders."""
    referenced = {path for page in pages for path in REFERENCED.findall(page.read_text())}
    modules = [
        obj.path
        for module in _load(packages, search_paths)
        for obj in _public_objects(module)
        if obj.is_module
    ]
    return [module for module in modules if module not in referenced]


def problems(
    packages: Sequence[str] = PACKAGES, docs: Path = DOCS, search_paths: Sequence[Path] = (ROOT,)
) -> list[str]:
    """Every problem with the docs of ``packages``, as lines to print."""
    pages = sorted(docs.rglob("*.md"))
    missing_docstrings = undocumented(packages, search_paths)
    missing_modules = unreferenced(packages, search_paths, pages)
    return [f"{path}: public name without a docstring" for path in missing_docstrings] + [
        f"{path}: public module missing from the reference" for path in missing_modules
    ]


def on_pre_build(config) -> None:
    """mkdocs hook: each problem is a warning (an error under ``--strict``)."""
    packages = config["extra"].get("checked_packages", PACKAGES)
    project = Path(config["config_file_path"]).parent
    for problem in problems(packages, Path(config["docs_dir"]), [project]):
        logger.warning(problem)


def _load(packages: Sequence[str], search_paths: Sequence[Path]) -> list[griffe.Module]:
    """The packages, loaded together so that a class's bases in another one resolve."""
    loader = griffe.GriffeLoader(search_paths=[str(path) for path in search_paths])
    modules = [loader.load(package) for package in packages]
    loader.resolve_aliases(external=False)
    return modules


def _public_objects(module: griffe.Module) -> Iterator[griffe.Object]:
    if module.name.startswith("_") and module.name != "__init__":
        return
    yield module
    yield from _public_members(module)


def _public_members(parent: griffe.Object) -> Iterator[griffe.Object]:
    for name, member in parent.members.items():
        if member.is_alias or name.startswith("_"):
            continue
        if member.is_module:
            yield from _public_objects(member)
        elif member.is_class:
            yield member
            yield from _public_members(member)
        elif member.is_function:
            yield member


def _documented(obj: griffe.Object) -> bool:
    if obj.docstring and obj.docstring.value.strip():
        return True
    parent = obj.parent
    if obj.is_function and isinstance(parent, griffe.Class):
        for base in _bases(parent):
            inherited = base.members.get(obj.name)
            if inherited is not None and not inherited.is_alias and inherited.docstring:
                return True
    return False


def _bases(cls: griffe.Class) -> list[griffe.Class]:
    try:
        return cls.mro()
    except (ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return []


if __name__ == "__main__":
    found = problems()
    print("\n".join(found) or "every public name has a docstring and a place in the reference")
    sys.exit(1 if found else 0)
