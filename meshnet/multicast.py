"""Multicast channels (skynet's ``skynet.multicast``), on one node or across a cluster.

A channel belongs to the service that created it, on its *home* node: it is deleted when
that service ends. Deleting a channel tells each subscriber, through its mailbox and after
every publication sent before, so a subscriber sees the deletion in order and may react
(``on_delete``). A channel's id is laid out like an address (its home node's id and
incarnation, a local number), so any node can tell where a channel lives.

With a cluster (``remote`` set), a service may subscribe to a channel of another node:
its node subscribes once, for all its services, at the channel's home; the home sends each
publication once to every node with subscribers, which hands it to its own. A publication
made on another node goes to the home first. Order per pair holds for publications made
on the channel's home node; a remote subscriber whose mailbox is full misses a
publication (counted in ``undelivered``, logged) rather than stalling the link.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from meshnet import codec
from meshnet.address import MAX_LOCAL, Address, format_address
from meshnet.context import ServiceContext
from meshnet.errors import CallError, MeshnetError, NoSuchService
from meshnet.message import CHANNEL_DELETED, MULTICAST, Message

logger = logging.getLogger(__name__)

Callback = Callable[..., Awaitable[Any]]
DeleteCallback = Callable[[int], Awaitable[Any]]
Lookup = Callable[[int], "ServiceContext | None"]


class MulticastError(MeshnetError):
    """The channel does not exist (never created, or deleted)."""


class MulticastRemote(Protocol):
    """What the cluster does for channels that span nodes."""

    def subscribe(self, channel: int) -> None:
        """This node now has subscribers of ``channel`` (homed elsewhere): tell its home."""
        ...

    def unsubscribe(self, channel: int) -> None:
        """This node has no more subscribers of ``channel``: tell its home."""
        ...

    async def publish(self, source: int, channel: int, args: tuple[Any, ...]) -> None:
        """Hand a publication on a channel homed elsewhere to its home."""
        ...

    def forward(self, nodes: set[int], message: Message) -> int:
        """Send a publication or deletion notice to the subscribing ``nodes``; return how
        many took it."""
        ...


class MulticastHub:
    """Every channel of a node, its creator, and who subscribes to it."""

    def __init__(self, lookup: Lookup, node_id: int = 0, incarnation: int = 0) -> None:
        self._lookup = lookup
        self._home = Address.make(node_id, 0, incarnation)
        self._channels: dict[int, _Channel] = {}
        """Channels homed here, and those of other nodes this node subscribes to."""
        self._owned: dict[int, set[int]] = {}
        """Creator's address -> the channels it created."""
        self._last_channel = 0
        self.remote: MulticastRemote | None = None
        self.undelivered = 0
        """Publications a subscriber could not take (mailbox full under 'reject', or gone)."""

    def new(self, creator: ServiceContext) -> int:
        """Create a channel owned by ``creator`` and return its id."""
        while True:
            self._last_channel = self._last_channel % MAX_LOCAL + 1
            channel = self._home | self._last_channel
            if channel not in self._channels:
                break
        self._channels[channel] = _Channel(creator.address)
        self._owned.setdefault(creator.address, set()).add(channel)
        return channel

    def delete(self, channel: int, by: ServiceContext) -> None:
        """Remove a channel; each subscriber is told, after what was published before."""
        record = self._channel(channel)
        if not self._is_home(channel):
            raise MulticastError(f"channel {channel:#x} belongs to another node: only it deletes")
        del self._channels[channel]
        self._owned.get(record.creator, set()).discard(channel)
        notice = Message(MULTICAST, by.address, 0, CHANNEL_DELETED, (channel, ()))
        self._notify(record.subscribers, notice)
        if record.nodes and self.remote is not None:
            self.remote.forward(record.nodes, notice)

    def subscribe(
        self,
        ctx: ServiceContext,
        channel: int,
        callback: Callback,
        on_delete: DeleteCallback | None = None,
    ) -> None:
        """Have ``callback(channel, source, *args)`` run in ``ctx`` for every publication,
        and ``on_delete(channel)`` once the channel is deleted."""
        record = self._channels.get(channel)
        if record is None:
            if self._is_home(channel) or self.remote is None:
                raise MulticastError(f"multicast channel {channel:#x} does not exist")
            record = self._channels[channel] = _Channel(None)
            self.remote.subscribe(channel)
        record.subscribers.add(ctx.address)
        ctx.subscriptions[channel] = (callback, on_delete)

    def unsubscribe(self, ctx: ServiceContext, channel: int) -> None:
        """Stop delivering ``channel`` to ``ctx`` (publications already queued are dropped)."""
        self._leave(self._channel(channel), channel, ctx.address)
        ctx.subscriptions.pop(channel, None)

    async def publish(self, source: ServiceContext, channel: int, args: tuple[Any, ...]) -> int:
        """Queue ``args`` for every subscriber; return how many took it (a node that
        subscribes counts once).

        Each local subscriber's mailbox policy applies as for a send: a full 'wait' mailbox
        makes the publisher wait, a full 'reject' mailbox misses this publication (logged).
        """
        if source.runtime.strict_codec:
            args = codec.roundtrip_args(args)
        if not self._is_home(channel):
            if self.remote is None:
                raise MulticastError(f"multicast channel {channel:#x} does not exist")
            await self.remote.publish(source.address, channel, args)
            return 1
        return await self.fan_out(source.address, channel, args)

    async def fan_out(self, source: int, channel: int, args: tuple[Any, ...]) -> int:
        """Deliver a publication to the subscribers here (and, at its home, to the other
        subscribing nodes); return how many took it."""
        record = self._channel(channel)
        delivered = 0
        for address in list(record.subscribers):
            ctx = self._lookup(address)
            try:
                if ctx is None:
                    raise NoSuchService(format_address(address), "subscriber vanished")
                await ctx.mailbox.put(Message(MULTICAST, source, 0, None, (channel, args)))
            except CallError as exc:
                self.undelivered += 1
                logger.warning("channel %#x: publication not delivered: %s", channel, exc)
            else:
                delivered += 1
        if record.nodes and self.remote is not None:
            publication = Message(MULTICAST, source, 0, None, (channel, args))
            delivered += self.remote.forward(record.nodes, publication)
        return delivered

    def arrived(self, message: Message) -> None:
        """A publication or deletion notice from a channel's home node: hand it to the
        subscribers here, never waiting (a full mailbox misses it)."""
        channel = message.args[0]
        record = self._channels.get(channel)
        if record is None:
            return
        if message.name == CHANNEL_DELETED:
            del self._channels[channel]
            self._notify(record.subscribers, message)
            return
        for address in list(record.subscribers):
            ctx = self._lookup(address)
            try:
                if ctx is None or not ctx.mailbox.try_put(message):
                    raise NoSuchService(format_address(address), "subscriber gone or mailbox full")
            except CallError as exc:
                self.undelivered += 1
                logger.warning("channel %#x: publication not delivered: %s", channel, exc)

    def remote_node(self, channel: int, node_id: int, subscribed: bool) -> None:
        """At a channel's home: node ``node_id`` has subscribers of it now, or no more."""
        record = self._channel(channel)
        (record.nodes.add if subscribed else record.nodes.discard)(node_id)

    def forget(self, ctx: ServiceContext) -> None:
        """A service has exited: drop its subscriptions and delete the channels it made."""
        for channel in ctx.subscriptions:
            record = self._channels.get(channel)
            if record is not None:
                self._leave(record, channel, ctx.address)
        ctx.subscriptions.clear()
        for channel in self._owned.pop(ctx.address, set()):
            self.delete(channel, ctx)

    def _leave(self, record: _Channel, channel: int, address: int) -> None:
        record.subscribers.discard(address)
        if not record.subscribers and not self._is_home(channel):
            del self._channels[channel]
            if self.remote is not None:
                self.remote.unsubscribe(channel)

    def _notify(self, subscribers: set[int], notice: Message) -> None:
        for address in subscribers:
            ctx = self._lookup(address)
            if ctx is not None and not ctx.mailbox.closed:
                ctx.mailbox.put_notice(notice)

    def _is_home(self, channel: int) -> bool:
        return channel & ~MAX_LOCAL == self._home

    def _channel(self, channel: int) -> _Channel:
        try:
            return self._channels[channel]
        except KeyError:
            raise MulticastError(f"multicast channel {channel:#x} does not exist") from None


class _Channel:
    __slots__ = ("creator", "subscribers", "nodes")

    def __init__(self, creator: int | None) -> None:
        self.creator = creator
        """The creator's address (None: a channel of another node, subscribed to here)."""
        self.subscribers: set[int] = set()
        self.nodes: set[int] = set()
        """At the home: the ids of other nodes that subscribe."""
