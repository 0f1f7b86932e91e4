"""The ``python -m meshnet`` command line: ``node CONFIG`` and the other subcommands."""

from __future__ import annotations

import argparse
import re
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

    client = commands.add_parser(
        "login-client", help="log in, handshake with a msgserver and send requests"
    )
    client.add_argument("--login", required=True, type=_host_port, metavar="HOST:PORT")
    client.add_argument("--gate", required=True, type=_host_port, metavar="HOST:PORT")
    client.add_argument("--server", required=True, help="game server name in the login token")
    client.add_argument("--user", required=True)
    client.add_argument("--password", required=True)
    client.add_argument(
        "--send", action="append", default=[], metavar="TEXT", help="a request (repeatable)"
    )
    client.add_argument(
        "--reconnect",
        action="store_true",
        help="drop the connection after sending the first request, reconnect with the next "
        "index and resend it: the answer comes from the msgserver's cache",
    )
    client.set_defaults(run=_login_client)
    return parser


def _run_node(options: argparse.Namespace) -> int:
    from meshnet.config import load_config
    from meshnet.runner import run_node

    return run_node(load_config(options.config))


def _dump_proto(options: argparse.Namespace) -> int:
    from meshnet.gate.proto import dump_module

    print(dump_module(options.module))
    return 0


def _login_client(options: argparse.Namespace) -> int:
    from meshnet.login.client_cli import run_login_client

    return run_login_client(
        options.login,
        options.gate,
        options.server,
        options.user,
        options.password,
        options.send,
        options.reconnect,
    )


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not (host and re.fullmatch("[0-9]{1,5}", port) and int(port) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)
