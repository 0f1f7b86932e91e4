"""Multicast channels across nodes: the cluster's side of ``meshnet.multicast``.

A node that subscribes to a channel homed elsewhere tells the home's ``.cluster``
(``channel_join``/``channel_leave``); a publication made away from home is sent there
(``publish``); the home forwards each publication (and a deletion) once per subscribing
node, as a ``MULTICAST`` message that the node hands to its own subscribers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshnet.address import Address
from meshnet.cluster import wire
from meshnet.message import MULTICAST, Message

if TYPE_CHECKING:
    from meshnet.cluster.cluster import Cluster

SERVICE = ".cluster"


class ClusterChannels:
    """The node's ``MulticastRemote``."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def subscribe(self, channel: int) -> None:
        """Tell the channel's home that this node subscribes."""
        self._tell_home(channel, "channel_join")

    def unsubscribe(self, channel: int) -> None:
        """Tell the channel's home that this node no longer subscribes."""
        self._tell_home(channel, "channel_leave")

    async def publish(self, source: int, channel: int, args: tuple[Any, ...]) -> None:
        """Send a publication to the channel's home, which hands it to every subscriber."""
        home = self._home(channel)
        await self._cluster.node.send(f"{home}@{SERVICE}", "publish", source, channel, list(args))

    def forward(self, nodes: set[int], message: Message) -> int:
        """Send a publication (or deletion) to each subscribing node whose link is up."""
        channel, args = message.args
        body = [channel, message.name, list(args)]
        frames = wire.encode_message(wire.MULTICAST, message.source, 0, 0, 0, body)
        sent = 0
        for node_id in nodes:
            member = self._cluster.discovery.member_by_id(node_id)
            link = None if member is None else self._cluster.link(member)
            if link is not None and link.send_answer((message.source, 0), frames):
                sent += 1
        return sent

    def arrived(self, envelope: wire.Envelope) -> None:
        """A publication from a channel's home: the node's subscribers get it."""
        payload = envelope.payload
        if isinstance(payload, list) and len(payload) == 3 and isinstance(payload[2], list):
            channel, name, args = payload
            message = Message(MULTICAST, envelope.source, 0, name, (channel, tuple(args)))
            self._cluster.node.multicast.arrived(message)

    def _tell_home(self, channel: int, command: str) -> None:
        cluster = self._cluster
        home = self._home(channel)
        cluster.spawn(cluster.node.send, f"{home}@{SERVICE}", command, channel, cluster.node.id)

    def _home(self, channel: int) -> str:
        member = self._cluster.discovery.member_by_id(Address(channel).node)
        if member is None:
            return f"node{Address(channel).node}"  # resolves to NodeDown, as for an address
        return member.name
