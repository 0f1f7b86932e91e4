"""The ``Service`` base class: what a game developer subclasses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from meshnet.address import Address
from meshnet.base import BaseService, command
from meshnet.context import NODE_DEFAULT, Responder, ServiceContext
from meshnet.message import TEXT
from meshnet.node import Node

if TYPE_CHECKING:
    from meshnet.supervision import RestartPolicy

__all__ = ["Service", "command"]


class Service(BaseService):
    """Base class of services. Subclass it, write ``@command`` methods, start it with
    ``newservice``.

    Messages start in the order they arrive. Each is handled in its own task once it
    suspends, so a command that awaits a call does not hold up the service's other
    messages (skynet's reentrancy); use ``meshnet.Queue`` where handlers must not
    interleave. Class attributes bound the mailbox and the handlers running at once
    (``mailbox_size``, ``mailbox_policy``, ``mailbox_warning``, ``max_concurrency``; see
    ``meshnet.base.BaseService``). Define ``async def on_client(self, fd, packet)`` to take
    packets a gate forwards, ``async def on_text(self, line)`` for text messages.
    """

    _ctx: ServiceContext
    _node: Node

    # --- identity -------------------------------------------------------------------

    @property
    def address(self) -> Address:
        """This service's address."""
        return Address(self._ctx.address)

    @property
    def node(self) -> Node:
        """The node this service runs on."""
        return self._node

    @property
    def log(self) -> logging.Logger:
        """The logger of the module defining this service (records carry the address)."""
        return logging.getLogger(type(self).__module__)

    # --- messages -------------------------------------------------------------------

    def call(
        self, target: int | str, name: str, *args: Any, timeout: float | None = NODE_DEFAULT
    ) -> Coroutine[Any, Any, Any]:
        """``await`` it: run command ``name`` on ``target`` (address or ``.name``) and
        return its answer.

        ``timeout`` seconds (default: the node's ``call_timeout``; None: no limit) cover
        the wait for room in a full mailbox and the wait for the answer. Raises
        ``CallError`` or a subclass (``NoSuchService``, ``ServiceExited``, ``CallTimeout``,
        ``Busy``, ``UnknownCommand``) when no answer value comes back. (A plain method
        returning the runtime's coroutine: one frame less on the hottest path.)
        """
        return self._ctx.call(target, name, args, timeout)

    def send(self, target: int | str, name: str, *args: Any) -> Coroutine[Any, Any, None]:
        """``await`` it: queue command ``name`` on ``target`` without waiting for it to
        run. Waits only for room in a full mailbox whose policy is ``"wait"``."""
        return self._ctx.send(target, name, args)

    async def post(self, target: int | str, kind: str, *args: Any) -> None:
        """Queue a message of another kind (``"client"``, ``"text"``); the target handles
        it in ``on_<kind>(*args)``."""
        await self._ctx.post(target, kind, args)

    async def text(self, target: int | str, line: str) -> None:
        """Send a line of text to ``target``'s ``on_text``."""
        await self._ctx.post(target, TEXT, (line,))

    def response(self) -> Responder:
        """Take over answering the current call: answer later, once, by calling the result."""
        return self._ctx.take_responder()

    async def redirect(self, target: int | str, name: str, *args: Any) -> None:
        """Hand the current message to ``target`` as command ``name``; it answers our caller."""
        await self._ctx.redirect(target, name, args)

    # --- tasks and time -------------------------------------------------------------

    def fork(self, function: Callable[..., Awaitable[Any]], *args: Any) -> trio.CancelScope:
        """Run ``function(*args)`` in a new task of this service; cancel it with the result.

        An exception escaping a forked task crashes the service (it exits, its callers get
        ``ServiceExited``, a restart policy may start it again).
        """
        return self._ctx.fork(function, args)

    def timeout(
        self, delay: float, function: Callable[..., Awaitable[Any]], *args: Any
    ) -> trio.CancelScope:
        """Run ``function(*args)`` in a new task after ``delay`` seconds; cancellable."""

        async def later() -> None:
            await trio.sleep(delay)
            await function(*args)

        return self._ctx.fork(later, ())

    async def sleep(self, seconds: float) -> None:
        """Suspend this task for ``seconds`` (the service's other messages go on)."""
        await trio.sleep(seconds)

    def now(self) -> float:
        """Seconds on the node's monotonic clock."""
        return trio.current_time()

    async def wait(self, token: object = None) -> None:
        """Suspend this task until ``wakeup(token)`` (token defaults to the current task)."""
        await self._ctx.wait(trio.lowlevel.current_task() if token is None else token)

    def wakeup(self, token: object) -> bool:
        """Resume the task waiting on ``token``; False if none waits."""
        return self._ctx.wakeup(token)

    async def exit(self) -> NoReturn:
        """End this service now: its tasks are cancelled, no queued message starts, and
        callers still waiting get ``ServiceExited``."""
        self._ctx.stop("exited")
        await trio.lowlevel.checkpoint()
        raise AssertionError("unreachable: the service's tasks were cancelled")

    # --- other services -------------------------------------------------------------

    async def newservice(
        self, service: str | type[BaseService], *args: Any, restart: RestartPolicy | None = None
    ) -> Address:
        """Start a service (a class or ``"package.module:Class"``) and return its address
        once its ``init(*args)`` returned; see ``Node.newservice``."""
        return await self._node.newservice(service, *args, restart=restart)

    async def uniqueservice(
        self, service: str | type[BaseService], *args: Any, cluster: bool = False
    ) -> Address:
        """The node's (with ``cluster``, the cluster's) one instance of ``service``,
        started on first use; see ``Node.uniqueservice``."""
        return await self._node.uniqueservice(service, *args, cluster=cluster)

    async def queryservice(self, service: str | type[BaseService]) -> Address:
        """Wait until the unique instance of ``service`` runs, and return its address."""
        return await self._node.queryservice(service)

    async def kill(self, target: int | str) -> None:
        """Stop another service now; its callers get ``ServiceExited``."""
        await self._node.kill(target)

    def register(self, name: str) -> None:
        """Give this service the node-local name ``name`` (``.name``); dropped on exit."""
        self._node.register(name, self._ctx.address)

    def lookup(self, name: str) -> Address | None:
        """The address registered as ``name``, or None."""
        return self._node.lookup(name)

    # --- multicast ------------------------------------------------------------------

    def channel_new(self) -> int:
        """Create a multicast channel owned by this service and return its id; it is
        deleted when this service ends."""
        return self._node.multicast.new(self._ctx)

    def channel_delete(self, channel: int) -> None:
        """Delete ``channel``; its subscribers are told (their ``on_delete``) after the
        publications sent before."""
        self._node.multicast.delete(channel, self._ctx)

    def subscribe(
        self,
        channel: int,
        callback: Callable[..., Awaitable[Any]],
        on_delete: Callable[[int], Awaitable[Any]] | None = None,
    ) -> None:
        """Have ``await callback(channel, source, *args)`` run here for every publication,
        and ``await on_delete(channel)`` once the channel is deleted."""
        self._node.multicast.subscribe(self._ctx, channel, callback, on_delete)

    def unsubscribe(self, channel: int) -> None:
        """Stop receiving ``channel``'s publications (those already queued are dropped)."""
        self._node.multicast.unsubscribe(self._ctx, channel)

    async def publish(self, channel: int, *args: Any) -> int:
        """Send ``args`` to every subscriber of ``channel``; return how many took it."""
        return await self._node.multicast.publish(self._ctx, channel, args)
