"""Multicast channels on one node."""

import pytest
import trio

from meshnet import CallError, MulticastError, Service, command


class Listener(Service):
    async def init(self):
        self.heard = []

    @command
    async def join(self, channel):
        self.subscribe(channel, self.hear)

    @command
    async def leave(self, channel):
        self.unsubscribe(channel)

    async def hear(self, channel, source, *args):
        self.heard.append([channel, *args])

    @command
    async def heard_so_far(self):
        return self.heard


class Announcer(Service):
    @command
    async def open_channel(self):
        return self.channel_new()

    @command
    async def announce(self, channel, *args):
        return await self.publish(channel, *args)

    @command
    async def close_channel(self, channel):
        self.channel_delete(channel)


async def setup(node, listeners=3):
    announcer = await node.newservice(Announcer)
    channel = await node.call(announcer, "open_channel")
    addresses = [await node.newservice(Listener) for _ in range(listeners)]
    for address in addresses:
        await node.call(address, "join", channel)
    return announcer, channel, addresses


async def test_publication_reaches_every_subscriber(node):
    announcer, channel, listeners = await setup(node)
    assert await node.call(announcer, "announce", channel, "hello", 1) == 3
    await trio.testing.wait_all_tasks_blocked()
    for listener in listeners:
        assert await node.call(listener, "heard_so_far") == [[channel, "hello", 1]]


async def test_unsubscribed_service_hears_nothing_more(node):
    announcer, channel, listeners = await setup(node, listeners=2)
    await node.call(listeners[0], "leave", channel)
    assert await node.call(announcer, "announce", channel, "news") == 1
    await trio.testing.wait_all_tasks_blocked()
    assert await node.call(listeners[0], "heard_so_far") == []


async def test_subscriber_that_exits_is_dropped_from_the_channel(node):
    announcer, channel, listeners = await setup(node, listeners=2)
    await node.kill(listeners[0])
    assert await node.call(announcer, "announce", channel, "news") == 1


async def test_publishing_on_a_deleted_channel_is_an_error(node):
    announcer, channel, _ = await setup(node, listeners=1)
    await node.call(announcer, "close_channel", channel)
    with pytest.raises(CallError, match="does not exist") as caught:
        await node.call(announcer, "announce", channel, "news")
    assert caught.value.remote_type == MulticastError.__name__
