"""Multicast channels on one node (skynet's ``skynet.multicast``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from meshnet import codec
from meshnet.address import format_address
from meshnet.errors import CallError, MeshnetError, NoSuchService
from meshnet.message import MULTICAST, Message

if TYPE_CHECKING:
    from meshnet.context import ServiceContext
    from meshnet.node import Node

logger = logging.getLogger(__name__)

Callback = Callable[..., Awaitable[Any]]


class MulticastError(MeshnetError):
    """The channel does not exist (never created, or deleted)."""


class MulticastHub:
    """Every channel of a node and who subscribes to it."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._channels: dict[int, set[int]] = {}
        self._last_channel = 0
        self.undelivered = 0
        """Publications a subscriber could not take (mailbox full under 'reject', or gone)."""

    def new(self) -> int:
        """Create a channel and return its id."""
        self._last_channel += 1
        self._channels[self._last_channel] = set()
        return self._last_channel

    def delete(self, channel: int) -> None:
        """Remove a channel; its subscribers receive nothing more from it."""
        for address in self._subscribers(channel):
            ctx = self._node.context_of(address)
            if ctx is not None:
                ctx.subscriptions.pop(channel, None)
        del self._channels[channel]

    def subscribe(self, ctx: ServiceContext, channel: int, callback: Callback) -> None:
        """Have ``callback(channel, source, *args)`` run in ``ctx`` for every publication."""
        self._subscribers(channel).add(ctx.address)
        ctx.subscriptions[channel] = callback

    def unsubscribe(self, ctx: ServiceContext, channel: int) -> None:
        self._subscribers(channel).discard(ctx.address)
        ctx.subscriptions.pop(channel, None)

    async def publish(self, source: ServiceContext, channel: int, args: tuple[Any, ...]) -> int:
        """Queue ``args`` for every subscriber; return how many took it.

        Each subscriber's mailbox policy applies as for a send: a full 'wait' mailbox makes
        the publisher wait, a full 'reject' mailbox misses this publication (logged).
        """
        if self._node.strict_codec:
            args = codec.roundtrip_args(args)
        delivered = 0
        for address in list(self._subscribers(channel)):
            ctx = self._node.context_of(address)
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
        """Drop every subscription of a service that has exited."""
        for channel in ctx.subscriptions:
            self._channels.get(channel, set()).discard(ctx.address)
        ctx.subscriptions.clear()

    def _subscribers(self, channel: int) -> set[int]:
        try:
            return self._channels[channel]
        except KeyError:
            raise MulticastError(f"multicast channel {channel} does not exist") from None
