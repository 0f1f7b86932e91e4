"""Seed 001's cluster API: register, query, proxy, call and send with '@name'; cluster-wide
names, cluster-unique services, absent nodes, waiting for a node, and incarnations."""

import pytest
import trio
from cluster_setup import REPO, cluster_table, linked_nodes

from meshnet import Address, CallError, NodeDown, NoSuchService, Service, command, open_node
from meshnet.cluster import api, of, parse_cluster, start


class Counter(Service):
    async def init(self):
        self.value = 0

    @command
    async def bump(self):
        self.value += 1
        return self.value


class Player(Service):
    """Uses seed 001's functions from inside a service, as game code would."""

    @command
    async def publish(self, name):
        await api.register(name)

    @command
    async def bump_via(self, node, target):
        return await api.call(node, target, "bump")

    @command
    async def send_via(self, node, target):
        await api.send(node, target, "bump")

    @command
    async def query(self, node, name):
        return await api.query(node, name)

    @command
    async def proxy(self, node, target):
        return api.proxy(node, target)

    @command
    async def unique(self):
        return await self.uniqueservice(Counter, cluster=True)


async def test_a_registered_name_is_reached_with_at_name_and_found_by_query(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        counter = await nodes["b"].newservice(Counter)
        await of(nodes["b"]).register("counter", counter)
        player = await nodes["a"].newservice(Player)
        assert await nodes["a"].call(player, "bump_via", "b", "@counter") == 1
        await nodes["a"].call(player, "send_via", "b", "@counter")
        assert await nodes["a"].call(player, "query", "b", "counter") == counter
        assert await nodes["a"].call("b@counter", "bump") == 3


async def test_a_proxy_is_a_local_address_that_forwards(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        counter = await nodes["b"].newservice(Counter)
        player = await nodes["a"].newservice(Player)
        proxy = await nodes["a"].call(player, "proxy", "b", counter)
        assert Address(proxy).node == nodes["a"].id
        assert await nodes["a"].call(proxy, "bump") == 1
        assert await nodes["a"].call(player, "proxy", "b", counter) == proxy


async def test_an_unregistered_or_unknown_name_is_no_such_service(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        player = await nodes["a"].newservice(Player)
        with pytest.raises(CallError) as caught:  # raised in Player's handler: wrapped
            await nodes["a"].call(player, "query", "b", "nobody")
        assert caught.value.remote_type == "NoSuchService"
        with pytest.raises(NoSuchService):
            await nodes["a"].call("b@nobody", "bump")


async def test_a_cluster_wide_name_from_the_cluster_file_resolves_on_its_node(autojump_clock):
    table = cluster_table(["a", "b"], names={"counter": "b"})
    async with linked_nodes(["a", "b"], table) as nodes:
        counter = await nodes["b"].newservice(Counter)
        await of(nodes["b"]).register("counter", counter)
        assert await nodes["a"].call("counter", "bump") == 1


async def test_uniqueservice_with_cluster_gives_one_instance_in_the_cluster(autojump_clock):
    async with linked_nodes(["a", "b", "c"]) as nodes:
        players = {name: await node.newservice(Player) for name, node in nodes.items()}
        addresses = {await nodes[n].call(players[n], "unique") for n in ("c", "b", "a", "c")}
        [address] = addresses
        assert Address(address).node == nodes["a"].id  # the lowest id of the cluster file


async def test_a_call_to_an_absent_node_fails_at_once(autojump_clock):
    table = cluster_table(["a", "b"])
    table["nodes"]["b"]["absent"] = True
    async with linked_nodes(["a"], table) as nodes:
        with pytest.raises(NodeDown, match="absent"):
            await nodes["a"].call("b@.anything", "bump")


async def test_a_call_that_waits_reaches_a_node_that_starts_later(autojump_clock):
    table = cluster_table(["a", "b"])
    async with linked_nodes(["a"], table) as early:
        player = await early["a"].newservice(Player)
        async with trio.open_nursery() as nursery:
            answers = []

            async def ask():
                answers.append(await api.of(early["a"]).wait_for("b", 30))

            nursery.start_soon(ask)
            await trio.sleep(2)
            async with linked_nodes(["b"], table) as late:
                counter = await late["b"].newservice(Counter)
                await of(late["b"]).register("counter", counter)
                with trio.fail_after(30):
                    while not answers:
                        await trio.sleep(0.1)
                assert await early["a"].call(player, "bump_via", "b", "@counter") == 1


async def test_an_address_from_a_restarted_nodes_earlier_life_reaches_nothing(autojump_clock):
    table = cluster_table(["a", "b"])
    async with linked_nodes(["a"], table) as nodes:
        async with open_node(2, "b") as first_life:
            await start(first_life, parse_cluster(table, REPO, "b"))
            old = await first_life.newservice(Counter)
            assert await nodes["a"].call(old, "bump") == 1
        async with open_node(2, "b") as second_life:
            await start(second_life, parse_cluster(table, REPO, "b"))
            new = await second_life.newservice(Counter)
            assert new.handle == old.handle  # the same node id and local id
            with trio.fail_after(30):
                while True:  # the link notices the restart and reconnects
                    try:
                        assert await nodes["a"].call(new, "bump") == 1
                        break
                    except NodeDown:
                        await trio.sleep(0.1)
            with pytest.raises(NoSuchService, match="earlier start"):
                await nodes["a"].call(old, "bump")


async def test_cluster_names_of_services_on_the_callers_own_node_resolve_too(autojump_clock):
    table = cluster_table(["a", "b"], names={"counter": "a"})
    async with linked_nodes(["a", "b"], table) as nodes:
        counter = await nodes["a"].newservice(Counter)
        await of(nodes["a"]).register("counter", counter)
        assert await nodes["a"].call("counter", "bump") == 1
        assert await nodes["a"].call("a@counter", "bump") == 2
        player = await nodes["a"].newservice(Player)
        assert await nodes["a"].call(player, "bump_via", "a", "@counter") == 3
