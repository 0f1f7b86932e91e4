"""The port skynet nodes call: skynet's cluster protocol, served as skynet's clusterd and
clusteragent serve it.

A skynet node lists this node in its ``clustername`` file at ``cluster.skynet_listen``
and calls it like any skynet node: ``cluster.call("meshnode", "@echo", "cmd", ...)``,
``cluster.send``, ``cluster.query("meshnode", "echo")`` and then calls by that address.
Requests and answers are ``meshnet.cluster.skynet.wire``'s; payloads ``skynet.pack``'s
(``meshnet.cluster.skynet.seri``). The protocol has no authentication, so:

- **Who.** Only loopback addresses may connect, or, when ``skynet_allow`` is given, only
  the addresses and networks it lists; others are closed at once (and logged). At most
  ``skynet_max_connections`` are served at once (one more is closed, and logged).
- **What.** Only the names in ``skynet_expose``: ``"echo"`` for the service registered
  with ``cluster.register("echo")`` (called as ``"@echo"``, or by the address a name query
  gives), ``".echo"`` for the node-local name. A request for anything else is answered
  ``Invalid name`` (a name query ``name not found``), as skynet answers an unknown name,
  and logged; nothing else of the node can be reached.

Each connection gets its own agent service (skynet's clusteragent). Its requests start in
the order they arrived, so the pushes and calls a skynet node sends reach a service in
that order, while calls run concurrently. A request ``(command, *args)`` becomes
``call(target, command, *args)`` (with the node's default deadline) or, for a push,
``send``; the answer is packed as one Lua value (``None`` is ``nil``). When the call
fails, the answer is an error, and skynet's ``cluster.call`` raises ``call failed`` (all
skynet's clustersender passes on; it logs the text): the text is ``Invalid name`` when no
service has the exposed name now, else ``call failed: <target> raised <Exception>`` when
the handler raised (the exception is in this node's log, as skynet keeps a failing
service's error in its own log) or ``call failed: <target>: <Error>: <reason>`` when
meshnet could not run it (a deadline, an unknown command, a full mailbox).

Bad input closes only its own connection, with a logged reason: bytes outside the
protocol, a large request announced over ``skynet_max_message``, or parts of unfinished
large requests adding up to more than ``BUFFERED_MESSAGES`` times that. The requests of a
connection that are being handled may hold as much again: past that, its next request waits
(and the connection is not read) until some are answered, so one connection's memory stays
bounded. A request whose payload is not a command and arguments is answered with an error.
skynet keeps its cluster connections open without heartbeats, so idle ones are not closed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from meshnet.address import MAX_HANDLE, format_address
from meshnet.admission import ConnectionLimits, client_ip
from meshnet.cluster.skynet import seri, wire
from meshnet.errors import CallError, NoSuchService
from meshnet.message import CLIENT, Message
from meshnet.net import client_host, peer_name, serve_tcp
from meshnet.service import Service

if TYPE_CHECKING:
    from meshnet.cluster.cluster import Cluster
    from meshnet.cluster.skynet.config import SkynetSettings

logger = logging.getLogger(__name__)

NAME = ".skynet"
"""The listener service's node-local name."""
BUFFERED_MESSAGES = 4
"""A connection holds at most this many times ``skynet_max_message`` of requests."""
RECEIVE_SIZE = 256 * 1024
INVALID_NAME = "Invalid name"
NAME_NOT_FOUND = "name not found"


