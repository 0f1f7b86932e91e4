"""A node: one process's services, their addresses and names, and their lifetimes."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import outcome
import trio

from meshnet.address import MAX_LOCAL, Address, format_address
from meshnet.context import USE_NODE_DEFAULT, ServiceContext, current_service
from meshnet.dispatch import Dispatcher
from meshnet.errors import NoSuchService, ServiceNameError, ServiceStartError
from meshnet.loader import load_service_class, service_key
from meshnet.log import current_address, install_record_factory
from meshnet.message import REQUEST, TEXT
from meshnet.multicast import MulticastHub
from meshnet.service import Service
from meshnet.supervision import RestartPolicy

logger = logging.getLogger(__name__)

EXIT_HOOK_TIMEOUT = 5.0
"""Seconds a service's ``on_exit`` may run before it is cut short."""


@asynccontextmanager
async def open_node(
    node_id: int = 1,
    name: str = "node",
    *,
    strict_codec: bool = False,
    call_timeout: float | None = None,
) -> AsyncIterator[Node]:
    """Run a node for the duration of the ``async with`` block, then shut it down cleanly."""
    node = Node(node_id, name, strict_codec=strict_codec, call_timeout=call_timeout)
    install_record_factory()
    current_address.set(str(node.address))
    async with trio.open_nursery() as nursery:
        node._nursery = nursery
        await node._boot()
        try:
            yield node
        finally:
            with trio.CancelScope(shield=True):
                await node.shutdown()


