"""A node: one process's services, their addresses and names, and their lifetimes."""

from __future__ import annotations

import contextvars
import logging
import secrets
from collections import Counter, deque
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Protocol

import outcome
import trio

from meshnet.address import (
    HANDLE_BITS,
    LOCAL_BITS,
    MAX_NODE,
    Address,
    AddressError,
    LocalIds,
    format_address,
)
from meshnet.base import BaseService
from meshnet.context import (
    DEFAULT_CALL_TIMEOUT,
    NODE_DEFAULT,
    Destination,
    ServiceContext,
    current_service,
)
from meshnet.dispatch import Dispatcher
from meshnet.errors import (
    NoSuchService,
    ProtectedServiceError,
    ServiceNameError,
    ServiceStartError,
    first_error,
)
from meshnet.frames import runs_services
from meshnet.gcpolicy import young_threshold
from meshnet.loader import load_service_class, service_key
from meshnet.log import current_address, install_record_factory
from meshnet.message import TEXT
from meshnet.multicast import MulticastHub
from meshnet.observe import Observer
from meshnet.supervision import RestartPolicy
from meshnet.timers import TimerWheel
from meshnet.watchdog import Watchdog

logger = logging.getLogger(__name__)

EXIT_HOOK_TIMEOUT = 5.0
"""Seconds a service's ``on_exit`` may run before it is cut short."""
PROCESS_EXITS = (KeyboardInterrupt, SystemExit)
"""Raised in a handler, these end the node (after answering the service's callers)."""


@asynccontextmanager
async def open_node(
    node_id: int = 1,
    name: str = "node",
    *,
    strict_codec: bool = False,
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    local_id_bits: int = LOCAL_BITS,
    slow_handler: float | None = None,
    gc_threshold: int | None = None,
) -> AsyncIterator[Node]:
    """Run a node for the duration of the ``async with`` block, then shut it down cleanly.

    ``call_timeout`` is the default deadline of every call (None: calls wait forever
    unless they give their own); ``local_id_bits`` narrows the local address space, for
    tests of address reuse; ``slow_handler`` seconds turns on the watchdog that logs a
    handler holding the event loop that long (``meshnet.watchdog``; None: off);
    ``gc_threshold`` runs a young garbage collection every that many allocations while
    the node runs (``meshnet.gcpolicy``; None: the interpreter's setting). A
    ``KeyboardInterrupt`` or ``SystemExit`` raised by a handler stops the node and
    propagates from here.
    """
    node = Node(
        node_id,
        name,
        strict_codec=strict_codec,
        call_timeout=call_timeout,
        local_id_bits=local_id_bits,
    )
    node.watchdog = None if slow_handler is None else Watchdog(slow_handler)
    install_record_factory()
    current_address.set(str(node.address))
    try:
        with young_threshold(gc_threshold):
            async with trio.open_nursery() as nursery:
                node._nursery = nursery
                await node._boot()
                try:
                    yield node
                finally:
                    with trio.CancelScope(shield=True):
                        await node.shutdown()
    except BaseExceptionGroup as group:
        process_exit = _process_exit(group)
        if process_exit is None:
            raise
        raise process_exit from None


