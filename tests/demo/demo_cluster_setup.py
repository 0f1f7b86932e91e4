"""Shared by the tests of the demo on three nodes: the front, game and accounts nodes
linked on loopback, all in this trio run (static discovery: the cluster-wide names come
from the table's ``names``, as Redis would give them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from demo_setup import HOST, Demo, settings

from demo_game.launcher import free_port
from demo_game.main import Main
from demo_game.names import CLUSTER_ACCOUNTS, CLUSTER_MANAGER, MANAGER
from meshnet import Node, open_node
from meshnet.cluster import parse_cluster, start

NODE_IDS = {"accounts": 3, "game": 2, "front": 1}
"""The demo's nodes by role, in the order they start, with their ids."""
SECRET = "a cluster secret for the demo's tests"
FAST = {"heartbeat": 0.2, "down_after": 2.0, "connect_timeout": 2.0, "handshake_timeout": 2.0}


@dataclass(frozen=True)
class ClusterDemo:
    """The front's ports and the three nodes, by role."""

    demo: Demo
    nodes: dict[str, Node]

    async def agent_of(self, user: str) -> int | None:
        """``user``'s agent, as the manager on the game node says."""
        return await self.nodes["game"].call(MANAGER, "agent_of", user)


@asynccontextmanager
async def cluster_demo(
    tmp_path: Path, reconnect_window: float = 60.0
) -> AsyncIterator[ClusterDemo]:
    """The demo game on three linked nodes, each running its role."""
    table = {
        "secret": SECRET,
        "nodes": {
            name: {"address": f"{HOST}:{free_port()}", "id": node_id}
            for name, node_id in NODE_IDS.items()
        },
        "names": {CLUSTER_ACCOUNTS: "accounts", CLUSTER_MANAGER: "game"},
        **FAST,
    }
    game = settings(tmp_path / "accounts.sqlite3", reconnect_window)
    async with AsyncExitStack() as stack:
        nodes, ports = {}, {}
        for name, node_id in NODE_IDS.items():
            node = await stack.enter_async_context(open_node(node_id, name, strict_codec=True))
            await start(node, parse_cluster(table, tmp_path, name))
            main = await node.newservice(Main, game, {"cluster": {"roles": [name]}})
            ports = await node.call(main, "ports") or ports
            nodes[name] = node
        yield ClusterDemo(Demo(**ports), nodes)
