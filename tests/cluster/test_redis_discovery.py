"""Redis discovery with a real redis-server and real nodes: joins, leaves, crashes,
cluster-wide names, node ids and unique services, and Redis going away.

Times are short (``redis_setup.TTL``) but asserted nowhere: each test waits for an event
(with the generous guard of ``wait_until``) and checks what happened, in what order."""

import logging

import pytest
import trio
from cluster_setup import HOST, WAIT, NodeProcess, Store, free_port, node_config, wait_until
from redis_setup import TTL, raw_redis, redis_config, redis_node, redis_nodes, redis_table

from meshnet import (
    Address,
    NodeDown,
    NoSuchService,
    Service,
    ServiceStartError,
    command,
    open_node,
)
from meshnet.cluster import of, start
from meshnet.cluster.cluster import ClusterNameError
from meshnet.cluster.redis_discovery import RedisUnavailable

SERVICES = "redis_node_services"


class Counter(Service):
    @command
    async def where(self):
        return self.node.name


def view(node):
    return {member.name for member in of(node).discovery.members()}


def record_changes(node) -> list[tuple[str, bool]]:
    """What ``node``'s discovery tells the cluster from now on: (node, in the view after)."""
    discovery = of(node).discovery
    seen: list[tuple[str, bool]] = []
    tell = discovery.on_change

    def changed(names):
        seen.extend((name, discovery.member(name) is not None) for name in sorted(names))
        tell(names)

    discovery.on_change = changed
    return seen


async def call_once_up(node, target, command):
    """Call ``target`` as soon as its node is linked and the service registered."""
    with trio.fail_after(WAIT):
        while True:
            try:
                return await node.call(target, command)
            except (NodeDown, NoSuchService):
                await trio.sleep(0.05)


def node_process(tmp_path, table, name, node_id, names=(), uniques=()) -> NodeProcess:
    table = {**table, "address": f"{HOST}:{free_port()}"}
    args = [list(names), list(uniques)]
    config = node_config(tmp_path, name, table, f"{SERVICES}:Member", args, node_id=node_id)
    return NodeProcess(config)


# --- joining and leaving ---------------------------------------------------------------------


async def test_a_node_that_joins_is_seen_and_called_by_the_others(redis, cluster_name):
    table = redis_table(redis.url, cluster_name)
    async with redis_node("a", 1, table) as a:
        changes = record_changes(a)
        async with redis_node("b", 2, table) as b:
            await b.newservice(Store)
            await wait_until(lambda: "b" in view(a), "a sees b")
            await a.call("b@.store", "set", "k", 1)
            assert await a.call("b@.store", "get", "k") == 1
            assert of(b).discovery.member("a") == of(a).discovery.member("a")
        assert changes[0] == ("b", True)


async def test_a_node_that_stops_is_gone_from_the_others_view_at_once(redis, cluster_name):
    # a lease longer than the test's guard: only the stop itself can take b away in time
    table = redis_table(redis.url, cluster_name, ttl=3 * WAIT)
    async with redis_node("a", 1, table) as a:
        changes = record_changes(a)
        async with redis_node("b", 2, table):
            await wait_until(lambda: "b" in view(a), "a sees b")
        await wait_until(lambda: "b" not in view(a), "b is gone from a's view")
        with pytest.raises(NodeDown):
            await a.call("b@.store", "get", "k")
        async with raw_redis(redis.url) as client:
            assert await client.exists([f"{cluster_name}:node:b", f"{cluster_name}:id:2"]) == 0
        assert changes == [("b", True), ("b", False)]


async def test_a_crashed_node_process_leaves_the_view_when_its_lease_expires(
    redis, cluster_name, tmp_path
):
    table = redis_table(redis.url, cluster_name)
    async with redis_node("a", 1, table) as a:
        changes = record_changes(a)
        b = node_process(tmp_path, table, "b", 2)
        b.start()
        try:
            assert await call_once_up(a, "b@.member", "where") == "b"
            b.kill()  # SIGKILL: b takes nothing out of Redis
            await wait_until(lambda: "b" not in view(a), "b's lease expires")
            with pytest.raises(NodeDown):
                await a.call("b@.member", "where")
        finally:
            b.stop()
        assert changes == [("b", True), ("b", False)]
        assert "left the cluster" not in b.text()


