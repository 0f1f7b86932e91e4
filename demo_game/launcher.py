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
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any

import trio

from demo_game.client import hub_flow
from demo_game.settings import Settings, parse_settings
from meshnet.config import NodeConfig, load_config
from meshnet.errors import MeshnetError
from meshnet.workers import READY_FD_ENV

START_TIMEOUT = 30.0
"""Seconds a node has to start listening."""
STOP_TIMEOUT = 10.0
"""Seconds a node has to stop after SIGINT before it is killed."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""What stops a launcher and its nodes: Ctrl-C, and ``kill`` as a service manager sends it."""


class LaunchError(MeshnetError):
    """The node did not start, or stopped on its own."""


def run_demo(config_path: Path) -> int:
    """``make demo``; returns the exit code (the client's: 0 if it ended logged in)."""
    config = load_config(config_path)
    settings = parse_settings(*config.start_args)
    code = 1
    with stopped_by_signals():
        node = start_node(config_path)
        try:
            wait_listening(node, client_host(settings.hub["address"]), settings.hub["port"])
            code = play_client(settings)
            print(_where(settings, config), flush=True)
            if node.wait() != 0:
                raise LaunchError(f"the node stopped with exit code {node.returncode}")
        except KeyboardInterrupt:
            pass
        finally:
            with ctrl_c_ignored():
                stop_node(node)
    return code


def play_client(settings: Settings, then: Sequence[str] = ()) -> int:
    """Run the client once against the hub of ``settings`` with a fresh user, and the
    requests ``then`` after its login, printing the command that does the same first;
    return its exit code (0: it ended logged in, every request answered)."""
    host, port = client_host(settings.hub["address"]), settings.hub["port"]
    user, password = f"demo-{secrets.token_hex(3)}", secrets.token_urlsafe(9)
    hint = f"{python_command()} -m demo_game client --user {user} --password {password}"
    hint += "".join(f" --then {request}" for request in then)
    print(f"\n$ {hint}", flush=True)
    flow = partial(hub_flow, host, port, user, password, ws=False, say=print, then=then)
    return 0 if trio.run(flow) else 1


def python_command() -> str:
    """This Python as a user would type it here: ``.venv/bin/python`` in the repository
    (relative to the working directory when inside it), else its full path."""
    python = Path(sys.executable)
    return str(python.relative_to(Path.cwd())) if python.is_relative_to(Path.cwd()) else str(python)


class NodeProcess(subprocess.Popen[bytes]):
    """A node in a child process, with the pipe on which it says it is ready."""

    ready_fd: int | None
    """The pipe's read end, until ``wait_listening`` has read it."""


def start_node(config_path: Path, label: str | None = None) -> NodeProcess:
    """``python -m meshnet node CONFIG`` in a child process sharing our stdout and stderr;
    with ``label``, each line it writes comes to our stderr after ``label |``.

    The node has a process group of its own, so a Ctrl-C in the terminal reaches only us:
    ``stop_node`` then stops it with one SIGINT (a second one would make it exit at once,
    without stopping its services)."""
    ready_fd, write_fd = os.pipe()
    try:
        node = NodeProcess(
            [sys.executable, "-m", "meshnet", "node", str(config_path)],
            env={**os.environ, READY_FD_ENV: str(write_fd)},
            pass_fds=(write_fd,),
            process_group=0,
            stdout=None if label is None else subprocess.PIPE,
            stderr=None if label is None else subprocess.STDOUT,
        )
    except BaseException:
        os.close(ready_fd)
        raise
    finally:
        os.close(write_fd)
    node.ready_fd = ready_fd
    if node.stdout is not None:
        threading.Thread(target=_copy_lines, args=(node.stdout, f"{label} | "), daemon=True).start()
    return node


def wait_ready(node: subprocess.Popen[bytes], name: str = "the node") -> None:
    """Wait until a node from ``start_node`` says on its pipe that its start service is
    up (so every port it listens on is its own: a port already taken makes it exit with
    an error instead); LaunchError if it exits first or takes too long."""
    ready_fd = getattr(node, "ready_fd", None)
    if ready_fd is None:
        return
    readable, _, _ = select.select([ready_fd], [], [], START_TIMEOUT)
    said = os.read(ready_fd, 64) if readable else None
    os.close(ready_fd)
    node.ready_fd = None  # type: ignore[attr-defined]
    if said is None:
        raise LaunchError(f"{name} did not start within {START_TIMEOUT:g}s")
    if said != b"ready\n":
        raise LaunchError(f"{name} exited with code {node.wait()} before it was ready")


