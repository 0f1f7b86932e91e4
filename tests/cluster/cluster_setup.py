"""Shared by the cluster tests: nodes linked on loopback, in this process or in their own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from meshnet import Service, command, open_node
from meshnet.cluster import parse_cluster, start

HOST = "127.0.0.1"
SECRET = "a cluster secret for tests"
FAST = {"heartbeat": 0.2, "down_after": 0.6, "connect_timeout": 2.0, "handshake_timeout": 2.0}
"""Short timings, so a down peer is seen quickly (no test asserts how quickly)."""
REPO = Path(__file__).resolve().parents[2]
WAIT = 20.0
"""Seconds a test waits for what should happen at once (a guard, not a threshold)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def cluster_table(node_names: list[str], **overrides: object) -> dict:
    """A [cluster] table listing ``node_names`` (ids 1, 2, ...) on free loopback ports."""
    nodes = {
        name: {"address": f"{HOST}:{free_port()}", "id": i} for i, name in enumerate(node_names, 1)
    }
    return {"secret": SECRET, "nodes": nodes, **FAST, **overrides}


@asynccontextmanager
async def linked_nodes(
    names: list[str], table: dict | None = None, node_ids: dict | None = None, **node_options
):
    """Nodes of one cluster, all in this trio run; yields them by name. ``node_ids``:
    where to find each node's id when ``table`` lists no nodes itself (a cluster file)."""
    table = table or cluster_table(names)
    async with _open_all(names, table, node_ids or table["nodes"], node_options) as nodes:
        yield nodes


@asynccontextmanager
async def _open_all(names, table, node_ids, node_options):
    if not names:
        yield {}
        return
    first, rest = names[0], names[1:]
    node_id = node_ids[first]["id"]
    async with open_node(node_id, first, **{"strict_codec": True, **node_options}) as node:
        await start(node, parse_cluster(table, REPO, first))
        async with _open_all(rest, table, node_ids, node_options) as others:
            yield {first: node, **others}


def node_config(
    tmp_path: Path, name: str, table: dict, service: str, args: list, node_id: int | None = None
) -> Path:
    """Write the TOML config of a node process in ``table``'s cluster; return its path.
    ``node_id``: the node's id where ``table`` lists no nodes (Redis discovery)."""
    node_id = table["nodes"][name]["id"] if node_id is None else node_id
    lines = [
        f'[node]\nname = "{name}"\nid = {node_id}\nlog_level = "INFO"\nstrict_codec = true\n',
        f'paths = ["{Path(__file__).parent}"]\n',
        f'[start]\nservice = "{service}"\nargs = {_toml(args)}\n',
        "[cluster]\n",
    ]
    for key, value in table.items():
        if key != "nodes":
            lines.append(f"{key} = {_toml(value)}\n")
    if "nodes" in table:
        lines.append("[cluster.nodes]\n")
        for node, entry in table["nodes"].items():
            lines.append(f'{node} = {{ address = "{entry["address"]}", id = {entry["id"]} }}\n')
    path = tmp_path / f"{name}.toml"
    path.write_text("".join(lines))
    return path


class NodeProcess:
    """``python -m meshnet node CONFIG`` in its own process; its log goes to a file."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = config.with_suffix(".log")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "meshnet", "node", str(self.config)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait()

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait(timeout=WAIT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


async def wait_until(predicate, what: str) -> None:
    with trio.fail_after(WAIT):
        while not predicate():
            await trio.sleep(0.02)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


class Store(Service):
    """A key-value store at ``.store`` (or ``name``) that remembers every value set."""

    async def init(self, name=".store"):
        self.data = {}
        self.seen = []
        self.register(name)

    @command
    async def set(self, key, value):
        self.data[key] = value
        self.seen.append(value)

    @command
    async def get(self, key):
        return self.data.get(key)

    @command
    async def fail(self, text):
        raise KeyError(text)

    @command
    async def never(self):
        await trio.sleep_forever()

    @command
    async def quit(self):
        await self.exit()

    @command
    async def seen_values(self):
        return self.seen
