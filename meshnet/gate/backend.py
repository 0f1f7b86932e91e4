"""Backends: services that handle the client messages a ``Router`` routes to them.

    class Auth(Backend):
        protocol = proto

        async def init(self):
            self.register(".auth")

        @handles("signin")
        async def signin(self, client: Client, body: dict) -> dict:
            if not self.accounts.check(body["user"], body["password"]):
                raise ClientError("wrong user or password")     # error reply, this text
            agent = await self.newservice(Agent, body["user"])
            await self.bind(client, ".agent", agent, user=body["user"])
            return {"ok": True}                                  # the reply body

        async def on_client_closed(self, client: Client) -> None:
            ...

A handler gets the ``Client`` (router, fd, bound user) and the validated body, and returns
the reply body, which is checked against the message's declared reply. ``ClientError``
becomes an error reply with exactly its text. A service the handler called that could not
be reached (``NoSuchService``, ``NodeDown``, ``CallTimeout``, ``Busy``, ``ServiceExited``)
is logged as a warning and becomes ``service unavailable``, as when the router cannot
reach the backend itself: the client may try again later. Any other exception is logged
with its traceback here and becomes the error reply ``internal error``. For a request with session
0 the return value is dropped (errors still reach the client, as notices).

``push`` writes a server message to one client or several, ``broadcast`` to every client
of a router, straight through the node's connection registry; ``bind`` routes a client's
``auth`` messages for a target to a backend; ``kick`` closes a client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, TypeVar

from meshnet.errors import UNREACHABLE, MeshnetError
from meshnet.gate.connections import connections
from meshnet.gate.proto import Protocol
from meshnet.gate.router import INTERNAL_ERROR, UNAVAILABLE, Client, push_to
from meshnet.service import Service, command

logger = logging.getLogger(__name__)


Handler = Callable[[Any, Client, dict[str, Any]], Awaitable[Any]]
H = TypeVar("H", bound=Handler)


class ClientError(MeshnetError):
    """Raised by a handler: the client gets an error reply with exactly this text."""


class BackendError(MeshnetError):
    """A backend class is declared wrongly (a handler for an undeclared message, ...)."""


def handles(name: str) -> Callable[[H], H]:
    """Mark ``async def method(self, client, body)`` as the handler of client message
    ``name``."""

    def mark(function: H) -> H:
        function._meshnet_handles = name  # type: ignore[attr-defined]
        return function

    return mark


class Backend(Service):
    """A service whose ``@handles`` methods answer routed client messages.

    Set ``protocol`` (the one the router uses) on the class. Override ``on_client_closed``
    to hear about clients whose connection closed while bound to this backend.
    """

    protocol: ClassVar[Protocol]
    _handlers: ClassVar[dict[str, Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[str, Handler] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                name = getattr(attr, "_meshnet_handles", None)
                if name is not None:
                    handlers[name] = attr
        protocol = getattr(cls, "protocol", None)
        if protocol is not None:
            declared = {message.name for message in protocol}
            for name in handlers:
                if name not in declared:
                    raise BackendError(
                        f"{cls.__qualname__} handles {name!r}, "
                        f"which protocol {protocol.name!r} does not declare"
                    )
        cls._handlers = handlers

    # --- commands (called by the router) --------------------------------------------

    @command
    async def client_request(
        self, client: list[Any], name: str, session: int, body: dict[str, Any]
    ) -> bytes | None:
        """Run the handler of message ``name``; return the reply packet to write (None
        for a successful request with session 0)."""
        message = self.protocol[name]
        handler = self._handlers.get(name)
        try:
            if handler is None:
                raise BackendError(f"{type(self).__name__} has no handler for {name!r}")
            result = await handler(self, Client.from_message(client), body)
            if session:
                return self.protocol.encode_reply(message, session, result)
            return None
        except ClientError as exc:
            text = str(exc)
        except UNREACHABLE as exc:
            logger.warning("handling %s (session %d): %s: %s", name, session, UNAVAILABLE, exc)
            text = UNAVAILABLE
        except Exception:
            logger.exception("handling %s (session %d) failed", name, session)
            text = INTERNAL_ERROR
        return self.protocol.encode_error(message.id, session, text)

    @command
    async def client_closed(self, client: list[Any]) -> None:
        """Sent by the router when a connection bound here closes; runs ``on_client_closed``."""
        await self.on_client_closed(Client.from_message(client))

    # --- hooks ----------------------------------------------------------------------

    async def on_client_closed(self, client: Client) -> None:
        """``client``'s connection closed while it was bound to this backend."""

    # --- for handlers ---------------------------------------------------------------

    async def bind(
        self, client: Client, target: str, backend: int | str | None = None, user: Any = None
    ) -> bool:
        """Route ``client``'s ``auth`` messages for ``target`` to ``backend`` (default:
        this service) and, if given, record ``user`` for it. False if it has gone."""
        backend = self.address if backend is None else backend
        return await self.call(client.gate, "bind", client.fd, target, backend, user)

    def push(self, to: Client | Iterable[Client], name: str, body: Any = None) -> int:
        """Send message ``name`` to one client or several; return how many took it."""
        fds = to.fd if isinstance(to, Client) else [client.fd for client in to]
        return push_to(connections(self.node), self.protocol, fds, name, body)

    def broadcast(self, gate: int, name: str, body: Any = None) -> int:
        """Send message ``name`` to every client of router ``gate`` on this node."""
        registry = connections(self.node)
        return push_to(registry, self.protocol, registry.of_gate(gate), name, body)

    def kick(self, client: Client) -> bool:
        """Close ``client``'s connection once what was sent to it has gone."""
        return connections(self.node).close(client.fd)