class Node:
    """The registry and supervisor of every service in this process. Create with ``open_node``."""

    def __init__(
        self, node_id: int, name: str, *, strict_codec: bool, call_timeout: float | None
    ) -> None:
        self.id = node_id
        self.name = name
        self.strict_codec = strict_codec
        self.call_timeout = call_timeout
        self.address = Address.make(node_id, 0)
        self.late_replies = 0
        """Answers that arrived for services no longer alive."""
        self.multicast = MulticastHub(self)
        self._services: dict[int, ServiceContext] = {}
        self._names: dict[str, int] = {}
        self._uniques: dict[str, _UniqueSlot] = {}
        self._unique_started = trio.Event()
        self._last_local = 0
        self._stopping = False
        self._nursery: trio.Nursery
        self._system: ServiceContext

    # --- starting and stopping services ---------------------------------------------

    async def newservice(
        self, service: str | type[Service], *args: Any, restart: RestartPolicy | None = None
    ) -> Address:
        """Start a service and return its address once its ``init(*args)`` has returned.

        If ``init`` raises, ``ServiceStartError`` is raised here and nothing stays
        registered. With a ``restart`` policy the node starts it again (at a new address,
        with the same arguments) when it ends, as the policy says.
        """
        cls = load_service_class(service)
        if restart is None:
            return await self._nursery.start(self._lifetime, cls, args)
        return await self._nursery.start(self._supervise, cls, args, restart)

    async def uniqueservice(self, service: str | type[Service], *args: Any) -> Address:
        """Start the node's one instance of ``service``, or return it if it already runs.

        Concurrent callers all get the instance the first of them started.
        """
        cls = load_service_class(service)
        key = service_key(cls)
        slot = self._uniques.get(key)
        if slot is not None:
            await slot.ready.wait()
            if slot.error is not None:
                raise slot.error
            return slot.address
        slot = self._uniques[key] = _UniqueSlot()
        try:
            slot.address = await self.newservice(cls, *args)
        except BaseException as exc:
            del self._uniques[key]
            slot.error = (
                exc
                if isinstance(exc, ServiceStartError)
                else ServiceStartError(key, type(exc).__name__, str(exc))
            )
            slot.ready.set()
            raise
        slot.ready.set()
        self._unique_started.set()
        self._unique_started = trio.Event()
        return slot.address

    async def queryservice(self, service: str | type[Service]) -> Address:
        """Wait until the unique instance of ``service`` runs, and return its address."""
        key = service_key(load_service_class(service))
        while True:
            slot = self._uniques.get(key)
            if slot is not None:
                await slot.ready.wait()
                if slot.error is None:
                    return slot.address
            await self._unique_started.wait()

    async def kill(self, target: int | str) -> None:
        """Stop a service now; every caller it still owed an answer gets ``ServiceExited``."""
        ctx = self.resolve(target)
        ctx.stop("killed")
        await ctx.exited.wait()

    async def shutdown(self) -> None:
        """Stop every service, newest first, running their ``on_exit`` hooks; then the node."""
        self._stopping = True
        while self._services:
            ctx = next(reversed(self._services.values()))
            ctx.stop("node shutting down")
            await ctx.exited.wait()
        self._nursery.cancel_scope.cancel()

    # --- messages -------------------------------------------------------------------

    async def call(
        self, target: int | str, name: str, *args: Any, timeout: float | None = USE_NODE_DEFAULT
    ) -> Any:
        """Call a command from outside any service (or as the current service)."""
        return await self._caller().call(target, name, args, timeout)

    async def send(self, target: int | str, name: str, *args: Any) -> None:
        """Send a command that wants no answer."""
        await self._caller().post(target, REQUEST, name, args)

    async def post(self, target: int | str, kind: str, *args: Any) -> None:
        """Deliver a message of another kind (``client``, ``text``, ...)."""
        await self._caller().post(target, kind, None, args)

    async def text(self, target: int | str, line: str) -> None:
        """Send a line of text (dispatched to the target's ``on_text``)."""
        await self.post(target, TEXT, line)

    def resolve(self, target: int | str) -> ServiceContext:
        """The live service ``target`` (an address or a ``.name``) refers to."""
        if isinstance(target, str):
            address = self._names.get(target)
            if address is None:
                raise NoSuchService(target, _why_unknown_name(target))
        else:
            address = target
        ctx = self._services.get(address)
        if ctx is None:
            raise NoSuchService(format_address(address))
        return ctx

    def deliver_answer(self, destination: int, session: int, result: outcome.Outcome[Any]) -> None:
        """Hand an answer straight to the waiting caller, never through a mailbox."""
        ctx = self._services.get(destination)
        if ctx is None:
            self.late_replies += 1
            logger.debug(
                "dropped an answer for session %d of vanished %s",
                session,
                format_address(destination),
            )
            return
        ctx.resolve_session(session, result)

    # --- names ----------------------------------------------------------------------

    def register(self, name: str, address: int) -> None:
        """Give the live service at ``address`` the node-local name ``name`` (``.name``)."""
        _check_local_name(name)
        owner = self._names.get(name)
        if owner is not None and owner != address:
            raise ServiceNameError(f"name {name!r} already belongs to {format_address(owner)}")
        ctx = self.resolve(address)
        self._names[name] = address
        ctx.names.add(name)

    def unregister(self, name: str) -> None:
        address = self._names.pop(name, None)
        if address is not None and address in self._services:
            self._services[address].names.discard(name)

    def lookup(self, name: str) -> Address | None:
        """The address registered as ``name``, or None."""
        address = self._names.get(name)
        return None if address is None else Address(address)

    def services(self) -> list[Address]:
        """Addresses of every live service, oldest first."""
        return [Address(a) for a in self._services]

    def context_of(self, address: int) -> ServiceContext | None:
        return self._services.get(address)

    # --- lifetimes ------------------------------------------------------------------

    async def _boot(self) -> None:
        address = await self.newservice(_System)
        self._system = self._services[address]

    async def _supervise(
        self,
        cls: type[Service],
        args: tuple[Any, ...],
        policy: RestartPolicy,
        task_status: trio.TaskStatus[Address],
    ) -> None:
        recent: deque[float] = deque()
        status: trio.TaskStatus[Address] = task_status
        while True:
            try:
                abnormal = await self._lifetime(cls, args, task_status=status)
            except ServiceStartError:
                if status is task_status:
                    raise
                logger.exception("restart of %s failed", service_key(cls))
                abnormal = True
            status = trio.TASK_STATUS_IGNORED
            if self._stopping or not policy.wants_restart(abnormal):
                return
            if not policy.allow_restart(recent, trio.current_time()):
                logger.error(
                    "giving up on %s: more than %d restarts within %gs",
                    service_key(cls),
                    policy.max_restarts,
                    policy.period,
                )
                return
            logger.warning("restarting %s (%s policy)", service_key(cls), policy.mode)

    async def _lifetime(
        self,
        cls: type[Service],
        args: tuple[Any, ...],
        task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
    ) -> bool:
        """Run one service instance from ``init`` to its end; True if it ended abnormally."""
        ctx = self._create(cls)
        current_service.set(ctx)
        current_address.set(ctx.label)
        running = False
        try:
            async with trio.open_nursery() as nursery:
                ctx.nursery = nursery
                self._services[ctx.address] = ctx
                await ctx.instance.init(*args)
                ctx.dispatcher.start()
                running = True
                task_status.started(Address(ctx.address))
        except BaseExceptionGroup as group:
            cancelled, errors = group.split(trio.Cancelled)
            if errors is None:
                raise
            error = _first_error(errors)
            if not running:
                raise ServiceStartError(ctx.label, type(error).__name__, str(error)) from error
            ctx.exit_reason = f"crashed: {type(error).__name__}: {error}"
            logger.error("%s crashed", ctx.label, exc_info=error)
        finally:
            with trio.CancelScope(shield=True):
                await self._retire(ctx, run_exit_hook=running)
        if not running:
            raise ServiceStartError(ctx.label, "ServiceExited", f"{ctx.exit_reason} during init")
        return ctx.exit_reason not in ("exited", "node shutting down")

    def _create(self, cls: type[Service]) -> ServiceContext:
        if self._last_local >= MAX_LOCAL:
            raise ServiceStartError(
                cls.__qualname__, "AddressError", "node has used every local address"
            )
        self._last_local += 1
        instance = cls()
        ctx = ServiceContext(self, Address.make(self.id, self._last_local), instance)
        ctx.dispatcher = Dispatcher(ctx)
        instance._ctx = ctx
        return ctx

    async def _retire(self, ctx: ServiceContext, run_exit_hook: bool) -> None:
        reason = ctx.exit_reason = ctx.exit_reason or "exited"
        ctx.close(reason)
        for name in list(ctx.names):
            self.unregister(name)
        self.multicast.forget(ctx)
        for key, slot in list(self._uniques.items()):
            if slot.address == ctx.address:
                del self._uniques[key]
        if run_exit_hook:
            with trio.move_on_after(EXIT_HOOK_TIMEOUT) as scope:
                try:
                    await ctx.instance.on_exit()
                except Exception:
                    logger.exception("%s: on_exit raised", ctx.label)
            if scope.cancelled_caught:
                logger.error("%s: on_exit did not finish within %gs", ctx.label, EXIT_HOOK_TIMEOUT)
        self._services.pop(ctx.address, None)
        logger.debug("%s %s", ctx.label, reason)
        ctx.exited.set()

    def _caller(self) -> ServiceContext:
        return current_service.get() or self._system


class _System(Service):
    """The node's own service: the source of calls made from outside any service."""


class _UniqueSlot:
    __slots__ = ("ready", "address", "error")

    def __init__(self) -> None:
        self.ready = trio.Event()
        self.address: Address = Address(0)
        self.error: BaseException | None = None


def _first_error(group: BaseExceptionGroup) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _check_local_name(name: str) -> None:
    if (
        len(name) < 2
        or not name.startswith(".")
        or not name[1:].replace("_", "").replace("-", "").isalnum()
    ):
        raise ServiceNameError(
            f"node-local names look like '.name' (letters, digits, '_' and '-'), not {name!r}"
        )


def _why_unknown_name(name: str) -> str:
    if name.startswith("."):
        return "no service is registered under this name"
    return "cluster-wide names need a cluster link, and this node has none configured"
