"""One client connection of a gate: its outgoing buffer, its writer, and how it ends.

Any service on the node may ``write`` to a connection; a write never waits. When nothing
is waiting to go out, the bytes go straight to the socket (as skynet's ``socket.write``
does); otherwise they join the buffer and the connection's write loop, a task of the gate
started the first time it is needed, sends them. Unsent bytes are watched: the gate is
warned when they pass 1 MiB, 2 MiB, 4 MiB, ... and again (with 0) when they drain, and past
the hard limit the connection is closed rather than buffering without bound.

Reading is fair and bounded: the gate hands a connection's packets over one at a time,
``DELIVERY_BATCH`` (one) per scheduler turn, every other task running in between, so a
client streaming cheap requests (each answered without waiting) takes its turn like
everyone else instead of holding the event loop for a whole 64 KiB read of thousands of
packets. What is written to the connection while the reader works through one read goes
out together, one system call per ``HOLD_BATCH`` packets instead of one each (a reply to
each cheap request would otherwise cost more than the request). A gate may ``pause`` a
connection (nothing more is read until ``resume``) to bound the work one client has in
progress. The heartbeat (``meshnet.gate.heartbeat``) is one deadline over the whole
connection, moved on by each read that brings complete packets: it runs while a hook
works, while the connection is paused and while its requests are in flight elsewhere.

Ending a connection (``close``: a kick, the heartbeat, a protocol violation, or the
client's own close) never cancels a hook half-way: nothing more is read and no further
packet is handed over, but a hook already running for the connection runs to its end
(what it writes after the close is dropped); then the gate runs ``error`` and
``disconnect``.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import trio
from trio.lowlevel import ParkingLot, checkpoint

from meshnet.gate.conf import NODE_MAX_UNSENT, WARN_UNSENT
from meshnet.gate.ratelimit import PacketBudget
from meshnet.gate.transport import CLOSE_TIMEOUT, Transport, TransportError

if TYPE_CHECKING:
    from meshnet.gate.heartbeat import Heartbeats
    from meshnet.gate.reactor import Reactor

logger = logging.getLogger(__name__)

Deliver = Callable[["Connection", bytes], Awaitable[None]]
"""What the gate does with each packet the connection receives."""
Received = TypeVar("Received")
Notify = Callable[[int, int], None]
"""How a connection tells its gate about unsent data: ``notify(fd, kb)``, kb 0 = drained."""
DELIVERY_BATCH = 1
"""Packets of one connection handed over in a row before its task lets the others run."""
HOLD_BATCH = 16
"""Packets of one read whose replies (whatever is written meanwhile) go out together."""


class Connection:
    """A client connection, registered node-wide under its ``fd`` while it is open."""

    __slots__ = (
        "fd",
        "gate",
        "peer",
        "host",
        "transport",
        "agent",
        "error",
        "received_bytes",
        "received_packets",
        "sent_bytes",
        "sent_packets",
        "last_received",
        "_notify",
        "_max_unsent",
        "_opened",
        "_closing",
        "_aborted",
        "_served",
        "_buffer",
        "_buffered",
        "_in_flight",
        "_warn_at",
        "_check_at",
        "_writer",
        "_nursery",
        "_context",
        "_flushed",
        "_read_scope",
        "_write_scope",
        "_node",
        "_waiting",
        "_paused",
        "_resumed",
        "_holding",
    )

    def __init__(
        self,
        fd: int,
        gate: int,
        peer: str,
        transport: Transport,
        nursery: trio.Nursery,
        *,
        max_unsent: int,
        notify: Notify,
        node: UnsentTotal | None = None,
        host: str | None = None,
    ) -> None:
        """``nursery`` is the gate's, for the write loop if one is needed; the loop runs in
        the context of the task that makes the connection."""
        self.fd = fd
        self.gate = gate
        """Address of the gate service that owns the connection."""
        self.peer = peer
        """``host:port`` of the client."""
        self.host = peer.rpartition(":")[0] if host is None else host
        """The client's address, as the per-address limit counts it."""
        self.transport = transport
        self.agent: int | None = None
        """The service the connection's packets are forwarded to, if any."""
        self.error: str | None = None
        """Why the connection was closed, when it was not a clean close."""
        self.received_bytes = 0
        """Payload bytes of the packets read so far (framing not counted), and so on:"""
        self.received_packets = 0
        self.sent_bytes = 0
        self.sent_packets = 0
        self.last_received = time.monotonic()
        """``time.monotonic()`` when packets last came in (or when it connected)."""
        self._notify = notify
        self._max_unsent = max_unsent
        self._opened: trio.Event | None = trio.Event()
        """Set by ``open``; None once the reader saw it (an idle connection keeps less)."""
        self._closing = False
        self._aborted = False
        self._served = False
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._in_flight = 0
        self._warn_at = WARN_UNSENT
        self._check_at = WARN_UNSENT
        """The unsent size at which to warn or close next: min(_warn_at, max_unsent)."""
        self._writer: ParkingLot | None = None
        """Where the write loop waits for data; None until the loop is started."""
        self._nursery = nursery
        self._context = contextvars.copy_context()
        self._flushed: trio.Event | None = None
        """With the write loop: set once it ended."""
        self._read_scope = trio.CancelScope()
        self._write_scope: trio.CancelScope | None = None
        """With the write loop: its scope."""
        self._node = UnsentTotal() if node is None else node
        """The unsent bytes of every connection of the node, this one's included."""
        self._waiting = False
        """True while the reader waits (to be opened, for data, while paused, for its
        turn): only then does ``close`` cancel it, never inside a hook."""
        self._paused = False
        self._resumed: trio.Event | None = None
        self._holding = False
        """True while the reader works through a read of several packets: what is written
        meanwhile goes out together, one system call for up to ``HOLD_BATCH`` packets (or
        at the write loop's next turn, if a hook suspends first)."""

    def __repr__(self) -> str:
        return f"<Connection {self.fd} {self.transport.kind} {self.peer}>"

    # --- any service on the node ----------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the connection stopped taking writes."""
        return self._closing

    @property
    def unsent(self) -> int:
        """Bytes written but not yet handed to the operating system."""
        return self._buffered + self._in_flight

    def write(self, payload: bytes) -> bool:
        """Send one packet; False if the connection is closing (the packet is dropped).

        Never waits. Raises ``FrameTooLarge`` for a payload over 65535 bytes.
        """
        if self._closing:
            return False
        chunk = self.transport.frame(payload)
        self.sent_packets += 1
        self.sent_bytes += len(payload)
        if not self._buffered and not self._in_flight:
            if not self._holding:
                chunk = self.transport.send_now(chunk)
                if chunk is None:
                    return True
            # Held: it goes with what follows, when the reader next waits, or at the write
            # loop's next turn if a hook suspends first (never later than that).
            self._wake_writer()
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        if self._buffered + self._in_flight > self._check_at:
            self._over_threshold()
        if self._node.grow(len(chunk)):
            self._node.shed()
        return True

    def close(self, error: str | None = None, *, abort: bool = False) -> None:
        """Stop reading and taking writes; send what is buffered, then close.

        ``error`` says why, for the gate's ``error`` hook; ``abort`` drops the buffer and
        closes at once. Closing twice keeps the first reason.
        """
        if self._closing:
            if abort:
                self._abort()
            return
        self._closing = True
        self.error = error
        if self._waiting:  # else a hook is running: the reader stops once it returns
            self._read_scope.cancel()
        if self._writer is not None:
            self._writer.unpark_all()
        if abort:
            self._abort()

    # --- the gate -------------------------------------------------------------------

    def open(self) -> None:
        """Let the connection's packets in (skynet's ``openclient``)."""
        if self._opened is not None:
            self._opened.set()

    @property
    def paused(self) -> bool:
        """True between ``pause`` and ``resume``."""
        return self._paused

    def pause(self) -> None:
        """Read nothing more from the client until ``resume`` (packets already read wait
        too); the heartbeat keeps counting."""
        self._paused = True

    def resume(self) -> None:
        """Read the client again after ``pause``."""
        self._paused = False
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None

    async def serve(
        self,
        deliver: Deliver,
        heartbeats: Heartbeats | None = None,
        packet_rate: float | None = None,
        reactor: Reactor | None = None,
    ) -> None:
        """Run the connection until it ends: once opened, hand each packet to ``deliver``
        until the client leaves or ``close`` is called (``heartbeats``, if given, calls it
        when the client is silent too long), at most ``packet_rate`` a second if given
        (``meshnet.gate.ratelimit``); then send what is buffered (for up to
        ``CLOSE_TIMEOUT``). ``aclose`` must follow. With ``reactor`` (plain TCP only),
        the reactor serves the connection while nothing needs a wait.

        Failures end up in ``error``; only cancellation propagates.
        """
        with self._read_scope:
            try:
                if self._opened is not None:
                    await self._wait(self._opened.wait)
                    self._opened = None
                budget = None if packet_rate is None else PacketBudget(packet_rate)
                if reactor is None:
                    receive = partial(self._receive, heartbeats)
                else:
                    receive = partial(reactor.attend, self, heartbeats, budget)
                await self._read_loop(receive, deliver, heartbeats, budget)
            except TransportError as exc:
                self.close(str(exc))
            finally:
                if heartbeats is not None:
                    heartbeats.forget(self)
        self.close()
        self._release()
        if self._flushed is not None:
            assert self._write_scope is not None
            with trio.move_on_after(CLOSE_TIMEOUT):
                await self._flushed.wait()
            self._write_scope.cancel()
            await self._flushed.wait()  # a send it cancelled still holds the transport
        self._served = True

    async def aclose(self) -> None:
        """Close the transport: gracefully after ``serve`` ended normally, else at once."""
        self._closing = True
        self._drop_buffer()
        if self._write_scope is not None:  # serve did not end normally: nor does the loop
            self._write_scope.cancel()
        await self.transport.aclose(self._served and not self._aborted, self.error)

    # --- the gate's reactor ----------------------------------------------------------

    def took(self, packets: list[bytes], heartbeats: Heartbeats | None) -> None:
        """Count packets just read (for the reactor, which reads them)."""
        if heartbeats is not None:
            heartbeats.touch(self)
        self.received_packets += len(packets)
        self.received_bytes += sum(map(len, packets))
        self.last_received = time.monotonic()

    def hook_running(self, running: bool) -> None:
        """The reactor hands a packet over (True) or is done with it (False), while the
        reader waits in ``attend``: a close meanwhile waits for that, as for a hook."""
        self._waiting = not running

    # --- helpers --------------------------------------------------------------------

    async def _receive(self, heartbeats: Heartbeats | None) -> list[bytes] | None:
        packets = await self.transport.receive()
        if packets is not None:
            self.took(packets, heartbeats)
        return packets

    async def _read_loop(
        self,
        receive: Callable[..., Awaitable[list[bytes] | None]],
        deliver: Deliver,
        heartbeats: Heartbeats | None,
        budget: PacketBudget | None,
    ) -> None:
        """``receive`` gives the next packets, counted (``took``)."""
        if heartbeats is not None:
            heartbeats.touch(self)
        while not self._closing:
            self._release()
            packets = await self._wait(receive)
            if packets is None:
                return
            self._holding = len(packets) > 1
            for count, packet in enumerate(packets):
                if count:
                    if not count % HOLD_BATCH:
                        self._release()
                        self._holding = True
                    if not count % DELIVERY_BATCH:
                        await self._wait(checkpoint)  # every other connection has a turn
                if self._closing:  # what the client sent after is moot
                    return
                while self._paused:
                    self._release()
                    await self._wait(self._resumption)
                if budget is not None and (delay := budget.take()):
                    self._release()
                    await self._wait(partial(trio.sleep, delay))
                await deliver(self, packet)

    async def _wait(self, wait: Callable[[], Awaitable[Received]]) -> Received:
        """Await ``wait()`` where ``close`` may cut it short: it cancels the reader only
        here, never while a hook runs."""
        if self._closing:
            self._read_scope.cancel()
        self._waiting = True
        try:
            return await wait()
        finally:
            self._waiting = False

    def _release(self) -> None:
        """Send what was written while ``_holding``, in one go."""
        self._holding = False
        if not self._buffered or self._in_flight:
            return  # nothing held, or the write loop is sending and takes the rest next
        self._buffer = rest = self.transport.send_now_all(self._buffer)
        buffered = sum(map(len, rest))
        self._node.shrink(self._buffered - buffered)
        self._buffered = buffered
        if rest:
            self._wake_writer()
        else:
            self._drained()

    async def _resumption(self) -> None:
        if self._paused:
            if self._resumed is None:
                self._resumed = trio.Event()
            await self._resumed.wait()

    async def _write_loop(self, writer: ParkingLot) -> None:
        try:
            assert self._write_scope is not None and self._flushed is not None
            with self._write_scope:
                while True:
                    while not self._buffer:
                        if self._closing:
                            return
                        await writer.park()
                    chunks, self._buffer = self._buffer, []
                    self._in_flight, self._buffered = self._buffered, 0
                    await self.transport.send(chunks)
                    self._node.shrink(self._in_flight)
                    self._in_flight = 0
                    if not self._buffered:
                        self._drained()
        except TransportError as exc:
            self.close(str(exc), abort=True)
        except Exception as exc:  # a bug: it ends this connection, not the gate
            logger.exception("connection %d: the write loop failed", self.fd)
            self.close(f"internal error: {exc!r}", abort=True)
        finally:
            self._node.shrink(self._in_flight)  # a send cut short: those bytes are dropped
            self._in_flight = 0
            self._flushed.set()

    def _drained(self) -> None:
        """Nothing is waiting to be sent: say so if the gate was warned about it."""
        if self._warn_at > WARN_UNSENT:
            self._warn_at = self._check_at = WARN_UNSENT
            self._notify(self.fd, 0)

    def _wake_writer(self) -> None:
        if self._writer is not None:
            self._writer.unpark()
        else:
            self._writer = ParkingLot()
            self._write_scope = trio.CancelScope()
            self._flushed = trio.Event()
            # Any service's write may get here: start the loop in the gate's context, not
            # in the writer's (log records, current service).
            self._context.run(self._nursery.start_soon, self._write_loop, self._writer)

    def _over_threshold(self) -> None:
        unsent = self._buffered + self._in_flight
        if unsent > self._max_unsent:
            self.close(
                f"more than {self._max_unsent} bytes waiting to be sent: "
                "the client does not read what it is sent",
                abort=True,
            )
            return
        while self._warn_at < unsent:
            self._warn_at *= 2
        self._check_at = min(self._warn_at, self._max_unsent)
        self._notify(self.fd, unsent // 1024)

    def _abort(self) -> None:
        self._aborted = True
        self._drop_buffer()
        if self._write_scope is not None:
            self._write_scope.cancel()

    def _drop_buffer(self) -> None:
        self._node.shrink(self._buffered)
        self._buffer.clear()
        self._buffered = 0


class UnsentTotal:
    """The unsent bytes of every connection of a node, and the cap on them: past it, the
    connection with the most waiting is closed (the client that reads least), so a few
    clients that stop reading cannot make the node buffer up to ``max_unsent`` each."""

    def __init__(self, limit: int = NODE_MAX_UNSENT) -> None:
        self.limit = limit
        self.total = 0
        self.connections: dict[int, Connection] = {}
        """The connections counted, by fd (the registry's)."""

    def grow(self, count: int) -> bool:
        """Count ``count`` more bytes; True if the node is now over its limit."""
        self.total += count
        return self.total > self.limit

    def shrink(self, count: int) -> None:
        """``count`` bytes were sent, or dropped."""
        self.total -= count

    def shed(self) -> None:
        """Close connections with the most unsent bytes until the total is under the limit."""
        while self.total > self.limit:
            waiting = [c for c in self.connections.values() if c.unsent and not c._aborted]
            if not waiting:
                return
            worst = max(waiting, key=lambda connection: connection.unsent)
            worst.close(
                f"the node has more than {self.limit} bytes waiting to be sent to its "
                f"clients, and this one had the most ({worst.unsent}): it does not read",
                abort=True,
            )
