"""The docs check (docs/docstrings.py): a public name without a docstring, or a public
module left out of the reference, fails ``mkdocs build --strict`` (``make docs``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKER = REPO / "docs" / "docstrings.py"

spec = importlib.util.spec_from_file_location("docstrings", CHECKER)
docstrings = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docstrings)

DOCUMENTED = '''\
"""A package."""


class Base:
    """A base class."""

    def hook(self):
        """Overridden below."""


class Child(Base):
    """A child class."""

    def hook(self):
        return 1

    def _private(self):
        return 2


def _helper():
    return 3
'''


def package(tmp_path: Path, source: str = DOCUMENTED, **modules: str) -> Path:
    """``pkg`` in ``tmp_path``: its ``__init__`` and the other ``modules`` given."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(source)
    for name, text in modules.items():
        (tmp_path / "pkg" / f"{name}.py").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    "source, missing",
    [
        (DOCUMENTED, []),
        (DOCUMENTED + "\ndef api():\n    return 4\n", ["pkg.api"]),
        (DOCUMENTED + "\nclass Api:\n    pass\n", ["pkg.Api"]),
        (
            DOCUMENTED.replace('        """Overridden below."""\n', "        pass\n"),
            ["pkg.Base.hook", "pkg.Child.hook"],
        ),
        (DOCUMENTED.replace('"""A package."""\n', ""), ["pkg"]),
    ],
    ids=["documented", "function", "class", "method", "module"],
)
def test_a_public_name_without_a_docstring_is_found(tmp_path, source, missing):
    assert docstrings.undocumented(["pkg"], [package(tmp_path, source)]) == missing


def test_a_public_module_without_a_docstring_is_found_and_a_private_one_is_not(tmp_path):
    root = package(tmp_path, tool="def run():\n    return 1\n", _impl="def run():\n    pass\n")
    assert docstrings.undocumented(["pkg"], [root]) == ["pkg.tool", "pkg.tool.run"]


def test_a_public_module_missing_from_the_reference_is_found(tmp_path):
    root = package(tmp_path, tool='"""A tool."""\n')
    page = tmp_path / "reference.md"
    page.write_text("# Reference\n\n::: pkg\n")
    assert docstrings.unreferenced(["pkg"], [root], [page]) == ["pkg.tool"]
    page.write_text("# Reference\n\n::: pkg\n\n::: pkg.tool\n")
    assert docstrings.unreferenced(["pkg"], [root], [page]) == []


def mkdocs_build(project: Path) -> subprocess.CompletedProcess[str]:
    (project / "mkdocs.yml").write_text(
        textwrap.dedent(f"""\
            site_name: check
            hooks: [{CHECKER}]
            extra:
              checked_packages: [pkg]
            """)
    )
    (project / "docs").mkdir(exist_ok=True)
    (project / "docs" / "index.md").write_text("# Reference\n\n::: pkg\n")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_mkdocs_strict_fails_on_a_missing_docstring_and_passes_without(tmp_path):
    failed = mkdocs_build(package(tmp_path, DOCUMENTED + "\ndef api():\n    return 4\n"))
    assert failed.returncode == 1
    assert "WARNING -  pkg.api: public name without a docstring" in failed.stderr
    (tmp_path / "pkg" / "__init__.py").write_text(DOCUMENTED)
    assert mkdocs_build(tmp_path).returncode == 0


def test_every_public_module_of_the_project_is_in_the_reference():
    pages = sorted((REPO / "docs").rglob("*.md"))
    assert docstrings.unreferenced(docstrings.PACKAGES, [REPO], pages) == []


def test_every_public_name_of_the_project_has_a_docstring():
    assert docstrings.undocumented(docstrings.PACKAGES, [REPO]) == []
