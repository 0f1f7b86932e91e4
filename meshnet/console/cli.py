"""``meshnet console HOST:PORT``: attach to a node's debug console (registered as the
``console`` subcommand of ``meshnet``; ``meshnet.console.client`` does the work)."""

from __future__ import annotations

import argparse

from meshnet.cli import Subcommand


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "address",
        metavar="HOST:PORT",
        help="where the node's console listens: its config's node.console ([::1]:PORT for IPv6)",
    )


def _run(options: argparse.Namespace) -> int:
    from meshnet.console.client import run_console
    from meshnet.hostport import parse_hostport

    return run_console(*parse_hostport(options.address))


CONSOLE = Subcommand(
    help="attach to a node's debug console",
    description=(
        "Attach to the debug console of a running node (its config's node.console). On a "
        "terminal: a prompt with history (~/.meshnet_console_history, or the file "
        "MESHNET_CONSOLE_HISTORY names) and Tab completion of commands and service "
        "addresses; type help for the commands, Ctrl-D to leave. Otherwise each line of "
        "standard input is one command, and the exit code is 1 if any failed. A console "
        "with a password asks for it, or takes MESHNET_CONSOLE_PASSWORD."
    ),
    epilog=(
        "examples:\n"
        "  %(prog)s 127.0.0.1:7000\n"
        "  echo stat | %(prog)s 127.0.0.1:7000\n"
        "  printf 'list\\nping .auth\\n' | %(prog)s 127.0.0.1:7000"
    ),
    configure=_configure,
    run=_run,
)