def wait_listening(node: subprocess.Popen[bytes], host: str, port: int) -> None:
    """Wait until the node is ready (``wait_ready``) and ``host:port`` accepts
    connections; LaunchError if the node exits first."""
    wait_ready(node)
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


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """In the block, SIGINT and SIGTERM raise KeyboardInterrupt, so either stops the
    launcher's nodes before it exits. SIGINT too: a launcher started in the background of
    a script inherits it ignored, and its nodes would inherit that as well."""
    with _signals_handled(_interrupt):
        yield


@contextmanager
def ctrl_c_ignored() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM in the block: while the nodes stop, another Ctrl-C must
    not leave one running (``stop_node`` gives each ``STOP_TIMEOUT`` seconds, then kills it)."""
    with _signals_handled(signal.SIG_IGN):
        yield


def client_host(address: str) -> str:
    """Where a client on this machine reaches a server listening on ``address``."""
    return "127.0.0.1" if address in ("0.0.0.0", "::", "") else address


def free_port() -> int:
    """A TCP port nobody listens on right now, on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_config(
    settings: dict[str, dict[str, Any]],
    log_level: str = "INFO",
    *,
    name: str = "demo",
    node_id: int = 1,
    cluster: dict[str, Any] | None = None,
    node: dict[str, Any] | None = None,
) -> str:
    """A node config (TOML) running the demo game with ``settings`` (sections, as in
    ``demo_game.settings``); with ``cluster``, its ``[cluster]`` table (strings, numbers);
    ``node``: more keys of ``[node]`` (``workers``, ``console``, ...)."""
    args = ",\n".join(
        f"  {{ {section} = {_inline(values)} }}" for section, values in settings.items()
    )
    text = (
        f'[node]\nname = "{name}"\nid = {node_id}\nlog_level = "{log_level}"\n'
        f"call_timeout = 10.0\n"
        + "".join(f"{key} = {json.dumps(value)}\n" for key, value in (node or {}).items())
        + f'\n[start]\nservice = "demo_game.main:Main"\nargs = [\n{args},\n]\n'
    )
    if cluster is not None:
        text += "\n[cluster]\n" + "".join(
            f"{key} = {json.dumps(value)}\n" for key, value in cluster.items()
        )
    return text


def _copy_lines(output: IO[bytes], prefix: str) -> None:
    """Copy a child's output to our stderr line by line, each after ``prefix``."""
    with output:
        for line in output:
            sys.stderr.write(prefix + line.decode(errors="replace"))
            sys.stderr.flush()


def _inline(values: dict[str, Any]) -> str:
    """A TOML inline table of strings and numbers (JSON's notation for both is TOML's)."""
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in values.items()) + " }"


def _where(settings: Settings, config: NodeConfig) -> str:
    python = python_command()
    return "\n".join(
        [
            "",
            "The demo node is running; Ctrl-C stops it. It listens on:",
            *front_lines(settings),
            *operator_lines(config, python),
            *try_lines(python),
        ]
    )


def front_lines(settings: Settings) -> list[str]:
    """Where the servers players connect to listen: hub, login server, msgserver, page."""
    hub = settings.hub
    host = client_host(hub["address"])
    login = f"{client_host(settings.login_address)}:{settings.login_port}"
    msgserver = f"{client_host(settings.msgserver['address'])}:{settings.msgserver['port']}"
    return [
        f"  hub, TCP          {host}:{hub['port']}",
        f"  hub, WebSocket    ws://{host}:{hub['ws_port']}/   (client --ws)",
        f"  login server      {login}   (client --secure)",
        f"  msgserver         {msgserver}",
        f"  browser page      http://{client_host(settings.web_address)}:{settings.web_port}/",
    ]


def try_lines(python: str) -> list[str]:
    """The client and robots commands to try next."""
    return [
        f"Try: {python} -m demo_game client --user NAME --password PASSWORD [--ws | --secure]",
        f"     {python} -m demo_game robots --count 100 --duration 10",
    ]


def operator_lines(config: NodeConfig, python: str) -> list[str]:
    """Where the node's debug console and metrics listen, if its config turns them on
    (those of each worker, for a node run as several: worker i on the port + i)."""
    lines = []
    for index in range(config.workers):
        worker = f", worker {index}" if config.workers > 1 else ""
        if config.console is not None:
            console = f"{client_host(config.console[0])}:{config.console[1] + index}"
            label = f"debug console{worker}"
            lines.append(f"  {label:<17} {console}   ({python} -m meshnet console {console})")
        if config.metrics is not None:
            metrics = f"http://{client_host(config.metrics[0])}:{config.metrics[1] + index}"
            label = f"status page{worker}"
            lines.append(f"  {label:<17} {metrics}/   (Prometheus: {metrics}/metrics)")
    return lines


@contextmanager
def _signals_handled(handler: Any) -> Iterator[None]:
    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _interrupt(number: int, frame: Any) -> None:
    raise KeyboardInterrupt
