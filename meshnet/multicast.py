"""Multicast channels on one node (skynet's ``skynet.multicast``).

A channel belongs to the service that created it: it is deleted when that service ends.
Deleting a channel tells each subscriber, through its mailbox and after every publication
sent before, so a subscriber sees the deletion in order and may react (``on_delete``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from meshnet import codec
from meshnet.address import format_address
from meshnet.context import ServiceContext
from meshnet.errors import CallError, MeshnetError, NoSuchService
from meshnet.message import CHANNEL_DELETED, MULTICAST, Message

logger = logging.getLogger(__name__)

Callback = Callable[..., Awaitable[Any]]
DeleteCallback = Callable[[int], Awaitable[Any]]
Lookup = Callable[[int], "ServiceContext | None"]


class MulticastError(MeshnetError):
    """The channel does not exist (never created, or deleted)."""


class MulticastHub:
    """Every channel of a node, its creator, and who subscribes to it."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._channels: dict[int, _Channel] = {}
        self._owned: dict[int, set[int]] = {}
        """Creator's address -> the channels it created."""
        self._last_channel = 0
        self.undelivered = 0
        """Publications a subscriber could not take (mailbox full under 'reject', or gone)."""

    def new(self, creator: ServiceContext) -> int:
        """Create a channel owned by ``creator`` and return its id."""
        self._last_channel += 1
        self._channels[self._last_channel] = _Channel(creator.address)
        self._owned.setdefault(creator.address, set()).add(self._last_channel)
        return self._last_channel

    def delete(self, channel: int, by: ServiceContext) -> None:
        """Remove a channel; each subscriber is told, after what was published before."""
        record = self._channel(channel)
        del self._channels[channel]
        self._owned.get(record.creator, set()).discard(channel)
        subscribers = record.subscribers
        notice = (channel, ())
        for address in subscribers:
            ctx = self._lookup(address)
            if ctx is not None and not ctx.mailbox.closed:
                ctx.mailbox.put_notice(Message(MULTICAST, by.address, 0, CHANNEL_DELETED, notice))

    def subscribe(
        self,
        ctx: ServiceContext,
        channel: int,
        callback: Callback,
        on_delete: DeleteCallback | None = None,
    ) -> None:
        """Have ``callback(channel, source, *args)`` run in ``ctx`` for every publication,
        and ``on_delete(channel)`` once the channel is deleted."""
        self._channel(channel).subscribers.add(ctx.address)
        ctx.subscriptions[channel] = (callback, on_delete)

    def unsubscribe(self, ctx: ServiceContext, channel: int) -> None:
        """Stop delivering ``channel`` to ``ctx`` (publications already queued are dropped)."""
        self._channel(channel).subscribers.discard(ctx.address)
        ctx.subscriptions.pop(channel, None)

    async def publish(self, source: ServiceContext, channel: int, args: tuple[Any, ...]) -> int:
        """Queue ``args`` for every subscriber; return how many took it.

        Each subscriber's mailbox policy applies as for a send: a full 'wait' mailbox makes
        the publisher wait, a full 'reject' mailbox misses this publication (logged).
        """
        if source.runtime.strict_codec:
            args = codec.roundtrip_args(args)
        delivered = 0
        for address in list(self._channel(channel).subscribers):
            ctx = self._lookup(address)
            try:
                if ctx is None:
                    raise NoSuchService(format_address(address), "subscriber vanished")
                await ctx.mailbox.put(Message(MULTICAST, source.address, 0, None, (channel, args)))
            except CallError as exc:
                self.undelivered += 1
                logger.warning("channel %d: publication not delivered: %s", channel, exc)
            else:
                delivered += 1
        return delivered

    def forget(self, ctx: ServiceContext) -> None:
        """A service has exited: drop its subscriptions and delete the channels it made."""
        for channel in ctx.subscriptions:
            record = self._channels.get(channel)
            if record is not None:
                record.subscribers.discard(ctx.address)
        ctx.subscriptions.clear()
        for channel in self._owned.pop(ctx.address, set()):
            self.delete(channel, ctx)

    def _channel(self, channel: int) -> _Channel:
        try:
            return self._channels[channel]
        except KeyError:
            raise MulticastError(f"multicast channel {channel} does not exist") from None


class _Channel:
    __slots__ = ("creator", "subscribers")

    def __init__(self, creator: int) -> None:
        self.creator = creator
        self.subscribers: set[int] = set()
