"""One task serving every plain TCP connection of a gate while their packets need no wait.

A connection's own task would wake once per packet it reads, and hand each to its agent
in another task switch. Instead, while a connection has nothing to wait for, its task
parks here (``attend``) and the gate's reactor serves it with the others: one wake-up for
every socket that became readable (an epoll set of its own, level-triggered, registered
once per connection instead of once per read), one read each, and each packet handed
over in the reactor's task: to the gate's ``message`` hook, or to the agent's handler,
run as the agent's (``Dispatcher.run_here``) when the agent is idle, else queued in its
mailbox. A reply the handler writes goes straight to the socket.

The guarantees of ``meshnet.gate.connection`` hold: packets are handed over in order, one
per connection per round, every other task running between rounds; a connection is read
again only once its packets of the last read are all handed over; the heartbeat is moved
on by each read that brings packets. Whatever needs a wait hands the connection back to
its own task with the packets not yet handed over (``attend`` returns them): a pause, an
exhausted packet budget, a full mailbox or an agent on another node, the end of the stream
or a broken one. If a hook or an agent's handler suspends, the reactor's task goes on
running it (the hook for its connection, which waits for it; the agent's handler as the
agent's, see ``dispatch.Guest``) and a new task takes over the reactor.
"""

from __future__ import annotations

import logging
import os
import select
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, Protocol

import outcome
import trio
from trio.lowlevel import Abort, Task, checkpoint, current_task, reschedule, wait_task_rescheduled

from meshnet.gate.transport import RECEIVE_SIZE, TcpTransport, TransportError

if TYPE_CHECKING:
    from meshnet.gate.connection import Connection
    from meshnet.gate.heartbeat import Heartbeats
    from meshnet.gate.ratelimit import PacketBudget

logger = logging.getLogger(__name__)


class Guest(Protocol):
    """A hand-over that suspended: the reactor's task finishes it, in ``scope``."""

    async def finish(self, scope: trio.CancelScope) -> None:
        """Run what suspended to its end; ``scope`` is the reactor task's own."""
        ...


DeliverHere = Callable[["Connection", bytes], "Guest | bool | None"]
"""Hands one packet over without waiting: None once done, a ``Guest`` if it suspended,
False if it needs a wait (the connection's task then hands it over)."""
Fork = Callable[..., trio.CancelScope]