async def test_a_restarted_node_process_rejoins_and_is_called_again(redis, cluster_name, tmp_path):
    table = redis_table(redis.url, cluster_name)
    async with redis_node("a", 1, table) as a:
        changes = record_changes(a)
        b = node_process(tmp_path, table, "b", 2)
        b.start()
        try:
            assert await call_once_up(a, "b@.member", "where") == "b"
            b.kill()
            b.start()  # at once: its earlier life may still be in Redis
            await wait_until(lambda: len(changes) > 1 and changes[-1] == ("b", True), "new b")
            assert await call_once_up(a, "b@.member", "where") == "b"
        finally:
            b.stop()
        assert changes[0] == ("b", True)  # then, if a saw the gap, ("b", False)


async def test_a_node_waits_for_a_lease_nobody_refreshes_then_joins(redis, cluster_name, caplog):
    caplog.set_level(logging.INFO, "meshnet.cluster.redis_discovery")
    async with raw_redis(redis.url) as client:  # as a crashed earlier start of b leaves them
        for key in ("id:2", "node:b"):
            await client.set(f"{cluster_name}:{key}", "b/00000001", px=int(2 * TTL * 1000))
    async with redis_nodes(["a", "b"], redis_table(redis.url, cluster_name)) as nodes:
        assert "waiting" in caplog.text and "of b to lapse" in caplog.text
        await nodes["b"].newservice(Store)
        await wait_until(lambda: "b" in view(nodes["a"]), "a sees b")
        assert await nodes["a"].call("b@.store", "get", "k") is None


# --- cluster-wide names ------------------------------------------------------------------------


async def test_a_name_registered_on_one_node_is_called_by_its_bare_name_from_another(
    redis, cluster_name
):
    async with redis_nodes(["a", "b"], redis_table(redis.url, cluster_name)) as nodes:
        a, b = nodes["a"], nodes["b"]
        store = await b.newservice(Store)
        await of(b).register("lobby", store)
        await wait_until(lambda: of(a).discovery.home_of("lobby") == "b", "a learns lobby")
        await a.call("lobby", "set", "k", "v")
        assert await a.call("lobby", "get", "k") == "v"


async def test_a_name_unregistered_on_one_node_is_gone_from_the_others(redis, cluster_name):
    async with redis_nodes(["a", "b"], redis_table(redis.url, cluster_name)) as nodes:
        a, b = nodes["a"], nodes["b"]
        await of(b).register("lobby", await b.newservice(Store))
        await wait_until(lambda: of(a).discovery.home_of("lobby") == "b", "a learns lobby")
        await of(b).unregister("lobby")
        await wait_until(lambda: of(a).discovery.home_of("lobby") is None, "lobby is gone")
        with pytest.raises(NoSuchService):
            await a.call("lobby", "get", "k")


async def test_a_name_held_by_another_node_is_refused(redis, cluster_name):
    async with redis_nodes(["a", "b"], redis_table(redis.url, cluster_name)) as nodes:
        a, b = nodes["a"], nodes["b"]
        await of(a).register("lobby", await a.newservice(Store))
        with pytest.raises(ClusterNameError, match="'lobby' is held by node a"):
            await of(b).register("lobby", await b.newservice(Store))
        assert "lobby" not in of(b).registered
        assert of(b).discovery.home_of("lobby") == "a"


async def test_the_names_of_a_node_that_leaves_go_with_it(redis, cluster_name):
    table = redis_table(redis.url, cluster_name, ttl=3 * WAIT)
    async with redis_node("a", 1, table) as a:
        async with redis_node("b", 2, table) as b:
            await of(b).register("lobby", await b.newservice(Store))
            await wait_until(lambda: of(a).discovery.home_of("lobby") == "b", "a learns lobby")
        await wait_until(lambda: of(a).discovery.home_of("lobby") is None, "lobby is gone")
        await of(a).register("lobby", await a.newservice(Store))  # free for a now


