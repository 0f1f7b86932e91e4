"""``meshnet proto``: client protocol tools, registered as a ``meshnet.commands`` entry point."""

from __future__ import annotations

import argparse
import os
import sys

from meshnet.cli import HelpFormatter, Subcommand


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(
        required=True, dest="action", metavar="ACTION", help="what to do; each has its own --help"
    )
    dump = actions.add_parser(
        "dump",
        help="print a module's protocol table as JSON",
        description=(
            "Print the table of the Protocol a module declares (ids, names, fields and their "
            "types, targets and route rules) as JSON, for clients in other languages."
        ),
        epilog="example:\n  %(prog)s demo_game.proto",
        formatter_class=HelpFormatter,
    )
    dump.add_argument(
        "module",
        metavar="MODULE",
        help="import path of a module declaring one Protocol (package.module), or "
        "package.module:NAME when it declares several; the current directory is importable",
    )


def _run(options: argparse.Namespace) -> int:
    from meshnet.gate.proto import dump_module

    if os.getcwd() not in sys.path:  # as under python -m: modules beside you are importable
        sys.path.insert(0, os.getcwd())
    print(dump_module(options.module))
    return 0


PROTO = Subcommand(
    help="client protocol tools (dump: a protocol table as JSON)",
    description="Tools for the client protocols declared with meshnet.gate.proto.",
    epilog="example:\n  %(prog)s dump demo_game.proto > proto.json",
    configure=_configure,
    run=_run,
)