class Reactor:
    """The plain TCP connections of one gate that are waiting for packets."""

    def __init__(self, deliver_here: DeliverHere, fork: Fork) -> None:
        self._deliver_here = deliver_here
        self._fork = fork
        self._epoll = select.epoll()
        self._entries: dict[int, _Entry] = {}
        self._ready: list[_Entry] = []
        """Connections with packets still to hand over, in the order they are served."""
        self._running = False

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def serves(connection: Connection) -> bool:
        """True for a connection the reactor can read: plain TCP, not TLS."""
        transport = connection.transport
        return isinstance(transport, TcpTransport) and transport.fileno >= 0

    def attend(
        self,
        connection: Connection,
        heartbeats: Heartbeats | None,
        budget: PacketBudget | None,
    ) -> Awaitable[list[bytes] | None]:
        """Serve ``connection`` until something needs a wait; await the result: the
        packets read but not handed over (maybe none), None at the end of the stream;
        ``TransportError`` if it broke. Cancelling the caller takes the connection out
        at once. (A plain function: an idle connection keeps no frame of it.)"""
        transport = connection.transport
        assert isinstance(transport, TcpTransport)
        transport.check()
        entry = _Entry(self, connection, current_task(), heartbeats, budget)
        fileno = transport.fileno
        self._epoll.register(fileno, select.EPOLLIN)
        self._entries[fileno] = entry
        if not self._running:
            self._start_worker()
        return wait_task_rescheduled(entry.abort)  # type: ignore[no-any-return]

    # --- helpers --------------------------------------------------------------------

    def _start_worker(self) -> None:
        self._running = True
        self._fork(self._work)

    async def _work(self) -> None:
        with trio.CancelScope() as scope:
            try:
                guest = await self._loop()
            finally:
                self._running = False
            self._start_worker()
            await guest.finish(scope)

    async def _loop(self) -> Guest:
        epoll = self._epoll.fileno()
        while True:
            if self._ready:
                await checkpoint()  # every other task has its turn between rounds
            else:
                await trio.lowlevel.wait_readable(epoll)
            self._read()
            guest = self._round()
            if guest is not None:
                return guest

    def _read(self) -> None:
        entries = self._entries
        for fileno, _ in self._epoll.poll(0):
            entry = entries.get(fileno)
            if entry is None or entry.packets or entry.busy:
                continue  # read again once what it sent last is handed over
            try:
                data = os.read(fileno, RECEIVE_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                self._hand_back(entry, outcome.Error(TransportError(f"connection lost: {exc}")))
                continue
            connection = entry.connection
            try:
                packets = connection.transport.take(data)  # type: ignore[attr-defined]
                if packets == []:
                    connection.transport.check()  # type: ignore[attr-defined]
            except TransportError as exc:
                self._hand_back(entry, outcome.Error(exc))
                continue
            if packets is None:
                self._hand_back(entry, outcome.Value(None))
            elif packets:
                connection.took(packets, entry.heartbeats)
                entry.packets = packets
                entry.next = 0
                self._ready.append(entry)

    def _round(self) -> Guest | None:
        """Hand over one packet of each ready connection; the first ``Guest``, if any
        (the connections not served yet wait for the next round)."""
        ready, self._ready = self._ready, []
        for position, entry in enumerate(ready):
            if entry.task is None:
                continue  # handed back or cancelled meanwhile
            guest = self._serve_one(entry)
            if entry.task is not None and not entry.busy:
                if entry.next < len(entry.packets):
                    self._ready.append(entry)
                else:
                    self._exhausted(entry)
            if guest is not None:
                self._ready[:0] = ready[position + 1 :]
                return guest
        return None

    def _serve_one(self, entry: _Entry) -> Guest | None:
        connection = entry.connection
        if connection.closing:
            self._hand_back(entry, outcome.Value(None))
            return None
        budget = entry.budget
        if connection.paused or (budget is not None and not budget.ready()):
            self._hand_back(entry, outcome.Value(entry.packets[entry.next :]))
            return None
        if budget is not None:
            budget.take()
        packet = entry.packets[entry.next]
        entry.next += 1
        connection.hook_running(True)  # a close now waits for what the hand-over does
        try:
            result = self._deliver_here(connection, packet)
        except Exception as exc:  # a bug of the gate's: its connection's task reports it
            connection.hook_running(False)
            self._hand_back(entry, outcome.Error(exc))
            return None
        if result is False:
            connection.hook_running(False)
            entry.next -= 1
            self._hand_back(entry, outcome.Value(entry.packets[entry.next :]))
            return None
        if result is None:
            connection.hook_running(False)
            if connection.closing:
                self._hand_back(entry, outcome.Value(None))
            return None
        if isinstance(result, HookGuest):
            entry.busy = True  # its next packet waits for the hook to return
            return _AfterHook(self, entry, result)
        connection.hook_running(False)
        return result

    def _exhausted(self, entry: _Entry) -> None:
        """Every packet of the last read was handed over."""
        entry.packets = ()
        try:
            entry.connection.transport.check()  # type: ignore[attr-defined]
        except TransportError as exc:
            self._hand_back(entry, outcome.Error(exc))

    def _hand_back(self, entry: _Entry, result: outcome.Outcome[Any]) -> None:
        task = entry.task
        self._detach(entry)
        if task is not None:
            reschedule(task, result)

    def _detach(self, entry: _Entry) -> None:
        if entry.task is None:
            return
        entry.task = None
        fileno = entry.connection.transport.fileno  # type: ignore[attr-defined]
        if self._entries.get(fileno) is entry:
            del self._entries[fileno]
            self._epoll.unregister(fileno)


class HookGuest:
    """The gate's ``message`` hook, suspended in the reactor's task: ``finish`` runs it
    to its end there; ``failed`` is called if it raises."""

    __slots__ = ("_coro", "_trap", "_failed")

    def __init__(
        self, coro: Coroutine[Any, Any, Any], trap: Any, failed: Callable[[], None]
    ) -> None:
        self._coro = coro
        self._trap = trap
        self._failed = failed

    async def finish(self, scope: trio.CancelScope) -> None:
        """Run the hook to its end."""
        try:
            await _resume(self._coro, self._trap)
        except Exception:
            self._failed()


class _AfterHook:
    """A hook suspended: once it returns, its connection's task takes the packets left."""

    __slots__ = ("_reactor", "_entry", "_hook")

    def __init__(self, reactor: Reactor, entry: _Entry, hook: HookGuest) -> None:
        self._reactor = reactor
        self._entry = entry
        self._hook = hook

    async def finish(self, scope: trio.CancelScope) -> None:
        entry = self._entry
        try:
            await self._hook.finish(scope)
        finally:
            entry.connection.hook_running(False)
            left = None if entry.connection.closing else entry.packets[entry.next :]
            self._reactor._hand_back(entry, outcome.Value(left))


class _Entry:
    """A connection in the reactor, and its task parked in ``attend``."""

    __slots__ = (
        "reactor",
        "connection",
        "task",
        "heartbeats",
        "budget",
        "packets",
        "next",
        "busy",
    )

    def __init__(
        self,
        reactor: Reactor,
        connection: Connection,
        task: Task,
        heartbeats: Heartbeats | None,
        budget: PacketBudget | None,
    ) -> None:
        self.reactor = reactor
        self.connection = connection
        self.task: Task | None = task
        """None once the connection left the reactor."""
        self.heartbeats = heartbeats
        self.budget = budget
        self.packets: list[bytes] | tuple[()] = ()
        """The packets of its last read; those from ``next`` on are not handed over yet."""
        self.next = 0
        self.busy = False
        """True while a hook runs for one of its packets in a reactor's task."""

    def abort(self, _: object) -> Abort:
        """trio cancelled the connection's task parked in ``attend``."""
        self.reactor._detach(self)
        return Abort.SUCCEEDED


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], trap: Any) -> Generator[Any, Any, Any]:
    """Go on running ``coro``, which yielded ``trap``, in this task; return its result."""
    while True:
        try:
            value = yield trap
        except BaseException as exc:
            try:
                trap = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                trap = coro.send(value)
            except StopIteration as done:
                return done.value
