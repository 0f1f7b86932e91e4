"""Running a demo node in a child process: ``make demo`` and the robots bench use it.

``run_demo`` is ``make demo``: start the node of ``demo_game/node.toml``, run the client
once against it, say where everything listens, and keep the node until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import trio

from demo_game.client import hub_flow
from demo_game.settings import Settings, parse_settings
from meshnet.config import NodeConfig, load_config
from meshnet.errors import MeshnetError
from meshnet.runner import READY_FD_ENV

START_TIMEOUT = 30.0
"""Seconds a node has to start listening."""
STOP_TIMEOUT = 10.0
"""Seconds a node has to stop after SIGINT before it is killed."""


class LaunchError(MeshnetError):
    """The node did not start, or stopped on its own."""


def run_demo(config_path: Path) -> int:
    """``make demo``; returns the exit code (the client's: 0 if it ended logged in)."""
    config = load_config(config_path)
    settings = parse_settings(*config.start_args)
    host = client_host(settings.hub["address"])
    node = start_node(config_path)
    code = 1
    try:
        wait_listening(node, host, settings.hub["port"])
        user, password = f"demo-{secrets.token_hex(3)}", secrets.token_urlsafe(9)
        hint = f"{python_command()} -m demo_game client --user {user} --password {password}"
        print(f"\n$ {hint}", flush=True)
        flow = partial(hub_flow, host, settings.hub["port"], user, password, ws=False, say=print)
        code = 0 if trio.run(flow) else 1
        print(_where(settings, config), flush=True)
        if node.wait() != 0:
            raise LaunchError(f"the node stopped with exit code {node.returncode}")
    except KeyboardInterrupt:
        pass
    finally:
        stop_node(node)
    return code


def python_command() -> str:
    """This Python as a user would type it here: ``.venv/bin/python`` in the repository
    (relative to the working directory when inside it), else its full path."""
    python = Path(sys.executable)
    return str(python.relative_to(Path.cwd())) if python.is_relative_to(Path.cwd()) else str(python)


class NodeProcess(subprocess.Popen[bytes]):
    """A node in a child process, with the pipe on which it says it is ready."""

    ready_fd: int | None
    """The pipe's read end, until ``wait_listening`` has read it."""


def start_node(config_path: Path) -> NodeProcess:
    """``python -m meshnet node CONFIG`` in a child process sharing our stdout and stderr."""
    ready_fd, write_fd = os.pipe()
    try:
        node = NodeProcess(
            [sys.executable, "-m", "meshnet", "node", str(config_path)],
            env={**os.environ, READY_FD_ENV: str(write_fd)},
            pass_fds=(write_fd,),
        )
    except BaseException:
        os.close(ready_fd)
        raise
    finally:
        os.close(write_fd)
    node.ready_fd = ready_fd
    return node


def wait_listening(node: subprocess.Popen[bytes], host: str, port: int) -> None:
    """Wait until ``host:port`` accepts connections; LaunchError if the node exits first.

    A node from ``start_node`` first says on its pipe that its start service is up, so
    every port it listens on is its own, not another process's (a port already taken
    makes it exit with an error instead)."""
    ready_fd = getattr(node, "ready_fd", None)
    if ready_fd is not None:
        readable, _, _ = select.select([ready_fd], [], [], START_TIMEOUT)
        said = os.read(ready_fd, 64) if readable else None
        os.close(ready_fd)
        node.ready_fd = None  # type: ignore[attr-defined]
        if said is None:
            raise LaunchError(f"the node did not start within {START_TIMEOUT:g}s")
        if said != b"ready\n":
            raise LaunchError(f"the node exited with code {node.wait()} before it was ready")
    give_up = time.monotonic() + START_TIMEOUT
    while node.poll() is None:
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > give_up:
                raise LaunchError(f"the node is not listening on {host}:{port}") from None
            time.sleep(0.1)
    raise LaunchError(f"the node exited with code {node.returncode} before it listened")


def stop_node(node: subprocess.Popen[bytes]) -> int:
    """Stop the node as Ctrl-C does (unless it already stopped); kill it if it hangs."""
    if node.poll() is None:
        node.send_signal(signal.SIGINT)
    try:
        return node.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        node.kill()
        return node.wait()


def client_host(address: str) -> str:
    """Where a client on this machine reaches a server listening on ``address``."""
    return "127.0.0.1" if address in ("0.0.0.0", "::", "") else address


def free_port() -> int:
    """A TCP port nobody listens on right now, on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_config(settings: dict[str, dict[str, Any]], log_level: str = "INFO") -> str:
    """A node config (TOML) running the demo game with ``settings`` (sections, as in
    ``demo_game.settings``)."""
    args = ",\n".join(
        f"  {{ {section} = {_inline(values)} }}" for section, values in settings.items()
    )
    return (
        f'[node]\nname = "demo"\nid = 1\nlog_level = "{log_level}"\ncall_timeout = 10.0\n\n'
        f'[start]\nservice = "demo_game.main:Main"\nargs = [\n{args},\n]\n'
    )


def _inline(values: dict[str, Any]) -> str:
    """A TOML inline table of strings and numbers (JSON's notation for both is TOML's)."""
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in values.items()) + " }"


def _where(settings: Settings, config: NodeConfig) -> str:
    hub = settings.hub
    host = client_host(hub["address"])
    login = f"{client_host(settings.login_address)}:{settings.login_port}"
    msgserver = f"{client_host(settings.msgserver['address'])}:{settings.msgserver['port']}"
    python = python_command()
    return "\n".join(
        [
            "",
            "The demo node is running; Ctrl-C stops it. It listens on:",
            f"  hub, TCP          {host}:{hub['port']}",
            f"  hub, WebSocket    ws://{host}:{hub['ws_port']}/   (client --ws)",
            f"  login server      {login}   (client --secure)",
            f"  msgserver         {msgserver}",
            f"  browser page      http://{client_host(settings.web_address)}:{settings.web_port}/",
            *operator_lines(config, python),
            f"Try: {python} -m demo_game client --user NAME --password PASSWORD [--ws | --secure]",
            f"     {python} -m demo_game robots --count 100 --duration 10",
        ]
    )


def operator_lines(config: NodeConfig, python: str) -> list[str]:
    """Where the node's debug console and metrics listen, if its config turns them on."""
    lines = []
    if config.console is not None:
        console = f"{client_host(config.console[0])}:{config.console[1]}"
        lines.append(f"  debug console     {console}   ({python} -m meshnet console {console})")
    if config.metrics is not None:
        metrics = f"http://{client_host(config.metrics[0])}:{config.metrics[1]}"
        lines.append(f"  status page       {metrics}/   (Prometheus: {metrics}/metrics)")
    return lines
