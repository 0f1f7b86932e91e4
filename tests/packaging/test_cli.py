"""The ``meshnet`` command line (its help, its version, and subcommands registered by
packages) and the help of ``python -m demo_game``."""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from demo_game.cli import _parser as demo_game_parser
from meshnet.cli import ENTRY_POINT_GROUP, build_parser

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "meshnet"
ABOVE_THE_CORE = ("meshnet.gate", "meshnet.login", "meshnet.cluster", "demo_game")

PLUGIN = """
from meshnet.cli import Subcommand

def _configure(parser):
    parser.add_argument("--name", required=True, help="who to greet")

HELLO = Subcommand(
    help="greet someone",
    description="Greets.",
    epilog="example:\\n  %(prog)s --name Alice",
    configure=_configure,
    run=lambda options: print(f"hello {options.name}") or 0,
)
NOT_A_SUBCOMMAND = 42
"""


def run(*args: str, env: dict[str, str] | None = None, command: list[str] | None = None):
    return subprocess.run(
        (command or [sys.executable, "-m", "meshnet"]) + list(args),
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=REPO,
    )


def with_plugin(tmp_path: Path, entry_points: str) -> dict[str, str]:
    """An environment where a distribution ``hello-plugin`` declares ``entry_points``."""
    (tmp_path / "hello_plugin.py").write_text(PLUGIN)
    info = tmp_path / "hello_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}")
    return dict(os.environ, PYTHONPATH=str(tmp_path))


def subcommand_parsers(parser: argparse.ArgumentParser):
    """Every parser below ``parser``, with its name: ``proto``, ``proto dump``, ..."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, subsub in subcommand_parsers(sub):
                    yield f"{name} {inner}", subsub


def test_usage_names_python_dash_m_when_run_as_a_module():
    result = run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m meshnet ")
    assert "python -m meshnet node examples/hello.toml" in result.stdout


def test_usage_names_meshnet_when_run_as_the_installed_script():
    script = Path(sys.executable).with_name("meshnet")
    result = run("node", "--help", command=[str(script)])
    assert result.returncode == 0
    assert result.stdout.startswith("usage: meshnet node ")
    assert "  meshnet node examples/hello.toml" in result.stdout


def test_version_prints_the_installed_version():
    result = run("--version")
    assert (result.returncode, result.stdout) == (0, f"meshnet {metadata.version('meshnet')}\n")


def test_help_lists_node_and_the_registered_subcommands():
    result = run("--help")
    for name in ("node", "proto", "login-client"):
        assert f"    {name}" in result.stdout


COMMAND_LINES = {"meshnet": lambda: build_parser("meshnet"), "demo_game": demo_game_parser}


def every_parser() -> list:
    """A param per parser of both command lines: the top one and every subcommand's."""
    params = []
    for program, build in COMMAND_LINES.items():
        top = build()
        for name, parser in [("", top), *subcommand_parsers(top)]:
            params.append(pytest.param(program, name, parser, id=f"{program} {name}".strip()))
    return params


@pytest.mark.parametrize("program, name, parser", every_parser())
def test_every_help_has_an_example_explains_every_argument_and_has_no_markup(program, name, parser):
    text = parser.format_help()
    assert "example" in text
    assert "``" not in text and ":class:" not in text
    for action in parser._actions:
        assert action.help, f"{program} {name}: an argument without help: {action.dest}"


def test_a_package_registers_a_subcommand_with_an_entry_point(tmp_path):
    env = with_plugin(tmp_path, "hello = hello_plugin:HELLO\n")
    assert "greet someone" in run("--help", env=env).stdout
    assert "  python -m meshnet hello --name Alice" in run("hello", "--help", env=env).stdout
    result = run("hello", "--name", "Bob", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello Bob\n", "")


@pytest.mark.parametrize(
    "entry_point, warning",
    [
        ("hello = no_such_module:HELLO", "cannot load subcommand 'hello'"),
        ("hello = hello_plugin:NOT_A_SUBCOMMAND", "is not a meshnet.cli.Subcommand"),
        ("node = hello_plugin:HELLO", "subcommand 'node' (hello_plugin:HELLO) is registered twice"),
    ],
)
def test_a_broken_registration_is_reported_and_the_rest_still_works(tmp_path, entry_point, warning):
    result = run("node", str(tmp_path / "missing.toml"), env=with_plugin(tmp_path, entry_point))
    assert result.returncode == 1
    warned, failed = result.stderr.splitlines()
    assert warned.startswith("meshnet: warning: ") and warning in warned
    assert failed == f"meshnet: error: {tmp_path / 'missing.toml'}: no such file"


def test_the_command_line_loads_nothing_above_the_core_until_a_subcommand_is_built():
    probe = "import sys, meshnet.cli; print(' '.join(sorted(sys.modules)))"
    loaded = run(command=[sys.executable, "-c", probe]).stdout.split()
    assert [name for name in loaded if name.startswith(ABOVE_THE_CORE)] == []


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda path: path.name)
def test_no_core_module_imports_a_package_above_the_core(module):
    tree = ast.parse(module.read_text())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    imported += [
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    ]
    assert [name for name in imported if name.startswith(ABOVE_THE_CORE)] == []
