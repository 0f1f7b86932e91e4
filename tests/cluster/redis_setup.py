"""Nodes discovering each other through Redis, in this process."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager

import coredis
from cluster_setup import FAST, HOST, REPO, SECRET, free_port

from meshnet import open_node
from meshnet.cluster import ClusterConfig, parse_cluster, start

TTL = 1.0
"""A short lease, so a crashed node goes quickly (no test asserts how quickly)."""


def redis_table(url: str, cluster: str, **overrides: object) -> dict:
    """A [cluster] table with Redis discovery (each node adds its own ``address``)."""
    return {
        "secret": SECRET,
        "discovery": "redis",
        "redis": url,
        "name": cluster,
        "ttl": TTL,
        **FAST,
        **overrides,
    }


def redis_config(name: str, table: dict) -> ClusterConfig:
    """Node ``name``'s config in ``table``'s cluster, on a free loopback port."""
    return parse_cluster({"address": f"{HOST}:{free_port()}", **table}, REPO, name)


@asynccontextmanager
async def redis_node(name: str, node_id: int, table: dict):
    """One node of ``table``'s cluster on a free loopback port."""
    async with open_node(node_id, name, strict_codec=True) as node:
        await start(node, redis_config(name, table))
        yield node


@asynccontextmanager
async def redis_nodes(names: list[str], table: dict):
    """Nodes ``names`` (ids 1, 2, ...), started in order; yields them by name."""
    async with AsyncExitStack() as stack:
        nodes = {}
        for node_id, name in enumerate(names, 1):
            nodes[name] = await stack.enter_async_context(redis_node(name, node_id, table))
        yield nodes


@asynccontextmanager
async def raw_redis(url: str):
    """A plain client, to look at what the nodes stored."""
    async with coredis.Redis.from_url(url, decode_responses=True) as client:
        yield client
