"""A service on another node, as a destination: what ``node.resolve`` gives for it.

Putting a message into a ``RemoteService`` encodes it into link frames and queues them on
the link to its node, under the destination's credit (link.py): ``try_put`` is False when
the credit is used up, and ``wait_for_room`` waits for it, so a remote destination applies
backpressure as a full local mailbox does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshnet.cluster import wire
from meshnet.errors import UnknownKind
from meshnet.message import CLIENT, REQUEST, TEXT, Message

if TYPE_CHECKING:
    from meshnet.cluster.link import Link, Pair
    from meshnet.context import PendingCall
    from meshnet.node import Node

NAMED = 0
"""The credit key (and pair destination) of messages sent by name, not address."""


class RemoteService:
    """A service on the node at the other end of ``link``: by ``address``, or by ``name``
    (``"@name"`` for a name registered with ``cluster.register`` there, ``".name"`` for a
    node-local name there)."""

    __slots__ = ("_node", "_link", "_address", "_name", "_waiting")

    def __init__(self, node: Node, link: Link, address: int = 0, name: str | None = None) -> None:
        self._node = node
        self._link = link
        self._address = address
        self._name = name
        self._waiting: tuple[Pair, list[bytes], PendingCall | None] | None = None

    @property
    def mailbox(self) -> RemoteService:
        return self

    @property
    def label(self) -> str:
        shown = self._name if self._name is not None else f"{self._address:#x}"
        return f"{self._link.member.name}@{shown.lstrip('@')}"

    def try_put(self, message: Message) -> bool:
        """Queue ``message`` on the link; False when the destination's credit is used up."""
        call = self._pending_call(message)
        frames = self._frames(message, call)
        key = self._address if self._name is None else NAMED
        pair = (message.source, key)
        if self._link.try_send(key, pair, frames, call):
            return True
        self._waiting = (pair, frames, call)
        return False

    async def wait_for_room(self, message: Message) -> None:
        """Wait for credit, then queue what ``try_put`` could not."""
        assert self._waiting is not None
        pair, frames, call = self._waiting
        self._waiting = None
        await self._link.wait_credit(pair[1], pair, frames, call)

    async def put(self, message: Message) -> None:
        """``try_put``, then wait for credit if needed."""
        if not self.try_put(message):
            await self.wait_for_room(message)

    def _pending_call(self, message: Message) -> PendingCall | None:
        """The call ``message`` is, if a service of this node made it and still waits."""
        if not message.session:
            return None
        caller = self._node.context_of(message.source)
        return None if caller is None else caller.pending.get(message.session)

    def _frames(self, message: Message, call: PendingCall | None) -> list[bytes]:
        if message.kind == REQUEST:
            kind = wire.CALL if message.session else wire.SEND
            body: list[object] = [message.name, list(message.args)]
        elif message.kind in (CLIENT, TEXT):
            kind = wire.POST
            body = [message.kind, list(message.args)]
        else:
            raise UnknownKind(f"{message.kind!r} messages do not cross nodes this way")
        if self._name is not None:
            body.insert(0, self._name)
        timeout = call.timeout if call is not None else None
        deadline_ms = 0 if not timeout else max(1, int(timeout * 1000))
        return wire.encode_message(
            kind,
            message.source,
            self._address,
            message.session,
            deadline_ms,
            body,
            by_name=self._name is not None,
        )
