"""skynet's gateserver template as a meshnet service: subclass ``GateServer`` and override
the hooks you need.

    class Watchdog(GateServer):
        async def connect(self, fd, addr):
            agent = await self.newservice(Agent, fd)
            await self.forward(fd, agent)        # its packets go to Agent.on_client

        async def disconnect(self, fd):
            ...

    gate = await node.newservice(Watchdog)
    ports = await node.call(gate, "open", {"port": 8888, "ws_port": 8889, "maxclient": 1024})

or start it open: ``newservice(Watchdog, {"port": 8888})`` (the conf keys are in
``meshnet.gate.conf``). A connection goes through these hooks, each awaited in a task of
the gate that belongs to the connection while it runs (its own, or for ``message`` over
plain TCP the gate's reactor, ``meshnet.gate.reactor``, which the connection waits for):

``connect(fd, addr)``   a client connected; nothing is read from it until ``openclient(fd)``
                        (or ``forward``), so the connection can be handed over first
``message(fd, packet)`` one packet (bytes), in order; a connection that was forwarded
                        sends its packets to the agent instead, as ``client`` messages
                        (``on_client(fd, packet)`` there)
``warning(fd, kb)``     ``kb`` KiB wait to be sent (past 1 MiB, 2 MiB, 4 MiB, ...); 0 once
                        they drained. Past ``max_unsent`` the connection is closed.
``error(fd, message)``  the connection ends because of a failure or a client breaking the
                        protocol (oversized or truncated packet, WebSocket text message,
                        heartbeat, unread data over ``max_unsent``); ``message`` says which
``disconnect(fd)``      the connection is gone (after ``error``, if any); always the last
                        hook of a connection, unless the gate itself stops first

``on_open(conf)`` and ``on_close()`` run when the gate starts and stops listening. Commands
(``call``/``send`` them, or await them from a subclass): ``open(conf)``, ``close()``,
``ports()``, ``forward(fd, agent)``, ``kick(fd)``, ``write(fd, payload)``.

Any service on the node writes to a connection directly, through the node's connection
registry (``meshnet.gate.connections``): ``connections(self.node).write(fd, payload)``.
A hook that raises is logged with its traceback; if it was ``connect`` or ``message``,
its connection is closed. Nothing a client does can stop the gate or another connection.

A connection's packets are handed to ``message`` (or its agent) one per scheduler turn,
every other connection having its turn in between, so no client can hold the event loop
however fast it sends (see ``meshnet.gate.connection``). ``pauseclient(fd)`` stops
reading a connection until ``resumeclient(fd)``.

**Closing and running hooks.** ``closeclient(fd)``, ``kick(fd)``, a heartbeat timeout, a
protocol violation and the client's own close all end a connection the same way: nothing
more is read from it and no further packet is handed over, but a ``message`` (or
``connect``) hook already running for it is *not* cancelled: it runs to its end, and what
it writes after the close is dropped; then ``error`` (if any) and ``disconnect`` run. Only
the gate's own end (``close`` does not count: its connections stay) cancels hooks. So a
hook never stops half-way because its client went away; it is bounded by its own deadlines
(every call has one).
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping
from functools import partial
from typing import Any

import trio

from meshnet.admission import ConnectionLimits, networks
from meshnet.errors import CallError, MeshnetError
from meshnet.gate.conf import GateConf, parse_conf, tls_context
from meshnet.gate.connection import Connection
from meshnet.gate.connections import ConnectionRegistry, connections
from meshnet.gate.heartbeat import Heartbeats
from meshnet.gate.reactor import Guest, HookGuest, Reactor
from meshnet.gate.stats import GateStats, connection_info
from meshnet.gate.transport import TransportError, TransportSettings, open_transport, refuse
from meshnet.listen import hold_fd_budget, open_listeners
from meshnet.message import CLIENT
from meshnet.net import peer_name
from meshnet.probes import ConnectionInfo, Sample
from meshnet.service import Service, command

logger = logging.getLogger(__name__)


class GateError(MeshnetError):
    """A gate command was used out of turn (open twice, ...)."""


class GateServer(Service):
    """A gate: listens for clients (TCP and/or WebSocket), splits their packets, hands them
    to its hooks or to agents. See the module docstring for the hooks."""

    def __init__(self) -> None:
        self.conf: GateConf | None = None
        """The conf of the last ``open`` (None before)."""
        self._ports: dict[str, int] = {}
        self._listeners: list[trio.CancelScope] = []
        self._limits: ConnectionLimits | None = None
        self._settings = TransportSettings(max_packet=0)
        self.gate_stats = GateStats()
        """Traffic and errors, for the node's metrics (``metric_samples``)."""
        self._warnings_in: trio.MemorySendChannel[tuple[int, int]] | None = None
        self._heartbeats: Heartbeats | None = None
        self._reactor = Reactor(self._deliver_here, self.fork)

    async def init(self, conf: Mapping[str, Any] | None = None) -> None:
        """Start the gate; with ``conf``, open it at once. Subclasses that override this
        call ``await super().init(conf)``."""
        if conf is not None:
            await self.open(conf)

    # --- commands -------------------------------------------------------------------

    @command
    async def open(self, conf: Mapping[str, Any]) -> dict[str, int]:
        """Start listening; return the bound ports: ``{"port": ..., "ws_port": ...}``."""
        if self._listeners:
            raise GateError("the gate is already open; close it first")
        parsed = parse_conf(conf)
        self._settings = TransportSettings(parsed.max_packet, parsed.proxies, tls_context(parsed))
        if self._limits is None:  # a reopened gate keeps counting the connections still open
            self._limits = ConnectionLimits()
        self._limits.maxclient = parsed.maxclient
        self._limits.max_per_address = parsed.max_per_address
        self._limits.exempt = networks(parsed.per_address_exempt)
        if parsed.node_max_unsent is not None:
            self.connections.unsent.limit = parsed.node_max_unsent
        self.conf = parsed
        self._start_warnings()
        if parsed.heartbeat is not None:
            if self._heartbeats is None:
                self._heartbeats = Heartbeats(parsed.heartbeat)
                self.fork(self._heartbeats.run)
            self._heartbeats.period = parsed.heartbeat
        try:
            for key, kind in (("port", "tcp"), ("ws_port", "ws")):
                port = getattr(parsed, key)
                if port is not None:
                    self._ports[key] = await self._listen(parsed, port, kind)
            sockets = len(self._listeners)
            self._listeners.append(self.fork(hold_fd_budget, parsed.maxclient + sockets))
        except BaseException:
            self._stop_listening()
            raise
        await self.on_open(parsed)
        return dict(self._ports)

    @command
    async def close(self) -> None:
        """Stop listening. Connections already open stay until they end."""
        if self._listeners:
            self._stop_listening()
            await self.on_close()

    @command
    async def ports(self) -> dict[str, int]:
        """The ports the gate listens on, as ``open`` returned them (empty when closed)."""
        return dict(self._ports)

    @command
    async def forward(self, fd: int, agent: int | str) -> bool:
        """Send connection ``fd``'s packets to ``agent`` (``on_client(fd, packet)``) from
        now on, and let them in. False if ``fd`` is not an open connection of this gate."""
        connection = self._own(fd)
        if connection is None:
            return False
        connection.agent = agent
        connection.open()
        return True

    @command
    async def kick(self, fd: int) -> bool:
        """Close connection ``fd`` (after what was written to it is sent)."""
        return self.closeclient(fd)

    @command
    async def write(self, fd: int, payload: bytes) -> bool:
        """Send one packet to connection ``fd``; for services on other nodes (local ones
        use the registry). False if the connection is closed."""
        return self.connections.write(fd, payload)

    # --- for subclasses -------------------------------------------------------------

    @property
    def connections(self) -> ConnectionRegistry:
        """The node's connection registry."""
        return connections(self.node)

    def openclient(self, fd: int) -> bool:
        """Let connection ``fd``'s packets in. False if it is not open on this gate."""
        connection = self._own(fd)
        if connection is None:
            return False
        connection.open()
        return True

    def closeclient(self, fd: int, error: str | None = None) -> bool:
        """Close connection ``fd`` once what was written to it is sent; with ``error``,
        the ``error`` hook gets it. A hook running for it is not cancelled (see the
        module docstring)."""
        connection = self._own(fd)
        if connection is None:
            return False
        connection.close(error)
        return True

    def pauseclient(self, fd: int) -> bool:
        """Read nothing more from connection ``fd`` until ``resumeclient(fd)`` (skynet's
        ``socket.pause``); its heartbeat keeps counting. False if it is not open here."""
        connection = self._own(fd)
        if connection is None:
            return False
        connection.pause()
        return True

    def resumeclient(self, fd: int) -> bool:
        """Read connection ``fd`` again after ``pauseclient``. False if it is not open here."""
        connection = self._own(fd)
        if connection is None:
            return False
        connection.resume()
        return True

    # --- for the node's metrics and console (meshnet.probes) --------------------------

    def metric_samples(self) -> Iterator[Sample]:
        """Open connections, traffic, unsent bytes and errors by kind."""
        return self.gate_stats.samples(self._open_connections())

    def connection_rows(self) -> list[ConnectionInfo]:
        """The gate's open connections, for the console's ``netstat``."""
        return [connection_info(c) for c in self._open_connections()]

    # --- hooks ----------------------------------------------------------------------

    async def on_open(self, conf: GateConf) -> None:
        """The gate is listening (``self.ports`` are bound)."""

    async def on_close(self) -> None:
        """The gate stopped listening."""

    async def connect(self, fd: int, addr: str) -> None:
        """A client connected from ``addr`` (``host:port``); call ``openclient(fd)`` or
        ``forward`` to let its packets in."""

    async def disconnect(self, fd: int) -> None:
        """Connection ``fd`` is gone."""

    async def error(self, fd: int, message: str) -> None:
        """Connection ``fd`` is closing because of ``message``; ``disconnect`` follows."""

    async def message(self, fd: int, packet: bytes) -> None:
        """A packet from a connection that was not forwarded. Override it."""
        raise NotImplementedError(
            f"{type(self).__name__} got a packet but does not override message(); "
            "override it or forward the connection to an agent"
        )

    def make_room(self) -> bool:
        """``maxclient`` connections are open and another client connects: close one of
        them (``abort``, so its slot frees at once) and return True to let the new one in,
        or return False (the default) to turn the new one away."""
        return False

    async def warning(self, fd: int, kb: int) -> None:
        """``kb`` KiB wait to be sent to ``fd`` (0: drained). The default logs it."""
        if kb:
            logger.warning("connection %d: %d KiB waiting to be sent", fd, kb)
        else:
            logger.info("connection %d: unsent data drained", fd)

    # --- helpers --------------------------------------------------------------------

    def _open_connections(self) -> Iterator[Connection]:
        registry = self.connections
        for fd in registry.of_gate(self.address):
            connection = registry.get(fd)
            if connection is not None:
                yield connection

    def _own(self, fd: int) -> Connection | None:
        connection = self.connections.get(fd)
        if connection is None or connection.gate != self.address:
            return None
        return connection

    async def _listen(self, conf: GateConf, port: int, kind: str) -> int:
        listeners = await open_listeners(conf.address, port, conf.backlog)
        for listener in listeners:
            start = partial(self._start_connection, kind=kind)
            self._listeners.append(self.fork(listener.serve, start))
        logger.info("listening on %s:%d (%s)", conf.address, listeners[0].port, kind)
        return listeners[0].port

    def _stop_listening(self) -> None:
        for scope in self._listeners:
            scope.cancel()
        self._listeners.clear()
        self._ports.clear()

    def _start_connection(self, stream: trio.SocketStream, kind: str) -> None:
        # The fd is given here, in the order the kernel queued the connections (one turn
        # accepts several; their tasks then start in no particular order).
        self.fork(self._serve, stream, kind, self.connections.new_fd())

    async def _serve(self, stream: trio.SocketStream, kind: str, fd: int) -> None:
        """One accepted socket, from the maxclient check to the last hook."""
        conf = self.conf
        assert conf is not None and self._limits is not None
        if not self._limits.take_slot() and not self._limits.take_slot(self.make_room()):
            peer = peer_name(stream)
            logger.warning("refused %s (%s): maxclient %d reached", peer, kind, conf.maxclient)
            self.gate_stats.refused()
            try:
                await refuse(kind, stream, self._settings.tls is not None)
            except Exception as exc:  # the client went away first: nothing to do
                logger.info("refusing %s: %r", peer, exc)
            return
        try:
            connection = await self._converse(stream, kind, fd, conf)
        finally:
            self._limits.free_slot()
        if connection is None:
            self.gate_stats.never_served()
        if connection is not None:  # its socket is closed: the connection's last hooks
            if connection.error is not None:
                await self._hook(self.error, connection.fd, connection.error)
            await self._hook(self.disconnect, connection.fd)

    async def _converse(
        self, stream: trio.SocketStream, kind: str, fd: int, conf: GateConf
    ) -> Connection | None:
        """Run a connection until its socket is closed; None if it never got going.

        A failure of the gate's own (a bug) still ends a connection that got going with
        ``error`` and ``disconnect``, so whatever its hooks set up is torn down."""
        assert self._limits is not None
        peer = peer_name(stream)
        connection = None
        try:
            if not conf.nodelay:
                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, False)
            try:
                opening = await open_transport(kind, stream, self._settings)
            except TransportError as exc:
                logger.info("connection from %s failed: %s", peer, exc)
                await trio.aclose_forcefully(stream)
                return None
            peer = opening.peer
            if not self._limits.take_address(opening.host):
                logger.warning(
                    "refused %s (%s): max_per_address %d reached",
                    peer,
                    kind,
                    conf.max_per_address,
                )
                await opening.refuse(429, "too many connections from your address")
                return None
            try:
                transport = await opening.accept()
                connection = Connection(
                    fd,
                    self.address,
                    peer,
                    transport,
                    self._ctx.nursery,  # for its write loop, if it needs one
                    max_unsent=conf.max_unsent,
                    notify=self._notify_warning,
                    node=self.connections.unsent,
                    host=opening.host,
                )
                await self._run(connection, conf)
            finally:
                self._limits.free_address(opening.host)
        except TransportError as exc:
            logger.info("connection from %s failed: %s", peer, exc)
            await trio.aclose_forcefully(stream)
        except Exception as exc:
            logger.exception("connection from %s failed", peer)
            await trio.aclose_forcefully(stream)
            if connection is not None:
                connection.close(abort=True)
                connection.error = connection.error or f"internal error: {exc!r}"
        return connection

    async def _run(self, connection: Connection, conf: GateConf) -> None:
        registry = self.connections
        registry.add(connection)
        try:
            try:
                logger.debug("connection %d from %s", connection.fd, connection.peer)
                if not await self._hook(self.connect, connection.fd, connection.peer):
                    connection.close("internal error")
                heartbeats = self._heartbeats if conf.heartbeat else None
                reactor = self._reactor if Reactor.serves(connection) else None
                await connection.serve(self._deliver, heartbeats, conf.max_packet_rate, reactor)
            finally:
                registry.remove(connection)
                self.gate_stats.ended(connection)
            if connection.error is not None:
                logger.info(
                    "connection %d from %s: %s", connection.fd, connection.peer, connection.error
                )
        finally:
            await connection.aclose()

    async def _deliver(self, connection: Connection, packet: bytes) -> None:
        agent = connection.agent  # checked per packet: a message hook may forward
        if agent is not None:
            try:
                await self.post(agent, CLIENT, connection.fd, packet)
            except CallError as exc:
                connection.close(f"agent {agent} does not take packets: {exc}")
        elif not await self._hook(self.message, connection.fd, packet):
            connection.close("internal error")

    def _deliver_here(self, connection: Connection, packet: bytes) -> Guest | bool | None:
        """``_deliver`` without waiting, for the reactor (see ``meshnet.gate.reactor``)."""
        agent = connection.agent
        if agent is not None:
            try:
                return self._ctx.post_here(agent, CLIENT, (connection.fd, packet))  # type: ignore[no-any-return]
            except CallError as exc:
                connection.close(f"agent {agent} does not take packets: {exc}")
                return None
        coro = self.message(connection.fd, packet)
        try:
            trap = coro.send(None)
        except StopIteration:
            return None
        except Exception:
            self._hook_failed(connection, self.message)
            return None
        return HookGuest(coro, trap, partial(self._hook_failed, connection, self.message))

    def _hook_failed(self, connection: Connection, hook: Callable[..., object]) -> None:
        logger.exception("connection %d: %s hook failed", connection.fd, hook.__name__)
        connection.close("internal error")

    async def _hook(self, hook: Callable[..., Awaitable[None]], fd: int, *args: Any) -> bool:
        """Await a hook; log what it raises. True if it returned."""
        try:
            await hook(fd, *args)
        except Exception:
            logger.exception("connection %d: %s hook failed", fd, hook.__name__)
            return False
        return True

    def _start_warnings(self) -> None:
        if self._warnings_in is None:
            self._warnings_in, warnings_out = trio.open_memory_channel[tuple[int, int]](math.inf)
            self.fork(self._warning_loop, warnings_out)

    def _notify_warning(self, fd: int, kb: int) -> None:
        assert self._warnings_in is not None
        self._warnings_in.send_nowait((fd, kb))

    async def _warning_loop(self, warnings: trio.MemoryReceiveChannel[tuple[int, int]]) -> None:
        """Warnings are raised inside other services' writes, which must not wait: they
        queue here and this task of the gate runs the hook."""
        async for fd, kb in warnings:
            await self._hook(self.warning, fd, kb)