# --- node ids and names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, node_id, held",
    [("x", 1, "node id 1"), ("a", 5, "node name 'a'"), ("a", 1, "node id 1 and node name 'a'")],
)
async def test_a_node_id_or_name_held_by_a_live_node_is_refused(
    redis, cluster_name, name, node_id, held
):
    table = redis_table(redis.url, cluster_name)
    async with redis_node("a", 1, table) as a, open_node(node_id, name) as other:
        with pytest.raises(ServiceStartError, match=f"its {held} (is|are) held .* live node a"):
            await start(other, redis_config(name, table))
        assert view(a) == {"a"}
        async with raw_redis(redis.url) as client:
            assert await client.get(f"{cluster_name}:id:1") == of(a).discovery._token


async def test_a_node_whose_id_another_node_took_leaves_the_cluster(redis, cluster_name, caplog):
    async with redis_nodes(["a", "b"], redis_table(redis.url, cluster_name)) as nodes:
        b = nodes["b"]
        async with raw_redis(redis.url) as client:  # as if b had been away past its lease
            await client.set(f"{cluster_name}:id:2", "intruder/00000001", px=int(WAIT * 1000))
        await wait_until(lambda: b.remote is None, "b leaves the cluster")
    assert "node id 2 is held in Redis by the live node intruder" in caplog.text
    assert "this node leaves the cluster" in caplog.text


async def test_a_name_another_node_took_is_dropped_and_the_node_stays(redis, cluster_name, caplog):
    async with redis_nodes(["a", "b"], redis_table(redis.url, cluster_name)) as nodes:
        a, b = nodes["a"], nodes["b"]
        await of(b).register("lobby", await b.newservice(Store))
        async with raw_redis(redis.url) as client:
            await client.set(f"{cluster_name}:name:lobby", "a/00000001", px=int(WAIT * 1000))
        await wait_until(lambda: "'lobby' is now held by node a" in caplog.text, "b notices")
        await b.newservice(Store, ".other")
        assert await a.call("b@.other", "get", "k") is None  # b is still in the cluster


# --- unique services ---------------------------------------------------------------------------


async def test_the_nodes_agree_on_the_one_instance_of_a_unique_service(redis, cluster_name):
    async with redis_nodes(["a", "b", "c"], redis_table(redis.url, cluster_name)) as nodes:
        addresses = {}

        async def ask(name):
            addresses[name] = await nodes[name].uniqueservice(Counter, cluster=True)

        async with trio.open_nursery() as nursery:
            for name in nodes:
                nursery.start_soon(ask, name)
        assert len(set(addresses.values())) == 1
        owner = await nodes["a"].call(addresses["a"], "where")
        assert Address(addresses["a"]).node == nodes[owner].id


async def test_a_unique_service_moves_when_its_owner_stops(redis, cluster_name):
    table = redis_table(redis.url, cluster_name, ttl=3 * WAIT)
    async with redis_node("a", 1, table) as a:
        async with redis_node("b", 2, table) as b:
            await b.uniqueservice(Counter, cluster=True)  # b claims it first
            on_b = await a.uniqueservice(Counter, cluster=True)
            assert await a.call(on_b, "where") == "b"
        await wait_until(lambda: "b" not in view(a), "b is gone")
        moved = await a.uniqueservice(Counter, cluster=True)
        assert await a.call(moved, "where") == "a"


async def test_a_unique_service_moves_when_its_owner_crashes(redis, cluster_name, tmp_path):
    table = redis_table(redis.url, cluster_name)
    counter = f"{SERVICES}:Counter"
    async with redis_node("a", 1, table) as a:
        b = node_process(tmp_path, table, "b", 2, uniques=[counter])
        b.start()
        try:
            async with raw_redis(redis.url) as client:
                key = f"{cluster_name}:unique:{counter}"
                with trio.fail_after(WAIT):  # b claims it once it has joined
                    while not (await client.get(key) or "").startswith("b/"):
                        await trio.sleep(0.05)
            assert await a.call(await a.uniqueservice(counter, cluster=True), "where") == "b"
            b.kill()
            with trio.fail_after(WAIT):
                while True:
                    try:
                        moved = await a.uniqueservice(counter, cluster=True)
                        break
                    except NodeDown:  # b's claim lives until its lease expires
                        await trio.sleep(0.05)
            assert await a.call(moved, "where") == "a"
        finally:
            b.stop()


# --- Redis going away --------------------------------------------------------------------------


