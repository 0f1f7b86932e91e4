"""Shared by the reliable-command tests: the wallets' settings, two systems on linked nodes
in this process or in node processes of their own, and reading what the stores hold."""

from __future__ import annotations

import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from cluster_setup import WAIT, NodeProcess, cluster_table, linked_nodes, node_config
from reliable_services import Wallet

from meshnet import CallError

FAST_RETRY = {"timeout": 1.0, "retry": 0.1, "retry_max": 0.5, "redis_timeout": 1.0}
"""Quick redelivery, so the tests need not wait for it (none asserts how quick)."""
NO_RETRY = {**FAST_RETRY, "retry": 3600.0, "retry_max": 3600.0}
"""No redelivery within a test: only a drain can bring a deferred command."""
PEERS = {"main": {"sub": "sub@wallet"}, "sub": {"main": "main@wallet"}}


def wallet_settings(tmp_path: Path, system: str, redis_url: str, prefix: str, **overrides):
    """The settings of system ``system``'s wallet (its peer is the other one)."""
    return {
        "system": system,
        "store": str(tmp_path / f"{system}.sqlite3"),
        "redis": redis_url,
        "prefix": prefix,
        "peers": PEERS[system],
        **FAST_RETRY,
        **overrides,
    }


class Systems:
    """``main`` and ``sub``, each a node with a wallet; restart a wallet with ``restart``."""

    def __init__(self, nodes, settings):
        self.nodes = nodes
        self.settings = settings
        self.wallets = {}

    async def start(self, system: str) -> None:
        self.wallets[system] = await self.nodes[system].newservice(Wallet, self.settings[system])

    async def stop(self, system: str) -> None:
        await self.nodes[system].kill(self.wallets.pop(system))

    async def call(self, system: str, name: str, *args):
        """Call ``name`` on ``system``'s wallet, from the other node."""
        other = "sub" if system == "main" else "main"
        return await self.nodes[other].call(f"{system}@wallet", name, *args)


@asynccontextmanager
async def two_systems(tmp_path, redis_url, prefix, main=None, sub=None):
    """Systems ``main`` and ``sub`` (settings overridden by ``main`` and ``sub``)."""
    settings = {
        system: wallet_settings(tmp_path, system, redis_url, prefix, **(overrides or {}))
        for system, overrides in (("main", main), ("sub", sub))
    }
    async with linked_nodes(["main", "sub"]) as nodes:
        systems = Systems(nodes, settings)
        await systems.start("main")
        await systems.start("sub")
        yield systems


async def eventually(check, *args):
    """Wait until ``await check(*args)`` is true (a guard against hangs, not a threshold)."""
    with trio.fail_after(WAIT):
        while not await check(*args):
            await trio.sleep(0.05)


def read_store(path: Path, query: str, args: tuple = ()) -> list[tuple]:
    """Rows of ``query`` in the store at ``path`` (its node may be running or gone)."""
    with sqlite3.connect(path) as db:
        return db.execute(query, args).fetchall()


def gold_of(path: Path) -> dict[str, int]:
    return dict(read_store(path, "SELECT uid, amount FROM gold"))


def credited_ids(path: Path) -> list[str]:
    """The id of every credit the store applied, once per application."""
    return [row[0] for row in read_store(path, "SELECT id FROM credits")]


class SystemProcesses:
    """Systems ``main`` and ``sub``, each a node process running a wallet as its start
    service; the test's own node ``driver`` calls them. Use ``async with`` (it stops
    every process at the end)."""

    def __init__(self, tmp_path: Path, redis_url: str, prefix: str, main=None, sub=None):
        self.table = cluster_table(["driver", "main", "sub"])
        self.stores = {system: tmp_path / f"{system}.sqlite3" for system in ("main", "sub")}
        self.processes = {
            system: NodeProcess(
                node_config(
                    tmp_path,
                    system,
                    self.table,
                    "reliable_services:Wallet",
                    [wallet_settings(tmp_path, system, redis_url, prefix, **(overrides or {}))],
                )
            )
            for system, overrides in (("main", main), ("sub", sub))
        }
        self.driver = None
        self._driver_context = None

    async def __aenter__(self) -> SystemProcesses:
        self._driver_context = linked_nodes(["driver"], self.table)
        self.driver = (await self._driver_context.__aenter__())["driver"]
        for system in self.processes:
            await self.start(system)
        return self

    async def __aexit__(self, *exc_info) -> None:
        try:
            for process in self.processes.values():
                process.stop()
        finally:
            await self._driver_context.__aexit__(*exc_info)

    async def start(self, system: str) -> None:
        """Start ``system``'s node process and wait until its wallet answers."""
        self.processes[system].start()
        await eventually(self.up, system)

    def kill(self, system: str) -> None:
        """SIGKILL ``system``'s node process."""
        self.processes[system].kill()

    async def up(self, system: str) -> bool:
        try:
            await self.call(system, "status", timeout=1.0)
        except CallError:
            return False
        return True

    async def call(self, system: str, name: str, *args, timeout: float = WAIT):
        """Call ``name`` on ``system``'s wallet."""
        return await self.driver.call(f"{system}@wallet", name, *args, timeout=timeout)

    def log(self, system: str) -> str:
        return self.processes[system].text()
