"""The service that runs a node's side of the cluster (``.cluster``): it owns the link
listener and every link's task, and answers other nodes' questions."""

from __future__ import annotations

from meshnet.address import Address
from meshnet.cluster.cluster import Cluster
from meshnet.errors import NoSuchService
from meshnet.service import Service, command

NAME = ".cluster"


class ClusterService(Service):
    """One per node in a cluster; started by ``meshnet.cluster.start``."""

    max_concurrency = 4096
    mailbox_size = 65536

    async def init(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.register(NAME)
        self.node.multicast.remote = cluster.channels
        # listening before joining: once discovery tells the others of this node, they can dial it
        listeners = await cluster.listen(self.fork)
        self.fork(cluster.serve, listeners)
        await self._ctx.nursery.start(cluster.discovery.run)

    async def on_exit(self) -> None:
        for link in self.cluster.links():
            link.stop("the node is leaving the cluster")
        if self.node.remote is self.cluster:
            self.node.remote = None
            self.node.multicast.remote = None

    @command
    async def channel_join(self, channel: int, node_id: int) -> None:
        """Node ``node_id`` subscribes to ``channel``, homed here."""
        self.node.multicast.remote_node(channel, node_id, subscribed=True)

    @command
    async def channel_leave(self, channel: int, node_id: int) -> None:
        """Node ``node_id`` no longer subscribes to ``channel``."""
        self.node.multicast.remote_node(channel, node_id, subscribed=False)

    @command
    async def publish(self, source: int, channel: int, args: list) -> int:
        """A publication made on another node, on a channel homed here."""
        return await self.node.multicast.fan_out(source, channel, tuple(args))

    @command
    async def unique(self, key: str, args: list) -> Address:
        """Start (or find) this node's instance of ``key`` for another node's
        ``uniqueservice(..., cluster=True)``."""
        return await self.node.uniqueservice(key, *args)

    @command
    async def query(self, name: str) -> Address:
        """The address registered as ``name`` here with ``cluster.register``."""
        address = self.cluster.registered.get(name)
        if address is None or self.node.context_of(address) is None:
            raise NoSuchService(f"{self.node.name}@{name}", "no service registered under it")
        return Address(address)
