"""The ``python -m meshnet`` command line: ``node CONFIG`` and the other subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from meshnet.errors import MeshnetError

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; meshnet's own errors become one line on stderr and exit code 1."""
    parser = _parser()
    options = parser.parse_args(argv)
    try:
        return options.run(options)
    except MeshnetError as exc:
        print(f"meshnet: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m meshnet", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    node = commands.add_parser("node", help="boot a node from a TOML config file")
    node.add_argument("config", help="path of the node's TOML config")
    node.set_defaults(run=_run_node)

    proto = commands.add_parser("proto", help="client protocol tools")
    proto_commands = proto.add_subparsers(required=True, metavar="ACTION")
    dump = proto_commands.add_parser("dump", help="print a module's protocol table as JSON")
    dump.add_argument("module", help="import path of a module declaring a Protocol")
    dump.set_defaults(run=_dump_proto)
    return parser


def _run_node(options: argparse.Namespace) -> int:
    from meshnet.config import load_config
    from meshnet.runner import run_node

    return run_node(load_config(options.config))


def _dump_proto(options: argparse.Namespace) -> int:
    from meshnet.gate.proto import dump_module

    print(dump_module(options.module))
    return 0
