"""The ``meshnet`` command line (also ``python -m meshnet``): ``node`` and registered subcommands.

The core defines only ``node``. Every other subcommand lives in the package it belongs to
and registers itself through an entry point of the group ``meshnet.commands``, so the core
never imports the packages above it. To add one (``cluster``, ``console``, ...), write a
``Subcommand`` in that package, for example ``meshnet/cluster/cli.py``::

    from meshnet.cli import Subcommand

    def _configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", help="the cluster file")

    def _run(options: argparse.Namespace) -> int:
        from meshnet.cluster.tool import show   # heavy imports only once chosen
        return show(options.file)

    CLUSTER = Subcommand(
        help="one line for `meshnet --help`",
        description="what it does, in plain text",
        epilog="example:\\n  %(prog)s show cluster.toml",
        configure=_configure,
        run=_run,
    )

In ``description`` and ``epilog``, ``%(prog)s`` stands for the subcommand as it was
invoked (``meshnet cluster`` or ``python -m meshnet cluster``; write a literal ``%`` as
``%%``); prose paragraphs are wrapped, indented lines are kept as written. Then name it in
``pyproject.toml``; the entry point's name is the subcommand's name::

    [project.entry-points."meshnet.commands"]
    cluster = "meshnet.cluster.cli:CLUSTER"

Entry points are read from the installed metadata, so reinstall (``make install``) after
adding one. A subcommand returns the exit code; a ``MeshnetError`` it raises becomes one
``meshnet: error: ...`` line on stderr and exit code 1. A registered subcommand that
cannot be loaded is reported on stderr and left out; the others still work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from meshnet.errors import MeshnetError

ENTRY_POINT_GROUP = "meshnet.commands"
DESCRIPTION = (
    "meshnet: a structured-concurrency service mesh for game servers, on trio. "
    "Run a node from its TOML config, or one of the tools the installed packages add."
)


@dataclass(frozen=True)
class Subcommand:
    """One subcommand of ``meshnet``: its help texts, its arguments, and what it runs."""

    help: str
    """One line, shown in ``meshnet --help``."""
    description: str
    """Plain text (no markup), shown at the top of the subcommand's ``--help``."""
    epilog: str
    """Examples, shown as written (line breaks kept) at the end of its ``--help``."""
    configure: Callable[[argparse.ArgumentParser], None]
    """Adds the subcommand's arguments to its parser."""
    run: Callable[[argparse.Namespace], int]
    """Runs it with the parsed options; returns the exit code."""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps paragraphs of prose; keeps paragraphs with indented lines (examples) as written.

    Every subcommand's parser gets it; pass it as ``formatter_class`` to the parsers a
    subcommand adds itself (its actions).
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text
        return "\n\n".join(
            paragraph if _is_example(paragraph) else fill(paragraph, width, indent)
            for paragraph in text.split("\n\n")
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; meshnet's own errors become one line on stderr and exit code 1."""
    options = build_parser().parse_args(argv)
    try:
        return options.run(options)
    except MeshnetError as exc:
        print(f"meshnet: error: {exc}", file=sys.stderr)
        return 1


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``node`` and every registered subcommand.

    ``prog`` defaults to how the program was started: ``python -m meshnet`` or ``meshnet``.
    """
    parser = argparse.ArgumentParser(
        prog=prog or _invoked_as(),
        description=DESCRIPTION,
        epilog="examples:\n  %(prog)s node examples/hello.toml\n  %(prog)s COMMAND --help",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"meshnet {_version()}")
    commands = parser.add_subparsers(
        required=True, metavar="COMMAND", help="what to run; each has its own --help"
    )
    _add(commands, "node", NODE)
    for name, subcommand in registered_subcommands().items():
        _add(commands, name, subcommand)
    return parser


def registered_subcommands() -> dict[str, Subcommand]:
    """The subcommands installed packages register under ``meshnet.commands``, by name."""
    found: dict[str, Subcommand] = {}
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=_name):
        if entry.name == "node" or entry.name in found:
            _warn(f"subcommand {entry.name!r} ({entry.value}) is registered twice; ignored")
            continue
        try:
            subcommand = entry.load()
        except Exception as exc:
            _warn(f"cannot load subcommand {entry.name!r} ({entry.value}): {exc}")
            continue
        if not isinstance(subcommand, Subcommand):
            _warn(f"subcommand {entry.name!r} ({entry.value}) is not a meshnet.cli.Subcommand")
            continue
        found[entry.name] = subcommand
    return found


def _configure_node(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        metavar="CONFIG",
        help="the node's TOML file: [node] name and id, [start] the first service and its "
        "arguments; relative 'paths' in it are relative to the file",
    )


def _run_node(options: argparse.Namespace) -> int:
    from meshnet.config import load_config
    from meshnet.runner import run_node

    return run_node(load_config(options.config))


NODE = Subcommand(
    help="boot a node from a TOML config file",
    description=(
        "Boot one node: start the service the config's [start] section names, with its "
        "arguments, and run until Ctrl-C or SIGTERM, which stop every service cleanly "
        "(exit code 0). A missing file, bad TOML, an unknown key or a service that cannot "
        "be imported or started prints one error line and exits 1. With [node] workers = N "
        "it runs N worker processes of the node instead, sharing its client ports, and "
        "supervises them (restarts one that dies; Ctrl-C stops them all)."
    ),
    epilog=(
        "example:\n"
        "  %(prog)s examples/hello.toml\n\n"
        "a config:\n"
        "  [node]\n"
        '  name = "hello"        # required\n'
        "  id = 1                # required, 0..255\n"
        "  call_timeout = 5.0    # default timeout of every call, in seconds\n"
        '  paths = ["."]         # added to the import path, relative to this file\n'
        "  workers = 1           # node processes sharing the client ports\n"
        "  [start]\n"
        '  service = "hello:Main"\n'
        '  args = [["Alice", "Bob"], 1.0]'
    ),
    configure=_configure_node,
    run=_run_node,
)


def _add(commands: argparse._SubParsersAction, name: str, subcommand: Subcommand) -> None:
    parser = commands.add_parser(
        name,
        help=subcommand.help,
        description=subcommand.description,
        epilog=subcommand.epilog,
        formatter_class=HelpFormatter,
    )
    subcommand.configure(parser)
    parser.set_defaults(run=subcommand.run)


def _invoked_as() -> str:
    started = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m meshnet" if started in ("__main__.py", "-m", "") else started


def _version() -> str:
    try:
        return metadata.version("meshnet")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _warn(text: str) -> None:
    print(f"meshnet: warning: {text}", file=sys.stderr)


def _is_example(paragraph: str) -> bool:
    return any(line.startswith(" ") for line in paragraph.splitlines())


def _name(entry: metadata.EntryPoint) -> str:
    return entry.name