class Node:
    """The registry and supervisor of every service in this process. Create with ``open_node``."""

    def __init__(
        self,
        node_id: int,
        name: str,
        *,
        strict_codec: bool,
        call_timeout: float | None,
        local_id_bits: int = LOCAL_BITS,
    ) -> None:
        self.id = node_id
        self.name = name
        self.strict_codec = strict_codec
        self.call_timeout = call_timeout
        self.incarnation = secrets.randbits(32) or 1
        """Random per start: addresses from this node's earlier lives reach nothing."""
        self.address = Address.make(node_id, 0, self.incarnation)
        self.late_replies = 0
        """Answers that arrived for services no longer alive."""
        self.restarts: Counter[str] = Counter()
        """Restarts by a restart policy, by ``package.module:Class``."""
        self.observer: Observer | None = None
        """Set by ``observe``: what the node counts only for its metrics."""
        self.watchdog: Watchdog | None = None
        """The slow-handler watchdog, if ``open_node`` was given a threshold."""
        self.timers = TimerWheel()
        self.remote: Remote | None = None
        """Services on other nodes, once a cluster (``meshnet.cluster``) is attached."""
        self._aliases: dict[int, Destination] = {}
        self.multicast = MulticastHub(self.context_of, node_id, self.incarnation)
        self._local_ids = LocalIds(local_id_bits)
        self._services: dict[int, ServiceContext] = {}
        self._names: dict[str, int] = {}
        self._uniques: dict[str, _UniqueSlot] = {}
        self._unique_started = trio.Event()
        self._start_args: dict[int, tuple[Any, ...]] = {}
        self._stopping = False
        self._nursery: trio.Nursery
        self._system: ServiceContext

    # --- starting and stopping services ---------------------------------------------

    async def newservice(
        self, service: str | type[BaseService], *args: Any, restart: RestartPolicy | None = None
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

    async def uniqueservice(
        self, service: str | type[BaseService], *args: Any, cluster: bool = False
    ) -> Address:
        """Start the node's one instance of ``service``, or return it if it already runs.

        Concurrent callers all get the instance the first of them started; if that first
        start is cancelled, the next caller in line starts it instead. With ``cluster``,
        one instance in the whole cluster, on the node the cluster's discovery picks.
        """
        cls = load_service_class(service)
        key = service_key(cls)
        if cluster:
            if self.remote is None:
                raise NoSuchService(key, "uniqueservice(cluster=True) needs a cluster")
            return await self.remote.uniqueservice(key, args)
        while True:
            slot = self._uniques.get(key)
            if slot is None:
                return await self._start_unique(key, cls, args)
            await slot.ready.wait()
            if slot.error is not None:
                raise slot.error
            if not slot.abandoned:
                return slot.address

    async def queryservice(self, service: str | type[BaseService]) -> Address:
        """Wait until the unique instance of ``service`` runs, and return its address."""
        key = service_key(load_service_class(service))
        while True:
            slot = self._uniques.get(key)
            if slot is not None:
                await slot.ready.wait()
                if slot.error is None and not slot.abandoned:
                    return slot.address
            await self._unique_started.wait()

    async def kill(self, target: int | str) -> None:
        """Stop a service now, without running the handlers of messages still queued;
        every caller it still owed an answer gets ``ServiceExited``."""
        await self._stop(target, "killed")

    async def exit_service(self, target: int | str) -> None:
        """Make a service end now as if it had called its own ``exit()``: as ``kill``, but
        a restart policy sees a normal end (the debug console's ``exit``)."""
        await self._stop(target, "exited")

    async def shutdown(self) -> None:
        """Stop every service, newest first, running their ``on_exit`` hooks; then the node."""
        self._stopping = True
        while self._services:
            ctx = next(reversed(self._services.values()))
            ctx.stop("node shutting down")
            await ctx.exited.wait()
        if self.observer is not None:
            self.observer.stop()
        self._nursery.cancel_scope.cancel()

    def observe(self) -> Observer:
        """Start counting what only the metrics need (``meshnet.observe``), from now until
        the node stops; return the observer. Call it in the node's trio thread; calling
        it again returns the same observer."""
        if self.observer is None:
            self.observer = Observer()
            self.observer.start()
        return self.observer

    # --- messages -------------------------------------------------------------------

    def call(
        self, target: int | str, name: str, *args: Any, timeout: float | None = NODE_DEFAULT
    ) -> Coroutine[Any, Any, Any]:
        """``await`` it: call a command from outside any service (or as the current
        service); see ``Service.call``."""
        return self._caller().call(target, name, args, timeout)

    def send(self, target: int | str, name: str, *args: Any) -> Coroutine[Any, Any, None]:
        """``await`` it: send a command that wants no answer."""
        return self._caller().send(target, name, args)

    async def post(self, target: int | str, kind: str, *args: Any) -> None:
        """Deliver a message of another kind (``client``, ``text``)."""
        await self._caller().post(target, kind, args)

    async def text(self, target: int | str, line: str) -> None:
        """Send a line of text (dispatched to the target's ``on_text``)."""
        await self.post(target, TEXT, line)

    def resolve(self, target: int | str) -> Destination:
        """The service ``target`` refers to: an address, a ``.name``, or (with a cluster) an
        address on another node, ``node@name`` or a cluster-wide name.

        An address without an incarnation (``Address.parse(":0100000a")``) means this
        node's current one."""
        ctx = self._services.get(target)  # type: ignore[arg-type]
        if ctx is not None:
            return ctx
        if isinstance(target, str):
            address = self._names.get(target)
            if address is not None:
                return self._services[address]
            if target.startswith(".") or self.remote is None:
                raise NoSuchService(target, _why_unknown_name(target))
            return self.remote.resolve(target)
        if not isinstance(target, int):
            raise NoSuchService(repr(target), "an address is an int (or a name, a str)")
        if (target >> LOCAL_BITS) & MAX_NODE != self.id and self.remote is not None:
            return self.remote.resolve(target)
        alias = self._aliases.get(target)
        return alias if alias is not None else self.local(target)

    def alias(self, destination: Destination) -> Address:
        """A new local address that stands for ``destination`` (a cluster proxy): what is
        sent to it goes there. It lasts as long as the node."""
        local = self._local_ids.take(trio.current_time())
        address = Address.make(self.id, local, self.incarnation)
        self._aliases[address] = destination
        return address

    def local(self, target: int | str) -> ServiceContext:
        """The live service on this node that ``target`` (an address or a ``.name``) is."""
        if isinstance(target, str):
            address = self._names.get(target)
            if address is None:
                raise NoSuchService(target, _why_unknown_name(target))
            return self._services[address]
        ctx = self._services.get(target)
        if ctx is None and not target >> HANDLE_BITS:  # the text form: the current incarnation
            ctx = self._services.get(target | self.incarnation << HANDLE_BITS)
        if ctx is None:
            raise NoSuchService(format_address(target), self._why_unknown_address(target))
        return ctx

    def deliver_answer(
        self, source: int, destination: int, session: int, result: outcome.Outcome[Any]
    ) -> None:
        """Queue ``source``'s answer for the caller at ``destination``, in order with its
        other messages, never waiting."""
        ctx = self._services.get(destination)
        if ctx is None:
            if Address(destination).node != self.id and self.remote is not None:
                self.remote.deliver_answer(source, destination, session, result)
                return
            self.late_replies += 1
            logger.debug(
                "dropped an answer for session %d of vanished %s",
                session,
                format_address(destination),
            )
            return
        ctx.mailbox.put_answer(session, result)

    # --- names ----------------------------------------------------------------------

    def register(self, name: str, address: int) -> None:
        """Give the live service at ``address`` the node-local name ``name`` (``.name``)."""
        _check_local_name(name)
        ctx = self.local(address)
        owner = self._names.get(name)
        if owner is not None and owner != ctx.address:
            raise ServiceNameError(f"name {name!r} already belongs to {format_address(owner)}")
        self._names[name] = ctx.address
        ctx.names.add(name)

    def unregister(self, name: str) -> None:
        """Drop the node-local name ``name`` (no effect if nobody has it)."""
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
        """The runtime state of the live service at ``address``, or None."""
        return self._services.get(address)

    def start_args(self, address: int) -> tuple[Any, ...]:
        """The arguments the live service at ``address`` was started with (its ``init``'s)."""
        return self._start_args[self.local(address).address]

    def unique_services(self) -> dict[str, Address]:
        """The running unique services (``uniqueservice``), by ``package.module:Class``."""
        return {
            key: slot.address
            for key, slot in self._uniques.items()
            if slot.ready.is_set() and slot.address in self._services
        }

    # --- lifetimes ------------------------------------------------------------------

    async def _boot(self) -> None:
        self._nursery.start_soon(self.timers.run)
        if self.watchdog is not None:
            self._nursery.start_soon(self.watchdog.run)
        address = await self.newservice(_System)
        self._system = self._services[address]

    async def _start_unique(
        self, key: str, cls: type[BaseService], args: tuple[Any, ...]
    ) -> Address:
        slot = self._uniques[key] = _UniqueSlot()
        try:
            slot.address = await self.newservice(cls, *args)
        except BaseException as exc:
            del self._uniques[key]
            if _only_cancelled(exc):
                slot.abandoned = True
            elif isinstance(exc, ServiceStartError):
                slot.error = exc
            else:
                slot.error = ServiceStartError(key, type(exc).__name__, str(exc))
            slot.ready.set()
            raise
        slot.ready.set()
        self._unique_started.set()
        self._unique_started = trio.Event()
        return slot.address

    async def _supervise(
        self,
        cls: type[BaseService],
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
            self.restarts[service_key(cls)] += 1

    async def _lifetime(
        self,
        cls: type[BaseService],
        args: tuple[Any, ...],
        task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
    ) -> bool:
        """Run one service instance from ``init`` to its end; True if it ended abnormally."""
        ctx = self._create(cls)
        current_service.set(ctx)
        current_address.set(ctx.label)
        ctx.base_context = contextvars.copy_context()
        running = False
        process_exit: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                ctx.nursery = nursery
                self._services[ctx.address] = ctx
                self._start_args[ctx.address] = args
                await ctx.instance.init(*args)
                ctx.dispatcher = Dispatcher(ctx)
                ctx.dispatcher.start()
                running = True
                task_status.started(Address(ctx.address))
        except BaseExceptionGroup as group:
            _, errors = group.split(trio.Cancelled)
            if errors is None:
                raise
            process_exit = _process_exit(errors)
            error = process_exit or first_error(errors)
            if process_exit is not None:
                ctx.exit_reason = f"{type(error).__name__} raised: the node stops"
            elif not running:
                logger.error("%s (%s) failed to start", ctx.label, service_key(cls), exc_info=error)
                raise ServiceStartError(ctx.label, type(error).__name__, str(error)) from error
            else:
                ctx.exit_reason = f"crashed: {type(error).__name__}: {error}"
                logger.error("%s crashed", ctx.label, exc_info=error)
        finally:
            with trio.CancelScope(shield=True):
                ctx.stop(ctx.exit_reason or "exited")  # a handler run by a gate's task too
                await ctx.guests_finished()
                await self._retire(ctx, run_exit_hook=running)
        if process_exit is not None:
            raise process_exit
        if not running:
            raise ServiceStartError(ctx.label, "ServiceExited", f"{ctx.exit_reason} during init")
        return ctx.exit_reason not in ("exited", "node shutting down")

    def _create(self, cls: type[BaseService]) -> ServiceContext:
        try:
            local = self._local_ids.take(trio.current_time())
        except AddressError as exc:
            raise ServiceStartError(cls.__qualname__, "AddressError", str(exc)) from None
        instance = cls()
        ctx = ServiceContext(self, Address.make(self.id, local, self.incarnation), instance)
        instance._ctx = ctx  # type: ignore[attr-defined]
        instance._node = self  # type: ignore[attr-defined]
        return ctx

    async def _retire(self, ctx: ServiceContext, run_exit_hook: bool) -> None:
        reason = ctx.exit_reason = ctx.exit_reason or "exited"
        ctx.close(reason)
        if self.observer is not None:
            self.observer.service_ended(ctx)
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
        self._start_args.pop(ctx.address, None)
        self._local_ids.free(ctx.address.local, trio.current_time())
        logger.debug("%s %s", ctx.label, reason)
        ctx.exited.set()

    def _caller(self) -> ServiceContext:
        return current_service.get() or self._system

    async def _stop(self, target: int | str, reason: str) -> None:
        ctx = self.local(target)
        if ctx is self._system:
            raise ProtectedServiceError(
                f"{ctx.label} is the node's system service; it stops with the node"
            )
        ctx.stop(reason)
        await ctx.exited.wait()

    def _why_unknown_address(self, address: int) -> str:
        node = Address(address).node
        if node != self.id:
            return f"it is on node {node}, and this node ({self.id}) is in no cluster"
        return "no live service at this address"


class Remote(Protocol):
    """What a cluster gives its node: the services on the other nodes."""

    def resolve(self, target: int | str) -> Destination:
        """The remote service ``target`` (an address of another node, or a name that is
        not node-local) refers to; ``NoSuchService`` or ``NodeDown`` if none can be had."""
        ...

    def deliver_answer(
        self, source: int, destination: int, session: int, result: outcome.Outcome[Any]
    ) -> None:
        """Send ``source``'s answer to the caller at ``destination`` on another node."""
        ...

    async def uniqueservice(self, key: str, args: tuple[Any, ...]) -> Address:
        """The cluster's one instance of the service class ``key`` (``module:Class``)."""
        ...


class _System(BaseService):
    """The node's own service: the source of calls made from outside any service."""


class _UniqueSlot:
    __slots__ = ("ready", "address", "error", "abandoned")

    def __init__(self) -> None:
        self.ready = trio.Event()
        self.address: Address = Address(0)
        self.error: BaseException | None = None
        self.abandoned = False
        """The start was cancelled: whoever waits on it starts the service anew."""


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return isinstance(exc, trio.Cancelled)


def _process_exit(group: BaseExceptionGroup) -> BaseException | None:
    """The KeyboardInterrupt or SystemExit in ``group``, if there is one."""
    matched, _ = group.split(PROCESS_EXITS)
    return None if matched is None else first_error(matched)


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


runs_services(Node._lifetime, "ctx", lambda _: "init")
runs_services(Node._retire, "ctx", lambda _: "on_exit")
