"""The router (cellmesh's agent): a gate that decodes client packets with a ``Protocol``
and routes each to a backend service by the message's route rule.

    class GameRouter(Router):
        protocol = proto                      # a meshnet.gate.proto.Protocol

    router = await node.newservice(GameRouter, {"port": 5678, "ws_port": 5679, "heartbeat": 30})

Each packet ``[msg_id, session, body]`` goes through:

- undecodable, or an unknown message id: error reply, and the connection is closed
  (the client's stream can no longer be trusted);
- a body that does not match its declaration: error reply naming the field; the
  connection stays open;
- route rule None (blocked): error reply ``blocked``;
- ``pass``: to the message's declared ``target`` (a service name such as ``.auth``);
- ``auth``: to the backend a service bound this connection to for that target (the
  ``bind`` command, e.g. after signin); before that, error reply ``not authenticated``.

The router calls ``client_request(client, name, session, body)`` on the backend, where
``client`` is ``[router, fd, user]`` (``meshnet.gate.Client`` on the other side), and
writes the packet it returns (the encoded reply; None for session 0). ``Backend`` in
``meshnet.gate.backend`` implements that command for you. A connection's packets are
handled one at a time, so its requests are answered in the order they were sent. A
backend that cannot be reached gives the error reply ``service unavailable``.

When a connection that was bound closes, every backend it was bound to gets
``client_closed(client)``. The ``heartbeat`` conf key closes connections that send no
packet for that many seconds (off by default). Commands besides the gate's: ``bind``,
``push`` (one connection, a list, or all).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from meshnet.errors import CallError
from meshnet.gate.connections import ConnectionRegistry
from meshnet.gate.gateserver import GateServer
from meshnet.gate.proto import InvalidBody, Protocol, ProtoError, Rule
from meshnet.service import command

logger = logging.getLogger(__name__)

BLOCKED = "blocked"
NOT_AUTHENTICATED = "not authenticated"
UNAVAILABLE = "service unavailable"
INTERNAL_ERROR = "internal error"


@dataclass(frozen=True, slots=True)
class Client:
    """A routed connection as a backend sees it: the router, the connection's fd on the
    router's node, and the user the connection was bound for (None before)."""

    gate: int
    fd: int
    user: Any = None

    def to_message(self) -> list[Any]:
        """This client as a message payload: ``[gate, fd, user]``."""
        return [self.gate, self.fd, self.user]

    @classmethod
    def from_message(cls, value: list[Any]) -> Client:
        """The client a ``to_message`` payload names."""
        return cls(*value)


@dataclass(slots=True)
class _Route:
    """What a backend bound a connection to: a backend per target name, and the user."""

    backends: dict[str, int | str] = field(default_factory=dict)
    user: Any = None


class Router(GateServer):
    """A gate that routes decoded client messages to backends; see the module docstring.

    Subclasses set ``protocol``; if they override ``connect``, ``message`` or
    ``disconnect`` they call the router's too.
    """

    protocol: ClassVar[Protocol]

    def __init__(self) -> None:
        super().__init__()
        self._routes: dict[int, _Route] = {}

    # --- commands -------------------------------------------------------------------

    @command
    async def bind(self, fd: int, target: str, backend: int | str, user: Any = None) -> bool:
        """Route connection ``fd``'s ``auth`` messages for ``target`` to ``backend``;
        ``user``, if given, is passed to backends with every request. False if the
        connection is not open on this router."""
        if self._own(fd) is None:
            return False
        route = self._routes.setdefault(fd, _Route())
        route.backends[target] = backend
        if user is not None:
            route.user = user
        return True

    @command
    async def push(self, to: int | list[int] | None, name: str, body: Any = None) -> int:
        """Push message ``name`` to one connection, a list, or (None) every connection
        of this router; return how many took it."""
        fds = self.connections.of_gate(self.address) if to is None else to
        return push_to(self.connections, self.protocol, fds, name, body)

    # --- hooks ----------------------------------------------------------------------

    async def connect(self, fd: int, addr: str) -> None:
        self.openclient(fd)

    async def message(self, fd: int, packet: bytes) -> None:
        try:
            request = self.protocol.decode_request(packet)
        except InvalidBody as exc:
            self._reply_error(fd, exc.msg_id, exc.session, str(exc))
            return
        except ProtoError as exc:
            logger.info("connection %d: %s; closing it", fd, exc)
            self._reply_error(fd, exc.msg_id, exc.session, str(exc))
            self.closeclient(fd)
            return
        message, session = request.message, request.session
        route = self._routes.get(fd)
        if message.rule is None:
            self._reply_error(fd, message.id, session, BLOCKED)
            return
        if message.rule is Rule.AUTH:
            backend = None if route is None else route.backends.get(message.target)
            if backend is None:
                self._reply_error(fd, message.id, session, NOT_AUTHENTICATED)
                return
        else:
            backend = message.target
        client = Client(self.address, fd, None if route is None else route.user)
        try:
            reply = await self.call(
                backend, "client_request", client.to_message(), message.name, session, request.body
            )
        except CallError as exc:
            logger.warning("connection %d: %s for %s: %s", fd, UNAVAILABLE, message.name, exc)
            self._reply_error(fd, message.id, session, UNAVAILABLE)
            return
        if reply is not None:
            self.connections.write(fd, reply)

    async def disconnect(self, fd: int) -> None:
        route = self._routes.pop(fd, None)
        if route is None:
            return
        client = Client(self.address, fd, route.user).to_message()
        for backend in set(route.backends.values()):
            try:
                await self.send(backend, "client_closed", client)
            except CallError as exc:
                logger.info("connection %d: backend %s not told of the close: %s", fd, backend, exc)

    # --- helpers --------------------------------------------------------------------

    def _reply_error(self, fd: int, msg_id: int | None, session: int | None, text: str) -> None:
        packet = self.protocol.encode_error(msg_id or 0, session or 0, text)
        self.connections.write(fd, packet)


def push_to(
    registry: ConnectionRegistry,
    protocol: Protocol,
    fds: int | Iterable[int],
    name: str,
    body: Any,
) -> int:
    """Encode one push and write it to each connection in ``fds``; return how many took it."""
    packet = protocol.encode_push(name, body)
    if isinstance(fds, int):
        return int(registry.write(fds, packet))
    return registry.write_many(fds, packet)
