"""The ``Service`` base class: what a game developer subclasses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

import trio

from meshnet.address import Address
from meshnet.context import USE_NODE_DEFAULT
from meshnet.mailbox import Policy
from meshnet.message import REQUEST, TEXT

if TYPE_CHECKING:
    from meshnet.context import Responder, ServiceContext
    from meshnet.node import Node
    from meshnet.supervision import RestartPolicy

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def command(function: F) -> F:
    """Mark an async method as a command other services may ``call`` or ``send``."""
    function._meshnet_command = True  # type: ignore[attr-defined]
    return function


class Service:
    """Base class of services. Subclass it, write ``@command`` methods, start it with
    ``newservice``.

    Each message is handled in its own task as soon as the previous one has started, so a
    command that awaits a call does not hold up the service's other messages (skynet's
    reentrancy); use ``meshnet.Queue`` where handlers must not interleave.

    Class attributes set the mailbox: ``mailbox_size`` messages at most; when it is full
    ``mailbox_policy = "wait"`` makes senders wait and ``"reject"`` raises ``Busy`` in them;
    a warning is logged when more than ``mailbox_warning`` messages are queued.
    """

    mailbox_size: ClassVar[int] = 4096
    mailbox_policy: ClassVar[Policy] = "wait"
    mailbox_warning: ClassVar[int] = 1024
    _commands: ClassVar[dict[str, Callable[..., Awaitable[Any]]]] = {}
    _ctx: ServiceContext

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._commands = {
            name: attr
            for klass in reversed(cls.__mro__)
            for name, attr in vars(klass).items()
            if getattr(attr, "_meshnet_command", False)
        }

    # --- lifecycle hooks ------------------------------------------------------------

    async def init(self, *args: Any) -> None:
        """Set the service up; messages are handled once it returns. Raise to refuse to start."""

    async def on_exit(self) -> None:
        """Runs once when the service ends for any reason (exit, kill, shutdown, crash)."""

    # --- identity -------------------------------------------------------------------

    @property
    def address(self) -> Address:
        return Address(self._ctx.address)

    @property
    def node(self) -> Node:
        return self._ctx.node

    @property
    def log(self) -> logging.Logger:
        """The logger of the module defining this service (records carry the address)."""
        return logging.getLogger(type(self).__module__)

    # --- messages -------------------------------------------------------------------

    async def call(
        self, target: int | str, name: str, *args: Any, timeout: float | None = USE_NODE_DEFAULT
    ) -> Any:
        """Run command ``name`` on ``target`` (address or ``.name``) and return its answer.

        Raises ``CallError`` (or a subclass: ``NoSuchService``, ``ServiceExited``,
        ``CallTimeout``, ``Busy``) when no answer value comes back.
        """
        return await self._ctx.call(target, name, args, timeout)

    async def send(self, target: int | str, name: str, *args: Any) -> None:
        """Queue command ``name`` on ``target`` without waiting for it to run."""
        await self._ctx.post(target, REQUEST, name, args)

    async def post(self, target: int | str, kind: str, *args: Any) -> None:
        """Queue a message of another kind; the target handles it in ``on_<kind>(*args)``."""
        await self._ctx.post(target, kind, None, args)

    async def text(self, target: int | str, line: str) -> None:
        """Send a line of text to ``target``'s ``on_text``."""
        await self._ctx.post(target, TEXT, None, (line,))

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
        """End this service now: its tasks are cancelled and callers still waiting get
        ``ServiceExited``."""
        self._ctx.stop("exited")
        await trio.lowlevel.checkpoint()
        raise AssertionError("unreachable: the service's tasks were cancelled")

    # --- other services -------------------------------------------------------------

    async def newservice(
        self, service: str | type[Service], *args: Any, restart: RestartPolicy | None = None
    ) -> Address:
        return await self._ctx.node.newservice(service, *args, restart=restart)

    async def uniqueservice(self, service: str | type[Service], *args: Any) -> Address:
        return await self._ctx.node.uniqueservice(service, *args)

    async def queryservice(self, service: str | type[Service]) -> Address:
        return await self._ctx.node.queryservice(service)

    async def kill(self, target: int | str) -> None:
        await self._ctx.node.kill(target)

    def register(self, name: str) -> None:
        """Give this service the node-local name ``name`` (``.name``); dropped on exit."""
        self._ctx.node.register(name, self._ctx.address)

    def lookup(self, name: str) -> Address | None:
        return self._ctx.node.lookup(name)

    # --- multicast ------------------------------------------------------------------

    def channel_new(self) -> int:
        """Create a multicast channel and return its id."""
        return self._ctx.node.multicast.new()

    def channel_delete(self, channel: int) -> None:
        self._ctx.node.multicast.delete(channel)

    def subscribe(self, channel: int, callback: Callable[..., Awaitable[Any]]) -> None:
        """Have ``await callback(channel, source, *args)`` run here for every publication."""
        self._ctx.node.multicast.subscribe(self._ctx, channel, callback)

    def unsubscribe(self, channel: int) -> None:
        self._ctx.node.multicast.unsubscribe(self._ctx, channel)

    async def publish(self, channel: int, *args: Any) -> int:
        """Send ``args`` to every subscriber of ``channel``; return how many took it."""
        return await self._ctx.node.multicast.publish(self._ctx, channel, args)
