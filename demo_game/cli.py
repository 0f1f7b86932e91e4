"""``python -m demo_game``: the client, the robots, ``demo`` (what ``make demo`` runs) and
``demo-cluster`` (``make demo-cluster``)."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

import trio

from demo_game.client import hub_flow, secure_flow
from demo_game.cluster_launcher import CLUSTER_DIR, REDIS_DIR, run_cluster_demo
from demo_game.launcher import run_demo
from demo_game.robots import LOGIN_DEADLINE, Summary, ensure_fd_limit, run_robots
from demo_game.settings import DEFAULTS
from meshnet.cli import HelpFormatter
from meshnet.errors import MeshnetError

NODE_CONFIG = Path(__file__).parent / "node.toml"
GOLD_REQUESTS = ("wallet", "enter_subgame", "leave_subgame")
WORKERS_CONFIG = Path(__file__).parent / "workers.toml"
"""The demo as two worker processes sharing ``node.toml``'s ports (``make demo-workers``)."""
INTERRUPTED = 128 + signal.SIGINT
"""The exit code after Ctrl-C, as a shell gives it: 130."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; errors become one line on stderr and exit code 1, Ctrl-C 130."""
    options = _parser().parse_args(argv)
    try:
        return options.run(options)
    except (MeshnetError, OSError) as exc:
        print(f"demo_game: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demo_game",
        description="The demo game (skynet_sample on meshnet): its client, its load robots, "
        "and a demo that starts a node (or three) and plays one client against it.",
        epilog="examples:\n  %(prog)s demo\n  %(prog)s demo-cluster\n"
        "  %(prog)s client --user alice --password secret",
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(
        required=True, metavar="COMMAND", help="what to run; each has its own --help"
    )

    client = commands.add_parser(
        "client",
        help="signin, signup, signin, ping, login, ping: one line per step",
        description="Play skynet_sample's client flow against a running demo node, one line "
        "per step; sign up first if the user has no account, then make the --then requests. "
        "Exits 0 only if it ended logged in and every --then request was answered.",
        epilog="examples:\n"
        "  %(prog)s --user alice --password secret\n"
        "  %(prog)s --user alice --password secret --ws\n"
        "  %(prog)s --user alice --password secret --secure\n"
        "  %(prog)s --user alice --password secret --then enter_subgame --then wallet",
        formatter_class=HelpFormatter,
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
        help="msgserver port (--secure; default 8888)",
    )
    client.add_argument(
        "--server",
        default=DEFAULTS["msgserver"]["servername"],
        help="game server name in the login token (--secure; default demo)",
    )
    client.add_argument("--user", required=True, help="user name: 1 to 32 letters, digits, _ or -")
    client.add_argument("--password", required=True, help="password: 1 to 128 characters")
    client.add_argument(
        "--then",
        action="append",
        default=[],
        choices=GOLD_REQUESTS,
        metavar="REQUEST",
        help="after the login, make this request too (again for more, in order): "
        f"{', '.join(GOLD_REQUESTS)} (the gold, on the demo on several nodes)",
    )
    client.set_defaults(run=_client)

    robots = commands.add_parser(
        "robots",
        help="simulated players, with a summary of the load",
        description="Run simulated players against a running demo node: each signs in "
        "(signing up first if needed) and logs in, then all ping back to back until the time "
        "is up. A 'busy' answer is asked again after a random wait (growing each time); a "
        "robot not logged in by its login deadline gives up (an error). A progress line on "
        "stderr, then a summary on stdout: logins/s, pings/s, ping p50/p99, errors by kind. "
        "Ctrl-C stops the run early and prints the summary so far (exit code 130); "
        "otherwise the exit code is 1 if any robot failed.",
        epilog="example:\n  %(prog)s --count 100 --duration 10",
        formatter_class=HelpFormatter,
    )
    _add_target(robots, "hub port (default 5678, 5679 with --ws)")
    robots.add_argument(
        "--count", type=_positive(int), required=True, help="how many robots (1 or more)"
    )
    robots.add_argument(
        "--duration",
        type=_positive(float),
        default=10.0,
        help="seconds the run lasts, logins included (default 10)",
    )
    robots.add_argument(
        "--login-deadline",
        type=_positive(float),
        default=LOGIN_DEADLINE,
        help=f"seconds a robot has to log in before it gives up (default {LOGIN_DEADLINE:g})",
    )
    robots.add_argument(
        "--ping-seconds",
        type=_positive(float),
        help="end the run this many seconds into the ping phase (default: at --duration)",
    )
    robots.add_argument("--ws", action="store_true", help="connect over WebSocket")
    robots.add_argument("--prefix", default="robot-", help="user names: PREFIX0, PREFIX1, ...")
    robots.set_defaults(run=_robots)

    demo = commands.add_parser(
        "demo",
        help="start a node, run the client once against it, keep the node until Ctrl-C",
        description="What make demo runs: start the demo node in a child process, play the "
        "client once against it with a fresh user, say where everything listens, and keep "
        "the node running until Ctrl-C.",
        epilog="examples:\n  %(prog)s\n  %(prog)s --workers\n  %(prog)s --config my-node.toml",
        formatter_class=HelpFormatter,
    )
    which = demo.add_mutually_exclusive_group()
    which.add_argument(
        "--config",
        type=Path,
        default=NODE_CONFIG,
        help="the node's config (default: the demo_game package's node.toml)",
    )
    which.add_argument(
        "--workers",
        dest="config",
        action="store_const",
        const=WORKERS_CONFIG,
        help="two worker processes sharing the same ports: the package's workers.toml",
    )
    demo.set_defaults(run=lambda options: run_demo(options.config))

    cluster = commands.add_parser(
        "demo-cluster",
        help="the demo on four nodes with a Redis of its own, until Ctrl-C",
        description="What make demo-cluster runs: start redis-server where the node configs "
        "say, then the accounts, game, subgame and front nodes in child processes, play "
        "the client once against the front with a fresh user, say where everything listens, "
        "and keep it all running until Ctrl-C (the nodes stop first, Redis last).",
        epilog="examples:\n  %(prog)s\n  %(prog)s --config-dir my-cluster --redis-dir /tmp/redis",
        formatter_class=HelpFormatter,
    )
    cluster.add_argument(
        "--config-dir",
        type=Path,
        default=CLUSTER_DIR,
        help="where accounts.toml, game.toml and front.toml are (default: the demo_game "
        "package's cluster directory)",
    )
    cluster.add_argument(
        "--redis-dir",
        type=Path,
        default=REDIS_DIR,
        help="where Redis keeps its append-only file (default var/demo_redis)",
    )
    cluster.set_defaults(
        run=lambda options: run_cluster_demo(options.config_dir, options.redis_dir)
    )
    return parser


def _add_target(parser: argparse.ArgumentParser, port_help: str) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help=port_help)


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a finite number of ``kind`` above 0."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            number = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {number}") from None
        if not (0 < value < math.inf):
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


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
            options.then,
        )
    else:
        port = options.port or _hub_port(options.ws)
        flow = partial(
            hub_flow,
            options.host,
            port,
            options.user,
            options.password,
            ws=options.ws,
            say=print,
            then=options.then,
        )
    return 0 if trio.run(flow) else 1


def _robots(options: argparse.Namespace) -> int:
    ensure_fd_limit(options.count)
    run = partial(
        run_robots,
        options.host,
        options.port or _hub_port(options.ws),
        options.count,
        options.duration,
        ws=options.ws,
        prefix=options.prefix,
        progress=sys.stderr,
        login_deadline=options.login_deadline,
        ping_seconds=options.ping_seconds,
    )
    summary = trio.run(_until_ctrl_c, run)
    print("\n".join(summary.lines()))
    if summary.interrupted:
        return INTERRUPTED
    return 1 if summary.errors else 0


async def _until_ctrl_c(run: Callable[..., Awaitable[Summary]]) -> Summary:
    """``run(interrupt=event)``, the event set by Ctrl-C (SIGINT) instead of a traceback."""
    interrupt = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(_set_on_sigint, interrupt)
        summary = await run(interrupt=interrupt)
        nursery.cancel_scope.cancel()
    return summary


async def _set_on_sigint(interrupt: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:  # keeps receiving: a second Ctrl-C is no traceback either
            interrupt.set()


def _hub_port(ws: bool) -> int:
    return DEFAULTS["hub"]["ws_port" if ws else "port"]