async def test_nodes_keep_calling_each_other_while_redis_is_away_and_register_again_after(
    redis, cluster_name, caplog
):
    caplog.set_level(logging.INFO, "meshnet.cluster.redis_discovery")
    async with redis_nodes(["a", "b"], redis_table(redis.url, cluster_name)) as nodes:
        a, b = nodes["a"], nodes["b"]
        await of(b).register("lobby", await b.newservice(Store))
        await wait_until(lambda: of(a).discovery.home_of("lobby") == "b", "a learns lobby")
        changes = record_changes(a)
        redis.stop()
        redis.wipe()  # it comes back empty: the nodes must register again
        for value in range(30):  # about three leases without Redis
            await a.call("lobby", "set", "k", value)
            assert await a.call("b@.store", "get", "k") == value
            await trio.sleep(TTL / 10)
        redis.start()
        async with raw_redis(redis.url) as client:
            keys = [f"{cluster_name}:{key}" for key in ("node:a", "node:b", "id:1", "id:2")]

            async def registered() -> bool:
                return (
                    await client.exists(keys) == 4
                    and await client.get(f"{cluster_name}:name:lobby") == of(b).discovery._token
                )

            with trio.fail_after(WAIT):
                while not await registered():
                    await trio.sleep(0.05)
        async with redis_node("c", 3, redis_table(redis.url, cluster_name)) as c:
            assert view(c) == {"a", "b", "c"}
            assert await c.call("lobby", "get", "k") == 29
        await wait_until(lambda: caplog.text.count("is back after") == 2, "both are back")
        assert ("b", False) not in changes  # a never lost b
        assert caplog.text.count("is unreachable") == 2  # once per node, not per retry


async def test_a_name_cannot_be_registered_while_redis_is_away(redis, cluster_name):
    async with redis_nodes(["a"], redis_table(redis.url, cluster_name)) as nodes:
        a = nodes["a"]
        store = await a.newservice(Store)
        redis.stop()
        with pytest.raises(RedisUnavailable, match="'lobby' cannot be claimed"):
            await of(a).register("lobby", store)
        assert "lobby" not in of(a).registered


async def test_a_name_unregistered_while_redis_is_away_goes_when_it_is_back(redis, cluster_name):
    # the keys outlive the short outage; a, if it missed the withdrawal's message while it
    # was away, reads the names again at the latest one lease after Redis is back
    table = redis_table(redis.url, cluster_name, ttl=5 * TTL)
    async with redis_nodes(["a", "b"], table) as nodes:
        a, b = nodes["a"], nodes["b"]
        await of(b).register("lobby", await b.newservice(Store))
        await wait_until(lambda: of(a).discovery.home_of("lobby") == "b", "a learns lobby")
        redis.stop()
        await of(b).unregister("lobby")
        redis.start()
        await wait_until(lambda: of(a).discovery.home_of("lobby") is None, "lobby is gone")
        async with raw_redis(redis.url) as client:
            assert await client.exists([f"{cluster_name}:name:lobby"]) == 0


async def test_a_node_cannot_start_without_redis(cluster_name):
    table = redis_table(f"redis://{HOST}:{free_port()}/0", cluster_name, connect_timeout=0.5)
    async with open_node(1, "a") as node:
        with pytest.raises(ServiceStartError, match="cannot reach Redis at redis://127.0.0.1"):
            await start(node, redis_config("a", table))


# --- bad data in Redis -------------------------------------------------------------------------


async def test_a_malformed_node_entry_in_redis_is_ignored(redis, cluster_name, caplog):
    async with redis_nodes(["a", "b"], redis_table(redis.url, cluster_name)) as nodes:
        a = nodes["a"]
        await nodes["b"].newservice(Store)
        async with raw_redis(redis.url) as client:
            await client.set(f"{cluster_name}:node:evil", "{not json")
            await client.sadd(f"{cluster_name}:nodes", ["evil"])
            await client.publish(f"{cluster_name}:events", "node evil")
            await client.publish(f"{cluster_name}:events", "nonsense")
        await wait_until(lambda: "ignored node 'evil'" in caplog.text, "a reads evil")
        assert view(a) == {"a", "b"}
        assert await a.call("b@.store", "get", "k") is None
