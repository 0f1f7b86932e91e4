"""Redis discovery with a real redis-server and real nodes: joins, leaves, crashes,
cluster-wide names, node ids and unique services, and Redis going away."""

import pytest
import trio
from cluster_setup import wait_until
from redis_setup import redis_node, redis_nodes, redis_table

from meshnet import Service, command
from meshnet.cluster import of


class Store(Service):
    async def init(self, name=".store"):
        self.data = {}
        self.register(name)

    @command
    async def set(self, key, value):
        self.data[key] = value

    @command
    async def get(self, key):
        return self.data.get(key)


def view(node):
    return {member.name for member in of(node).discovery.members()}


async def test_a_node_that_joins_is_seen_and_called_by_the_others(redis, cluster_name):
    table = redis_table(redis.url, cluster_name)
    async with redis_node("a", 1, table) as a:
        async with redis_node("b", 2, table) as b:
            await b.newservice(Store)
            await wait_until(lambda: "b" in view(a), "a sees b")
            await a.call("b@.store", "set", "k", 1)
            assert await a.call("b@.store", "get", "k") == 1
