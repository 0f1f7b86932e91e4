"""Clusters of nodes: calls to addresses and names on other nodes.

A node with a ``[cluster]`` section in its config (or ``await start(node, config)``)
links to the other nodes on first use and reaches their services like its own:
addresses of other nodes, ``node@name`` and cluster-wide names work with plain
``call``/``send``; ``meshnet.cluster.api`` has seed 001's ``cluster.call``, ``send``,
``register``, ``query`` and ``proxy``. ``meshnet.cluster.skynet`` holds the codecs of
skynet's own cluster protocol.
"""

from __future__ import annotations

from meshnet.cluster.api import call, of, proxy, query, register, send, unregister
from meshnet.cluster.cluster import Cluster
from meshnet.cluster.config import ClusterConfig, ClusterConfigError, parse_cluster
from meshnet.cluster.start import start
from meshnet.errors import NodeDown

__all__ = [
    "Cluster",
    "ClusterConfig",
    "ClusterConfigError",
    "NodeDown",
    "call",
    "of",
    "parse_cluster",
    "proxy",
    "query",
    "register",
    "send",
    "start",
    "unregister",
]