class SkynetListener(Service):
    """Accepts skynet nodes' connections on ``cluster.skynet_listen`` (``port``: the one
    bound, as that may give 0); started by ``meshnet.cluster.start`` when the config has
    that key."""

    async def init(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.settings: SkynetSettings = cluster.config.skynet
        assert self.settings.listen is not None
        host, port = self.settings.listen
        self.register(NAME)
        limits = ConnectionLimits(maxclient=self.settings.max_connections)
        self.port, _ = await serve_tcp(
            self, self._connection, host, port, limits=limits, shared=False
        )
        logger.info(
            "skynet nodes may call %s on %s:%d",
            ", ".join(self.settings.expose),
            host,
            self.port,
        )

    async def _connection(self, stream: trio.SocketStream) -> None:
        who = peer_name(stream)
        if not self.settings.allows(client_ip(client_host(stream))):
            logger.warning(
                "refused a skynet connection from %s: %s",
                who,
                "not in cluster.skynet_allow"
                if self.settings.allow
                else "only loopback addresses may connect without cluster.skynet_allow",
            )
            return
        logger.info("skynet node connected from %s", who)
        agent = await self.newservice(SkynetAgent, self, stream)
        ctx = self.node.context_of(agent)
        try:
            if ctx is not None:
                await ctx.exited.wait()
        finally:
            if self.node.context_of(agent) is not None:
                with trio.CancelScope(shield=True):
                    await self.node.kill(agent)


class SkynetAgent(Service):
    """One skynet node's connection (skynet's clusteragent): reads its requests, runs them
    in order of arrival, writes their answers."""

    mailbox_size = 4096
    max_concurrency = 4096

    async def init(self, listener: SkynetListener, stream: trio.SocketStream) -> None:
        self.cluster = listener.cluster
        self.settings = listener.settings
        self.stream = stream
        self.peer = peer_name(stream)
        self._writing = trio.Lock()
        self._held = 0
        """Payload bytes of the requests read and not yet answered."""
        self._room = trio.Event()
        self.fork(self._read)

    async def on_client(self, request: wire.Request) -> None:
        """A request the reader took from the connection, in its turn."""
        try:
            await self._serve(request)
        finally:
            self._held -= len(request.payload)
            self._room.set()

    # --- reading ---------------------------------------------------------------------

    async def _read(self) -> None:
        decoder = wire.RequestDecoder(self.settings.max_message)
        budget = BUFFERED_MESSAGES * self.settings.max_message
        mailbox = self._ctx.mailbox
        reason = "the skynet node closed the connection"
        try:
            while data := await self.stream.receive_some(RECEIVE_SIZE):
                for request in decoder.feed(data):
                    size = len(request.payload)
                    while self._held and self._held + size > budget:  # let some be answered
                        self._room = trio.Event()
                        await self._room.wait()
                    self._held += size
                    await mailbox.put(Message(CLIENT, self.address, 0, None, (request,)))
                if decoder.buffered > budget:
                    raise wire.SkynetWireError(
                        f"{decoder.buffered} bytes of unfinished large requests, over the "
                        f"limit of {budget} ({BUFFERED_MESSAGES} x cluster.skynet_max_message)"
                    )
        except wire.SkynetWireError as exc:
            reason = f"protocol error: {exc}"
            logger.warning("closed the skynet connection from %s: %s", self.peer, reason)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            reason = f"connection lost: {exc}"
        logger.info("skynet connection from %s ended: %s", self.peer, reason)
        await self.exit()

    # --- serving ---------------------------------------------------------------------

    async def _serve(self, request: wire.Request) -> None:
        if request.trace is not None:
            logger.debug("skynet request from %s traced %r", self.peer, request.trace)
        if request.address == wire.QUERY_ADDRESS:
            await self._query(request)
            return
        target = self._exposed(request.address)
        if target is None:
            logger.warning(
                "skynet node at %s asked for %s, which is not exposed to skynet "
                "(cluster.skynet_expose) or has no service now",
                self.peer,
                _shown(request.address),
            )
            await self._answer(request, False, INVALID_NAME)
            return
        label = f"{self.node.name}@{_shown(request.address).lstrip('@')}"
        try:
            command, args = _command(request.payload)
        except seri.SeriUnpackError as exc:
            logger.warning("bad skynet request from %s for %s: %s", self.peer, label, exc)
            await self._answer(request, False, f"call failed: bad request: {exc}")
            return
        if request.push:
            try:
                await self.send(target, command, *args)
            except CallError as exc:
                logger.warning("a push from skynet at %s reached nothing: %s", self.peer, exc)
            return
        try:
            value = await self.call(target, command, *args)
        except CallError as exc:
            logger.info("%r of %s from skynet at %s failed: %s", command, label, self.peer, exc)
            await self._answer(request, False, error_text(label, exc))
            return
        try:
            payload = seri.pack(value)
        except seri.SeriPackError as exc:
            logger.error("%s answered %r with what skynet cannot take: %s", label, command, exc)
            await self._answer(request, False, f"call failed: {label} answered {exc.reason}")
            return
        await self._answer(request, True, payload)

    async def _query(self, request: wire.Request) -> None:
        """A name query (``cluster.query``): the address of an exposed registered name."""
        try:
            (name,) = seri.unpack(request.payload)
        except (seri.SeriUnpackError, ValueError):
            name = None
        address = self._lookup(name) if isinstance(name, str) and name in self._named() else None
        if address is None:
            logger.warning("skynet node at %s queried %r, which is not exposed", self.peer, name)
            await self._answer(request, False, NAME_NOT_FOUND)
            return
        await self._answer(request, True, seri.pack(address & MAX_HANDLE))

    async def _answer(self, request: wire.Request, ok: bool, payload: bytes | str) -> None:
        if request.push:
            return
        data = wire.encode_response(request.session, ok, payload)
        try:
            async with self._writing:
                await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the reader sees the connection end too

    # --- names -----------------------------------------------------------------------

    def _exposed(self, address: int | str | bytes) -> int | None:
        """The local address an exposed target stands for now, or None."""
        if isinstance(address, int):
            for name in self.settings.expose:
                found = self._lookup(name)
                if found is not None and found & MAX_HANDLE == address:
                    return found
            return None
        if isinstance(address, bytes):
            return None
        if address.startswith("@"):  # a name registered with cluster.register
            name = address[1:]
            exposed = name in self._named()
        else:  # a node-local name; skynet resolves any other string as its own global name
            name = address
            exposed = name.startswith(".") and name in self.settings.expose
        return self._lookup(name) if exposed else None

    def _named(self) -> list[str]:
        return [name for name in self.settings.expose if not name.startswith(".")]

    def _lookup(self, name: str) -> int | None:
        if name.startswith("."):
            return self.node.lookup(name)
        address = self.cluster.registered.get(name)
        return address if address is not None and self.node.context_of(address) else None


def error_text(target: str, exc: CallError) -> str:
    """The error a skynet caller gets when its call of ``target`` failed with ``exc``."""
    if isinstance(exc, NoSuchService):
        return INVALID_NAME
    if type(exc) is CallError:  # the handler raised: its error stays in this node's log
        return f"call failed: {target} raised {exc.remote_type}"
    return f"call failed: {target}: {exc.remote_type}: {exc.remote_message}"


def _command(payload: bytes) -> tuple[str, tuple[Any, ...]]:
    values = seri.unpack(payload)
    if not values or not isinstance(values[0], str):
        raise seri.SeriUnpackError(
            "a request's payload is skynet.pack(command, ...) with a text command, not "
            f"{values[:1]!r}"
        )
    return values[0], values[1:]


def _shown(address: int | str | bytes) -> str:
    if isinstance(address, int):
        return format_address(address)
    return address if isinstance(address, str) else repr(address)
