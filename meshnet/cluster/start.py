"""Joining a node to its cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshnet.cluster import console  # noqa: F401 - declares the console's cluster commands
from meshnet.cluster.cluster import Cluster
from meshnet.cluster.config import ClusterConfig
from meshnet.cluster.discovery import Discovery, StaticDiscovery
from meshnet.cluster.service import ClusterService
from meshnet.cluster.skynet.listener import SkynetListener

if TYPE_CHECKING:
    from meshnet.node import Node


async def start(node: Node, config: ClusterConfig) -> Cluster:
    """Make ``node`` part of the cluster ``config`` describes: listen for links (and for
    skynet nodes, with ``skynet_listen``), and reach the other nodes' services from now
    on. Returns the node's ``Cluster``."""
    discovery = _discovery(node, config)
    cluster = Cluster(node, config, discovery)
    discovery.on_change = cluster.view_changed
    node.remote = cluster
    await node.newservice(ClusterService, cluster)
    if config.skynet.listen is not None:
        await node.newservice(SkynetListener, cluster)
    return cluster


def _discovery(node: Node, config: ClusterConfig) -> Discovery:
    if config.discovery == "redis":
        from meshnet.cluster.redis_discovery import RedisDiscovery

        return RedisDiscovery(node, config)
    return StaticDiscovery(config)
