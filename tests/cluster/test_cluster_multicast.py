"""Multicast channels whose subscribers are on other nodes."""

import trio
from cluster_setup import linked_nodes

from meshnet import Service, command


class Announcer(Service):
    @command
    async def open_channel(self):
        self.channel = self.channel_new()
        return self.channel

    @command
    async def announce(self, text):
        return await self.publish(self.channel, text)

    @command
    async def close_channel(self):
        self.channel_delete(self.channel)


class Listener(Service):
    async def init(self):
        self.heard = []

    @command
    async def join(self, channel):
        self.subscribe(channel, self.hear, on_delete=self.gone)

    @command
    async def leave(self, channel):
        self.unsubscribe(channel)

    @command
    async def shout(self, channel, text):
        await self.publish(channel, text)

    async def hear(self, channel, source, text):
        self.heard.append(text)

    async def gone(self, channel):
        self.heard.append("deleted")

    @command
    async def heard_so_far(self):
        return self.heard


async def heard(node, listener, count):
    with trio.fail_after(10):
        while len(got := await node.call(listener, "heard_so_far")) < count:
            await trio.sleep(0.01)
    return got


async def test_a_publication_reaches_subscribers_on_every_node(autojump_clock):
    async with linked_nodes(["a", "b", "c"]) as nodes:
        announcer = await nodes["a"].newservice(Announcer)
        channel = await nodes["a"].call(announcer, "open_channel")
        listeners = {name: await node.newservice(Listener) for name, node in nodes.items()}
        for name, listener in listeners.items():
            await nodes[name].call(listener, "join", channel)
        await trio.sleep(1)  # the joins reach the channel's home
        for text in ("one", "two"):
            await nodes["a"].call(announcer, "announce", text)
        for name, listener in listeners.items():
            assert await heard(nodes[name], listener, 2) == ["one", "two"]


async def test_a_publication_made_on_another_node_reaches_every_subscriber(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        announcer = await nodes["a"].newservice(Announcer)
        channel = await nodes["a"].call(announcer, "open_channel")
        here, there = await nodes["a"].newservice(Listener), await nodes["b"].newservice(Listener)
        await nodes["a"].call(here, "join", channel)
        await nodes["b"].call(there, "join", channel)
        await trio.sleep(1)
        await nodes["b"].call(there, "shout", channel, "from b")
        assert await heard(nodes["a"], here, 1) == ["from b"]
        assert await heard(nodes["b"], there, 1) == ["from b"]


async def test_remote_subscribers_hear_the_deletion_after_earlier_publications(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        announcer = await nodes["a"].newservice(Announcer)
        channel = await nodes["a"].call(announcer, "open_channel")
        listener = await nodes["b"].newservice(Listener)
        await nodes["b"].call(listener, "join", channel)
        await trio.sleep(1)
        await nodes["a"].call(announcer, "announce", "last")
        await nodes["a"].kill(announcer)  # its channel goes with it
        assert await heard(nodes["b"], listener, 2) == ["last", "deleted"]


async def test_a_node_whose_last_subscriber_left_gets_no_more_publications(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        announcer = await nodes["a"].newservice(Announcer)
        channel = await nodes["a"].call(announcer, "open_channel")
        listener = await nodes["b"].newservice(Listener)
        await nodes["b"].call(listener, "join", channel)
        await trio.sleep(1)
        await nodes["b"].call(listener, "leave", channel)
        await trio.sleep(1)
        assert await nodes["a"].call(announcer, "announce", "nobody hears") == 0
