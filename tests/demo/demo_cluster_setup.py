"""Shared by the tests of the demo on several nodes: the front, game and accounts nodes
(and with a Redis, the subgame's) linked on loopback, all in this trio run (static
discovery: the cluster-wide names come from the table's ``names``, as Redis would give
them)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from demo_setup import HOST, Demo, settings

from demo_game.launcher import free_port
from demo_game.main import Main
from demo_game.names import (
    CLUSTER_ACCOUNTS,
    CLUSTER_MANAGER,
    CLUSTER_SUBGAME,
    CLUSTER_SUBGAME_WALLET,
    CLUSTER_WALLET,
    MANAGER,
)
from demo_game.wallet import Wallet
from meshnet import Node, open_node
from meshnet.cluster import of, parse_cluster, start

NODE_IDS = {"accounts": 3, "game": 2, "front": 1}
"""The demo's nodes by role, in the order they start, with their ids."""
SUBGAME_ID = 4
"""The subgame's node, started (before the front) when there is a Redis for the gold."""
SECRET = "a cluster secret for the demo's tests"
FAST = {"heartbeat": 0.2, "down_after": 2.0, "connect_timeout": 2.0, "handshake_timeout": 2.0}


@dataclass(frozen=True)
class ClusterDemo:
    """The front's ports and the nodes, by role."""

    demo: Demo
    nodes: dict[str, Node]

    async def agent_of(self, user: str) -> int | None:
        """``user``'s agent, as the manager on the game node says."""
        return await self.nodes["game"].call(MANAGER, "agent_of", user)

    def registered(self, role: str, name: str) -> int:
        """The service node ``role`` registered as the cluster-wide ``name``."""
        return of(self.nodes[role]).registered[name]

    async def stop_wallet(self, role: str) -> tuple:
        """Kill the wallet of node ``role`` (``accounts`` or ``subgame``); its start args."""
        name = CLUSTER_WALLET if role == "accounts" else CLUSTER_SUBGAME_WALLET
        wallet = self.registered(role, name)
        args = self.nodes[role].start_args(wallet)
        await self.nodes[role].kill(wallet)
        return args

    async def start_wallet(self, role: str, args: tuple) -> None:
        """Start node ``role``'s wallet again, with the start args ``stop_wallet`` gave."""
        name = CLUSTER_WALLET if role == "accounts" else CLUSTER_SUBGAME_WALLET
        node = self.nodes[role]
        await of(node).register(name, await node.newservice(Wallet, *args))


@asynccontextmanager
async def cluster_demo(
    tmp_path: Path, reconnect_window: float = 60.0, redis_url: str = ""
) -> AsyncIterator[ClusterDemo]:
    """The demo game on three linked nodes, each running its role; with ``redis_url``,
    on four, the subgame's too, and the gold handed between them through that Redis."""
    node_ids = dict(NODE_IDS)
    names = {CLUSTER_ACCOUNTS: "accounts", CLUSTER_MANAGER: "game"}
    game = settings(tmp_path / "accounts.sqlite3", reconnect_window)
    if redis_url:
        node_ids = {"accounts": 3, "game": 2, "subgame": SUBGAME_ID, "front": 1}
        names |= {
            CLUSTER_WALLET: "accounts",
            CLUSTER_SUBGAME: "subgame",
            CLUSTER_SUBGAME_WALLET: "subgame",
        }
        game["gold"] = {
            "redis": redis_url,
            "subgame_path": str(tmp_path / "subgame.sqlite3"),
            "timeout": 1.0,
        }
    table = {
        "secret": SECRET,
        "name": f"t{uuid.uuid4().hex[:12]}",  # the prefix of the gold's keys in Redis
        "nodes": {
            name: {"address": f"{HOST}:{free_port()}", "id": node_id}
            for name, node_id in node_ids.items()
        },
        "names": names,
        **FAST,
    }
    async with AsyncExitStack() as stack:
        nodes, ports = {}, {}
        for name, node_id in node_ids.items():
            node = await stack.enter_async_context(open_node(node_id, name, strict_codec=True))
            await start(node, parse_cluster(table, tmp_path, name))
            main = await node.newservice(Main, game, {"cluster": {"roles": [name]}})
            ports = await node.call(main, "ports") or ports
            nodes[name] = node
        yield ClusterDemo(Demo(**ports), nodes)
