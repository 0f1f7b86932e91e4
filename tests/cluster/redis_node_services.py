"""Services of the node processes in the Redis discovery tests."""

from meshnet import Service, cluster, command


class Member(Service):
    """A node's start service (``.member``): holds the cluster-wide names and the unique
    services it is given, and says which node it is on."""

    async def init(self, names=(), uniques=()):
        self.register(".member")
        for name in names:
            await cluster.register(name)
        for key in uniques:
            await self.node.uniqueservice(key, cluster=True)

    @command
    async def where(self):
        return self.node.name


class Counter(Service):
    """A service the cluster runs once (``uniqueservice(cluster=True)``)."""

    @command
    async def where(self):
        return self.node.name
