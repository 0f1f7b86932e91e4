"""A router connection's requests in flight: several at once, replies in request order.

The router keeps reading a connection while its requests wait for their backends, so a
client's close is seen at once however slow a backend is. Each routed request gets a
slot here, in the order the client sent it; its backend call runs in a task of its own;
replies (and the router's own error replies, which need no backend) are written in slot
order, each as soon as every earlier one is out. With ``limit`` requests in flight the
connection is paused (nothing more is read) until one is answered, so one client's work in
progress stays bounded.

The calls themselves are made in request order too (each task waits until the one before
has queued its call), so a backend starts a connection's requests in the order they were
sent, as it does every sender's messages; they may then run concurrently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

import trio

from meshnet.gate.connection import Connection

Call = Callable[[], Awaitable[bytes | None]]
"""A request's backend call: returns the reply packet to write (None: no reply)."""
Fork = Callable[..., trio.CancelScope]
"""How the router runs a task (``Service.fork``)."""


class Pipeline:
    """The requests of one connection that are waiting for their backends."""

    __slots__ = ("connection", "limit", "_fork", "_slots", "_in_flight", "_last_queued", "_close")

    def __init__(self, connection: Connection, limit: int, fork: Fork) -> None:
        self.connection = connection
        self.limit = limit
        self._fork = fork
        self._slots: deque[_Slot] = deque()
        """Replies owed, oldest first: done ones wait behind the first that is not."""
        self._in_flight = 0
        self._last_queued: trio.Event | None = None
        """Set once the latest call has been queued at its backend."""
        self._close = False

    @property
    def in_flight(self) -> int:
        """Requests waiting for their backend."""
        return self._in_flight

    def reply(self, packet: bytes) -> None:
        """Write ``packet`` once every earlier reply is out (at once if none is owed)."""
        if self._slots:
            self._slots.append(_Slot(packet))
        else:
            self.connection.write(packet)

    def close_after(self) -> None:
        """Read nothing more; close the connection once every reply owed is out."""
        self._close = True
        self.connection.pause()
        self._flush()

    def start(self, call: Call) -> None:
        """Run ``call`` in a task of its own; its reply takes the next slot."""
        slot = _Slot(None, done=False)
        self._slots.append(slot)
        self._in_flight += 1
        if self._in_flight >= self.limit:
            self.connection.pause()
        queued = trio.Event()
        slot.scope = self._fork(self._run, slot, call, self._last_queued, queued)
        self._last_queued = queued

    def abandon(self) -> None:
        """The connection is gone: cancel every call still waiting (their backends' handlers
        run on; the replies are dropped)."""
        for slot in self._slots:
            if slot.scope is not None:
                slot.scope.cancel()
        self._slots.clear()

    async def _run(
        self, slot: _Slot, call: Call, previous: trio.Event | None, queued: trio.Event
    ) -> None:
        if previous is not None and not previous.is_set():
            await previous.wait()
        # ``call`` queues its message before it first suspends, so the next task (woken
        # here, run only once this one suspends) queues its own after it.
        queued.set()
        try:
            slot.packet = await call()
        finally:
            slot.done = True
            slot.scope = None
            self._in_flight -= 1
            if self._in_flight < self.limit and not self._close:
                self.connection.resume()
            self._flush()

    def _flush(self) -> None:
        slots = self._slots
        while slots and slots[0].done:
            packet = slots.popleft().packet
            if packet is not None:
                self.connection.write(packet)
        if self._close and not slots:
            self.connection.close()


class _Slot:
    __slots__ = ("packet", "done", "scope")

    def __init__(self, packet: bytes | None, done: bool = True) -> None:
        self.packet = packet
        self.done = done
        self.scope: trio.CancelScope | None = None
