"""``python -m demo_game``: the client, the robots, and ``demo`` (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

from demo_game.client import hub_flow, secure_flow
from demo_game.launcher import run_demo
from demo_game.robots import ensure_fd_limit, run_robots
from demo_game.settings import DEFAULTS
from meshnet.errors import MeshnetError

NODE_CONFIG = Path(__file__).parent / "node.toml"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; errors become one line on stderr and exit code 1."""
    options = _parser().parse_args(argv)
    try:
        return options.run(options)
    except (MeshnetError, OSError) as exc:
        print(f"demo_game: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo_game", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    client = commands.add_parser(
        "client", help="signin, signup, signin, ping, login, ping: one line per step"
    )
    _add_target(client, "hub port (default 5678, 5679 with --ws, login server 8001 with --secure)")
    transport = client.add_mutually_exclusive_group()
    transport.add_argument("--ws", action="store_true", help="connect over WebSocket")
    transport.add_argument(
        "--secure",
        action="store_true",
        help="log in through the login server, then talk through the msgserver",
    )
    client.add_argument(
        "--msg-port",
        type=int,
        default=DEFAULTS["msgserver"]["port"],
        help="msgserver port (--secure)",
    )
    client.add_argument(
        "--server", default=DEFAULTS["msgserver"]["servername"], help="game server name (--secure)"
    )
    client.add_argument("--user", required=True)
    client.add_argument("--password", required=True)
    client.set_defaults(run=_client)

    robots = commands.add_parser("robots", help="simulated players, with a summary of the load")
    _add_target(robots, "hub port (default 5678, 5679 with --ws)")
    robots.add_argument("--count", type=int, required=True, help="how many robots")
    robots.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    robots.add_argument("--ws", action="store_true", help="connect over WebSocket")
    robots.add_argument("--prefix", default="robot-", help="user names: PREFIX0, PREFIX1, ...")
    robots.set_defaults(run=_robots)

    demo = commands.add_parser(
        "demo", help="start a node, run the client once against it, keep the node until Ctrl-C"
    )
    demo.add_argument("--config", type=Path, default=NODE_CONFIG, help="the node's config")
    demo.set_defaults(run=lambda options: run_demo(options.config))
    return parser


def _add_target(parser: argparse.ArgumentParser, port_help: str) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help=port_help)


def _client(options: argparse.Namespace) -> int:
    if options.secure:
        port = options.port or DEFAULTS["login"]["port"]
        flow = partial(
            secure_flow,
            options.host,
            port,
            options.msg_port,
            options.server,
            options.user,
            options.password,
            print,
        )
    else:
        port = options.port or _hub_port(options.ws)
        flow = partial(
            hub_flow, options.host, port, options.user, options.password, ws=options.ws, say=print
        )
    return 0 if trio.run(flow) else 1


def _robots(options: argparse.Namespace) -> int:
    ensure_fd_limit(options.count)
    summary = trio.run(
        partial(
            run_robots,
            options.host,
            options.port or _hub_port(options.ws),
            options.count,
            options.duration,
            ws=options.ws,
            prefix=options.prefix,
            progress=sys.stderr,
        )
    )
    print("\n".join(summary.lines()))
    return 1 if summary.errors else 0


def _hub_port(ws: bool) -> int:
    return DEFAULTS["hub"]["ws_port" if ws else "port"]
