"""``meshnet login-client``, registered as a ``meshnet.commands`` entry point."""

from __future__ import annotations

import argparse
import re

from meshnet.cli import Subcommand


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` split at its last colon (so an IPv6 host keeps its own colons)."""
    host, _, port = text.rpartition(":")
    if not (host and re.fullmatch("[0-9]{1,5}", port) and int(port) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--login",
        required=True,
        type=host_port,
        metavar="HOST:PORT",
        help="the login server",
    )
    parser.add_argument(
        "--gate", required=True, type=host_port, metavar="HOST:PORT", help="the msgserver"
    )
    parser.add_argument(
        "--server", required=True, help="the game server's name, put in the login token"
    )
    parser.add_argument("--user", required=True, help="user name, put in the login token")
    parser.add_argument("--password", required=True, help="password, put in the login token")
    parser.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="TEXT",
        help="a request to send once the handshake is done (repeatable; sessions count from 1)",
    )
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="drop the connection after sending the first request, reconnect with the next "
        "index and resend it: the answer comes from the msgserver's cache",
    )


def _run(options: argparse.Namespace) -> int:
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


LOGIN_CLIENT = Subcommand(
    help="log in, handshake with a msgserver and send requests",
    description=(
        "skynet's login client: log in to a login server (DH key exchange, encrypted token), "
        "handshake with the msgserver using the subid it returned, and send each --send as "
        "a request. One line per step: the login server's status line, the msgserver's "
        "handshake reply, then 'response SESSION: ok CONTENT' or 'response SESSION: error' "
        "per request. "
        "A refused login or handshake prints its status line and exits 1."
    ),
    epilog=(
        "example, against the node of examples/login.toml:\n"
        "  %(prog)s --login 127.0.0.1:8001 --gate 127.0.0.1:8888 \\\n"
        "      --server sample --user hello --password password --send echo --reconnect"
    ),
    configure=_configure,
    run=_run,
)
