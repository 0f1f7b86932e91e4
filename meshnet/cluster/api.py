"""The cluster API of seed 001, for services: ``call``, ``send``, ``register``,
``unregister``, ``query``, ``proxy``, ``reload``.

Inside a service, the functions act for it (the current service); elsewhere, use the
``Cluster`` itself (``of(node)``), whose methods of the same names take the node's system
service as the caller.

``node`` is a node's name; ``target`` is an address, ``"@name"`` (registered there with
``cluster.register``) or ``".name"`` (a node-local name there), as in skynet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshnet.address import Address
from meshnet.cluster.cluster import Cluster
from meshnet.cluster.skynet.wire import QUERY_ADDRESS
from meshnet.context import NODE_DEFAULT, ServiceContext, current_service
from meshnet.errors import MeshnetError

if TYPE_CHECKING:
    from meshnet.node import Node

QUERY_TIMEOUT = 5.0


class NotInCluster(MeshnetError):
    """The node has no ``[cluster]`` (or ``meshnet.cluster.start`` was not called)."""


def of(node: Node) -> Cluster:
    """The cluster ``node`` is part of."""
    cluster = node.remote
    if not isinstance(cluster, Cluster):
        raise NotInCluster(f"node {node.name!r} is in no cluster (give it a [cluster] section)")
    return cluster


async def call(
    node: str,
    target: int | str,
    command: str,
    *args: Any,
    timeout: float | None = NODE_DEFAULT,
    wait: bool = False,
) -> Any:
    """Call ``command`` of ``target`` on ``node`` and return its answer.

    Fails at once with ``NodeDown`` if the node is unknown or known to be down, unless
    ``wait`` (then it waits for the node, within the call's deadline)."""
    ctx = _caller()
    cluster = _cluster(ctx)
    if wait:
        await cluster.wait_for(
            node, cluster.node.call_timeout if timeout is NODE_DEFAULT else timeout
        )
    return await ctx.call(cluster.target(node, target), command, args, timeout)


async def send(node: str, target: int | str, command: str, *args: Any) -> None:
    """Send ``command`` to ``target`` on ``node`` (nobody waits for an answer)."""
    ctx = _caller()
    await ctx.send(_cluster(ctx).target(node, target), command, args)


async def register(name: str, address: int | None = None) -> None:
    """Make ``address`` (default: the calling service) reachable as ``<this node>@name``
    (``cluster.call(node, "@name")``), and as the cluster-wide ``name``."""
    ctx = _caller()
    await _cluster(ctx).register(name, ctx.address if address is None else address)


async def unregister(name: str) -> None:
    """Drop a name given with ``register``."""
    await _cluster(_caller()).unregister(name)


async def query(node: str, name: str) -> Address:
    """The address registered as ``name`` on ``node`` (``NoSuchService`` if none); on a
    skynet node, skynet's address, for ``call(node, address, ...)``."""
    ctx = _caller()
    cluster = _cluster(ctx)
    member = cluster.discovery.member(node)
    answerer = cluster.target(node, QUERY_ADDRESS if member and member.skynet else ".cluster")
    return Address(await ctx.call(answerer, "query", (name,), QUERY_TIMEOUT))


def proxy(node: str, target: int | str) -> Address:
    """A local address whose calls and sends go to ``target`` on ``node``."""
    ctx = _caller()
    return _cluster(ctx).proxy(node, target)


def reload() -> set[str]:
    """Reread the cluster file (static discovery); return the nodes whose entry changed."""
    return _cluster(_caller()).reload()


def _caller() -> ServiceContext:
    ctx = current_service.get()
    if ctx is None:
        raise NotInCluster(
            "meshnet.cluster's functions act for the current service; outside one, use "
            "meshnet.cluster.of(node)"
        )
    return ctx


def _cluster(ctx: ServiceContext) -> Cluster:
    remote = getattr(ctx.runtime, "remote", None)
    if not isinstance(remote, Cluster):
        raise NotInCluster("this node is in no cluster (give it a [cluster] section)")
    return remote
