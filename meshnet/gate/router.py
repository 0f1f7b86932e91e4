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
``client`` is ``[router, fd, user, address]`` (``meshnet.gate.Client`` on the other side),
and writes the packet it returns (the encoded reply; None for session 0). ``Backend`` in
``meshnet.gate.backend`` implements that command for you. A backend that cannot be
reached, or does not answer within the ``request_timeout`` conf key (default 30 s), gives
the error reply ``service unavailable``.

The router keeps reading a connection while its requests wait for their backends (see
``meshnet.gate.pipeline``): up to ``max_in_flight`` (default 4) at once, started at their
backends in the order they were sent and answered in that order, the router's own error
replies included. With that many in flight the connection is not read until one is
answered. So a client's close is seen at once however slow a backend is: its requests
still waiting are abandoned (their backends' handlers run on; the replies are dropped),
every backend it was bound to gets ``client_closed(client)`` and its route is freed. A
client that needs one request done before the next starts waits for its reply.

The ``heartbeat`` conf key closes connections that send no complete packet for that many
seconds (off by default), even while their requests are in flight. ``closeclient`` and
``kick`` close a connection the same way; see ``meshnet.gate.gateserver`` for what that
does to a hook that is running. Commands besides the gate's: ``bind``, ``push`` (one
connection, a list, or all).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from meshnet.errors import CallError
from meshnet.gate.connections import ConnectionRegistry
from meshnet.gate.gateserver import GateServer
from meshnet.gate.pipeline import Pipeline
from meshnet.gate.proto import InvalidBody, Message, Protocol, ProtoError, Rule
from meshnet.service import command

logger = logging.getLogger(__name__)

BLOCKED = "blocked"
NOT_AUTHENTICATED = "not authenticated"
UNAVAILABLE = "service unavailable"
INTERNAL_ERROR = "internal error"


@dataclass(frozen=True, slots=True)
class Client:
    """A routed connection as a backend sees it: the router, the connection's fd on the
    router's node, the user the connection was bound for (None before) and the client's
    address (its host, as the gate's per-address limit counts it; None if unknown)."""

    gate: int
    fd: int
    user: Any = None
    address: str | None = None

    def to_message(self) -> list[Any]:
        """This client as a message payload: ``[gate, fd, user, address]``."""
        return [self.gate, self.fd, self.user, self.address]

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
        self._pipelines: dict[int, Pipeline] = {}

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
        pipeline = self._pipelines.get(fd) or self._new_pipeline(fd)
        if pipeline is None:
            return  # not a connection of this router (any more)
        try:
            request = self.protocol.decode_request(packet)
        except InvalidBody as exc:
            pipeline.reply(self._error(exc.msg_id, exc.session, str(exc)))
            return
        except ProtoError as exc:
            logger.info("connection %d: %s; closing it", fd, exc)
            pipeline.reply(self._error(exc.msg_id, exc.session, str(exc)))
            pipeline.close_after()
            return
        message, session = request.message, request.session
        route = self._routes.get(fd)
        if message.rule is None:
            pipeline.reply(self._error(message.id, session, BLOCKED))
            return
        if message.rule is Rule.AUTH:
            backend = None if route is None else route.backends.get(message.target)
            if backend is None:
                pipeline.reply(self._error(message.id, session, NOT_AUTHENTICATED))
                return
        else:
            backend = message.target
        user = None if route is None else route.user
        client = Client(self.address, fd, user, pipeline.connection.host).to_message()
        pipeline.start(partial(self._forward, fd, backend, client, message, session, request.body))

    async def disconnect(self, fd: int) -> None:
        pipeline = self._pipelines.pop(fd, None)
        if pipeline is not None:
            pipeline.abandon()
        route = self._routes.pop(fd, None)
        if route is None:
            return
        host = None if pipeline is None else pipeline.connection.host
        client = Client(self.address, fd, route.user, host)
        for backend in set(route.backends.values()):
            try:
                await self.send(backend, "client_closed", client.to_message())
            except CallError as exc:
                logger.info("connection %d: backend %s not told of the close: %s", fd, backend, exc)

    # --- helpers --------------------------------------------------------------------

    def _new_pipeline(self, fd: int) -> Pipeline | None:
        connection = self._own(fd)
        if connection is None:
            return None
        assert self.conf is not None
        pipeline = self._pipelines[fd] = Pipeline(connection, self.conf.max_in_flight, self.fork)
        return pipeline

    async def _forward(
        self,
        fd: int,
        backend: int | str,
        client: list[Any],
        message: Message,
        session: int,
        body: Any,
    ) -> bytes | None:
        """One request's backend call; the reply packet, or the error reply."""
        assert self.conf is not None
        try:
            return await self.call(
                backend,
                "client_request",
                client,
                message.name,
                session,
                body,
                timeout=self.conf.request_timeout,
            )
        except CallError as exc:
            logger.warning("connection %d: %s for %s: %s", fd, UNAVAILABLE, message.name, exc)
            text = UNAVAILABLE
        except Exception:
            logger.exception("connection %d: routing %s failed", fd, message.name)
            text = INTERNAL_ERROR
        return self._error(message.id, session, text)

    def _error(self, msg_id: int | None, session: int | None, text: str) -> bytes:
        return self.protocol.encode_error(msg_id or 0, session or 0, text)


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
