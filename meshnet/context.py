"""The runtime state of one running service; ``Service`` methods delegate here."""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

import outcome
import trio
from trio.lowlevel import (
    Abort,
    Task,
    checkpoint,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from meshnet import codec
from meshnet.address import Address, format_address
from meshnet.base import BaseService
from meshnet.errors import (
    CallError,
    CallTimeout,
    ResponseError,
    ServiceExited,
    UnknownCommand,
    UnknownKind,
)
from meshnet.mailbox import Mailbox
from meshnet.message import CHANNEL_DELETED, POSTABLE_KINDS, REQUEST, Message
from meshnet.stepper import drive
from meshnet.timers import UNSCHEDULED, Timer, TimerWheel

if TYPE_CHECKING:
    from meshnet.dispatch import Dispatcher


class _NotHere:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_HERE"


NOT_HERE: Any = _NotHere()
"""What ``Dispatcher.run_here`` returns when the message must be queued instead."""

logger = logging.getLogger(__name__)

current_service: contextvars.ContextVar[ServiceContext | None] = contextvars.ContextVar(
    "meshnet_current_service", default=None
)
"""The service whose task is running (None outside services)."""


class _NodeDefault:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NODE_DEFAULT"


NODE_DEFAULT: Any = _NodeDefault()
"""Timeout marker: use the node's ``call_timeout``."""

DEFAULT_CALL_TIMEOUT = 30.0
"""Seconds a call waits (for room in a full mailbox, then for its answer) unless the call
or the node says otherwise; ``None`` means no limit."""

MAX_SESSION = 0x7FFFFFFF
"""Largest session id; the ids of a service's calls wrap around to 1 after it."""


class Inbox(Protocol):
    """Where messages for a service go: its ``Mailbox``, or a link to its node."""

    def try_put(self, message: Message) -> bool:
        """Queue ``message`` if there is room; False if the sender must wait for room."""
        ...

    async def wait_for_room(self, message: Message) -> None:
        """Wait until ``message`` is taken in (after ``try_put`` returned False)."""
        ...

    async def put(self, message: Message) -> None:
        """``try_put``, then ``wait_for_room`` if needed."""
        ...


class Destination(Protocol):
    """A service messages can be sent to, on this node or another."""

    @property
    def mailbox(self) -> Inbox:
        """Its inbox."""
        ...


class Runtime(Protocol):
    """What a running service needs of its node."""

    strict_codec: bool
    call_timeout: float | None
    timers: TimerWheel
    observer: object | None
    """Set while the node is observed (``meshnet.observe.Observer``): then services also
    count what they send and time some handlers."""

    def resolve(self, target: int | str) -> Destination:
        """The service ``target`` names; ``NoSuchService`` if there is none."""
        ...

    def deliver_answer(
        self, source: int, destination: int, session: int, result: outcome.Outcome[Any]
    ) -> None:
        """Queue the answer ``source`` gives to ``session`` of the service at ``destination``."""
        ...


Subscription = tuple[Callable[..., Awaitable[Any]], Callable[[int], Awaitable[Any]] | None]
"""A channel's publication callback and its optional deletion callback."""


class ServiceStats:
    """Counters a service keeps about itself.

    ``handled``, ``failed``, ``late_replies`` and ``call_errors`` are always counted; the
    others only while the node is observed (``Node.observe``, for the metrics): ``sent``,
    handler latency (``latency``: counts by ``int(microseconds).bit_length()``) of every
    handler of a quiet service and of one in ``TIMED_EVERY`` of a busy one (see
    ``timed``), and ``cpu``, the CPU seconds the node's sampler saw the service run.
    """

    __slots__ = (
        "handled",
        "failed",
        "late_replies",
        "call_errors",
        "sent",
        "latency",
        "latency_sum",
        "last_timed",
        "cpu",
    )

    def __init__(self) -> None:
        self.handled = 0
        self.failed = 0
        self.late_replies = 0
        self.call_errors: dict[str, int] | None = None
        """Calls of this service that raised, by the error's class name (None: none yet)."""
        self.sent = 0
        self.latency: list[int] | None = None
        self.latency_sum = 0.0
        self.last_timed = 0.0
        self.cpu = 0.0

    def count_call_error(self, exc: CallError) -> None:
        """One of the service's calls raised ``exc``."""
        if self.call_errors is None:
            self.call_errors = {}
        kind = type(exc).__name__
        self.call_errors[kind] = self.call_errors.get(kind, 0) + 1

    def timed(self, started: float) -> int:
        """A handler that started at ``perf_counter()`` ``started`` has finished; return
        in how many handlers to time the next one: the next one itself if the service is
        quiet (the last timed handler ended ``QUIET_GAP`` ago or more), else one in
        ``TIMED_EVERY``. So a quiet service has every handler timed, a busy one a sample."""
        now = perf_counter()
        elapsed = now - started
        if self.latency is None:
            self.latency = [0] * LATENCY_SLOTS
        self.latency[int(elapsed * 1e6).bit_length()] += 1
        self.latency_sum += elapsed
        quiet = now - self.last_timed >= QUIET_GAP
        self.last_timed = now
        return 1 if quiet else TIMED_EVERY


TIMED_EVERY = 64
"""While the node is observed, a busy service's workers time one handler in this many
(reading the clock twice for every one would cost a local send several percent)."""
QUIET_GAP = 1.0
"""Seconds between two timed handlers from which a service counts as quiet. Long enough
that a gate's thousand agents, each handling a message every few tens of milliseconds,
count as busy: timing every handler of each would cost the gate's echo about 4 %."""


LATENCY_SLOTS = 64
"""Length of ``ServiceStats.latency``: enough bit lengths for any duration in microseconds."""


class ServiceContext:
    """Mailbox, sessions and tasks of one service instance."""

    __slots__ = (
        "runtime",
        "address",
        "label",
        "instance",
        "mailbox",
        "nursery",
        "base_context",
        "names",
        "pending",
        "open_requests",
        "subscriptions",
        "stepped",
        "handling",
        "stats",
        "exit_reason",
        "exited",
        "dispatcher",
        "_guests",
        "_guests_gone",
        "_waiting",
        "_last_session",
    )

    def __init__(self, runtime: Runtime, address: Address, instance: BaseService) -> None:
        cls = type(instance)
        self.runtime = runtime
        self.address = address
        self.label = str(address)
        self.instance = instance
        self.mailbox = Mailbox(
            self.label, cls.mailbox_size, cls.mailbox_policy, cls.mailbox_warning, self._answered
        )
        self.nursery: trio.Nursery
        self.base_context: contextvars.Context
        """The context each handler starts from a copy of."""
        self.names: set[str] = set()
        self.pending: dict[int, PendingCall] = {}
        self.open_requests: set[Message] = set()
        """Calls still owed an answer: handlers that suspended, responders not yet used."""
        self.subscriptions: dict[int, Subscription] = {}
        self.stepped: set[Task] = set()
        """The service's tasks that run through ``drive``: workers and forked tasks."""
        self.handling: dict[Task, Message] = {}
        """The message each worker's handler is answering (what ``response()`` takes)."""
        self.stats = ServiceStats()
        self.exit_reason: str | None = None
        self.exited = trio.Event()
        self.dispatcher: Dispatcher
        """Runs the service's handlers (set once ``init`` returned)."""
        self._guests: set[trio.CancelScope] = set()
        """Scopes of other tasks finishing a handler of this service (``Guest``)."""
        self._guests_gone: trio.Event | None = None
        self._waiting: dict[object, Task] = {}
        self._last_session = 0

    # --- outgoing -------------------------------------------------------------------

    async def call(
        self, target: int | str, name: str, args: tuple[Any, ...], timeout: float | None
    ) -> Any:
        """Run command ``name`` on ``target`` and return its answer. ``timeout`` (or
        ``NODE_DEFAULT``) covers the wait for room in a full mailbox and for the answer."""
        task = current_task()
        if cancelled(task):
            await checkpoint()
        runtime = self.runtime
        if timeout is NODE_DEFAULT:
            timeout = runtime.call_timeout
        handled = self.handling.get(task)
        if handled is not None and handled.deadline is not None:
            timeout = _within(handled.deadline - runtime.timers.now(), timeout, target)
        try:  # free unless it raises (Python 3.11's exception tables)
            destination = runtime.resolve(target)
            if runtime.strict_codec:
                args = codec.roundtrip_args(args)
            if runtime.observer is not None:
                self.stats.sent += 1
            pending = self.pending
            session = self._last_session + 1
            if session > MAX_SESSION or session in pending:
                session = self._free_session()
            self._last_session = session
            call = pending[session] = PendingCall(self, session, task, target, timeout)
            message = Message(REQUEST, self.address, session, name, args)
            mailbox = destination.mailbox
            try:
                if not mailbox.try_put(message):
                    deadline = None if timeout is None else runtime.timers.now() + timeout
                    await call.wait_for_room(mailbox, message, deadline)
                    if call.result is not None:  # answered while we waited to be admitted
                        return call.result.unwrap()
                    if deadline is not None:
                        runtime.timers.schedule(call, deadline)
                elif timeout is not None:
                    runtime.timers.schedule_after(call, timeout)
            except BaseException:
                pending.pop(session, None)
                raise
            return await wait_task_rescheduled(call.abort)
        except CallError as exc:
            self.stats.count_call_error(exc)
            raise

    async def send(self, target: int | str, name: str, args: tuple[Any, ...]) -> None:
        """Queue command ``name`` on ``target``; nobody waits for an answer."""
        if cancelled(current_task()):
            await checkpoint()
        destination, args = self._portable(target, args)
        message = Message(REQUEST, self.address, 0, name, args)
        mailbox = destination.mailbox
        if not mailbox.try_put(message):
            await mailbox.wait_for_room(message)

    async def post(self, target: int | str, kind: str, args: tuple[Any, ...]) -> None:
        """Queue a ``client`` or ``text`` message for the target's ``on_<kind>``."""
        if kind not in POSTABLE_KINDS:
            raise UnknownKind(
                f"no service handles {kind!r} messages; post takes {sorted(POSTABLE_KINDS)}"
            )
        if cancelled(current_task()):
            await checkpoint()
        destination, args = self._portable(target, args)
        await destination.mailbox.put(Message(kind, self.address, 0, None, args))

    def post_here(self, target: int | str, kind: str, args: tuple[Any, ...]) -> Any:
        """``post`` without waiting, for a gate's reactor: a service on this node whose
        holder is parked runs the handler in the calling task (``Dispatcher.run_here``),
        else the message is queued. Returns None when done, a ``Guest`` to await if the
        handler suspended, or False when the message was not taken: the target is on
        another node, or its mailbox is full (then ``post`` it). Raises ``CallError``s
        as ``post`` does. Only a message taken counts as sent: ``post`` counts the rest."""
        destination, args = self._portable(target, args, count=False)
        if not isinstance(destination, ServiceContext):
            return False
        message = Message(kind, self.address, 0, None, args)
        taken = NOT_HERE
        if hasattr(destination, "dispatcher"):
            taken = destination.dispatcher.run_here(message)
        if taken is NOT_HERE:
            if not destination.mailbox.try_put(message):
                return False
            taken = None
        if self.runtime.observer is not None:
            self.stats.sent += 1
        return taken

    async def redirect(self, target: int | str, name: str, args: tuple[Any, ...]) -> None:
        """Pass the current message on to ``target``, which then answers its caller."""
        message = self._current_message("redirect")
        destination, args = self._portable(target, args)
        forwarded = Message(message.kind, message.source, message.session, name, args)
        await destination.mailbox.put(forwarded)
        message.claimed = True
        self.open_requests.discard(message)

    def _portable(
        self, target: int | str, args: tuple[Any, ...], count: bool = True
    ) -> tuple[Destination, tuple[Any, ...]]:
        """The destination, and the arguments as they would reach it from another node;
        counts the message as sent while the node is observed (unless not to ``count``)."""
        runtime = self.runtime
        destination = runtime.resolve(target)
        if runtime.strict_codec:
            args = codec.roundtrip_args(args)
        if count and runtime.observer is not None:
            self.stats.sent += 1
        return destination, args

    def _answered(self, session: int, result: outcome.Outcome[Any]) -> Task | None:
        """The mailbox's turn came for an answer: hand it to the caller waiting for it and
        return that task if the runtime steps it (it then holds the mailbox)."""
        call = self.pending.pop(session, None)
        if call is None:
            self.stats.late_replies += 1
            logger.debug("%s dropped a late answer for session %d", self.label, session)
            return None
        task = call.task
        if call.admitting:
            call.result = result
        else:
            self.runtime.timers.cancel(call)
            reschedule(task, result)
        return task if task in self.stepped else None

    def _free_session(self) -> int:
        """The next session id after the last one that no outstanding call holds, wrapping
        to 1 after ``MAX_SESSION`` (``call`` takes the last one + 1 when that is free)."""
        session = self._last_session
        while True:
            session = session + 1 if session < MAX_SESSION else 1
            if session not in self.pending:
                return session

    # --- answering ------------------------------------------------------------------

    def answer(self, message: Message, value: Any) -> None:
        """The handler of ``message`` returned ``value``."""
        self.stats.handled += 1
        if message.session and not message.claimed:
            self.open_requests.discard(message)
            self._deliver(message, value)

    def fail(self, message: Message, exc: BaseException) -> None:
        """The handler of ``message`` raised ``exc``: log it and tell the caller."""
        self.stats.failed += 1
        logger.error("%s failed handling %s", self.label, message.describe(), exc_info=exc)
        self._settle_with_error(message, exc)

    def refuse(self, message: Message, exc: UnknownCommand) -> None:
        """``message`` names a command or kind the service does not handle: one warning."""
        self.stats.failed += 1
        logger.warning("%s refused %s: %s", self.label, message.describe(), exc.remote_message)
        self._settle_with_error(message, exc)

    def owe(self, message: Message) -> None:
        """Keep ``message`` among the calls the service's end answers, unless it was sent (no
        caller) or a responder or a redirect has taken it over; ``answer`` or ``fail`` settles
        it when the handler ends."""
        if message.session and not message.claimed:
            self.open_requests.add(message)

    def take_responder(self) -> Responder:
        """The current message's deferred responder (``Service.response``)."""
        message = self._current_message("response")
        if not message.session:
            raise ResponseError(
                f"{message.describe()} was sent, not called: there is no caller to answer"
            )
        if message.claimed:
            raise ResponseError(f"{message.describe()} already has a responder")
        message.claimed = True
        self.open_requests.add(message)
        return Responder(self, message)

    def _current_message(self, what: str) -> Message:
        message = self.handling.get(current_task())
        if message is None:
            raise ResponseError(
                f"{what}() works only in the task of a message handler, not in init or in "
                "a task the handler started"
            )
        return message

    def _settle_with_error(self, message: Message, exc: BaseException) -> None:
        if message.claimed:
            return  # a responder or a redirect answers the caller, as after a return
        self.open_requests.discard(message)
        if message.session:
            self._deliver_error(message, exc)

    def _deliver(self, message: Message, value: Any) -> None:
        if self.runtime.strict_codec:
            try:
                value = codec.roundtrip(value)
            except codec.CodecError as exc:
                logger.error(
                    "%s answered %s with a non-portable value", self.label, message.describe()
                )
                self._deliver_error(message, exc)
                return
        self.runtime.deliver_answer(
            self.address, message.source, message.session, outcome.Value(value)
        )

    def _deliver_error(self, message: Message, exc: BaseException) -> None:
        error = _call_error(self.label, exc)
        self.runtime.deliver_answer(
            self.address, message.source, message.session, outcome.Error(error)
        )

    # --- tasks ----------------------------------------------------------------------

    def fork(
        self, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> trio.CancelScope:
        """Run ``function(*args)`` in a task of the service (``Service.fork``)."""
        scope = trio.CancelScope()
        self.nursery.start_soon(
            self._run_forked, scope, function, args, name=getattr(function, "__qualname__", None)
        )
        return scope

    async def wait(self, token: object) -> None:
        """Park this task until ``wakeup(token)`` (``Service.wait``)."""
        if token in self._waiting:
            raise ResponseError(f"a task of {self.label} is already waiting on {token!r}")
        self._waiting[token] = current_task()

        def abort(_: object) -> Abort:
            self._waiting.pop(token, None)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def wakeup(self, token: object) -> bool:
        """Resume the task parked on ``token``; False if none is (``Service.wakeup``)."""
        task = self._waiting.pop(token, None)
        if task is None:
            return False
        reschedule(task, outcome.Value(None))
        return True

    async def multicast_handler(self, message: Message) -> None:
        """A publication on (or the deletion of) a channel this service subscribed to."""
        channel, args = message.args
        if message.name == CHANNEL_DELETED:
            subscription = self.subscriptions.pop(channel, None)
            if subscription is not None and subscription[1] is not None:
                await subscription[1](channel)
            return
        subscription = self.subscriptions.get(channel)
        if subscription is not None:  # unsubscribed while the message was queued
            await subscription[0](channel, message.source, *args)

    async def _run_forked(
        self,
        scope: trio.CancelScope,
        function: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> None:
        task = current_task()
        context = contextvars.copy_context()
        self.stepped.add(task)
        try:
            with scope:
                coro = function(*args)
                try:
                    trap = context.run(coro.send, None)  # type: ignore[attr-defined]
                except StopIteration:
                    return
                await drive(coro, trap, context, self.mailbox, task)  # type: ignore[arg-type]
        finally:
            self.stepped.discard(task)

    @contextmanager
    def hosting(self, scope: trio.CancelScope) -> Iterator[None]:
        """``scope``, of a task that is not the service's, runs one of its handlers
        meanwhile (``dispatch.Guest``): it is the service's to cancel, and only its."""
        scope.shield = True
        self._guests.add(scope)
        if self.mailbox.stopping:
            scope.cancel()
        try:
            yield
        finally:
            self._guests.discard(scope)
            if not self._guests and self._guests_gone is not None:
                self._guests_gone.set()

    async def guests_finished(self) -> None:
        """Wait until no other task runs a handler of this service."""
        while self._guests:
            self._guests_gone = trio.Event()
            await self._guests_gone.wait()

    # --- the end --------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Cancel every task of the service; the first reason given is the one reported.
        No message starts from then on."""
        if self.exit_reason is None:
            self.exit_reason = reason
        self.mailbox.stopping = True
        self.nursery.cancel_scope.cancel()
        for scope in self._guests:
            scope.cancel()

    def close(self, reason: str) -> None:
        """Refuse new messages and answer every caller still owed an answer."""
        error = ServiceExited(self.label, reason)
        leftovers = self.mailbox.close(reason)
        owed = [*self.open_requests, *(m for m in leftovers if m.session)]
        self.open_requests.clear()
        for message in owed:
            self.runtime.deliver_answer(
                self.address, message.source, message.session, outcome.Error(error)
            )
        dropped = sum(1 for m in leftovers if not m.session)
        if dropped:
            logger.warning("%s exited with %d sent messages unhandled", self.label, dropped)


class PendingCall(Timer):
    """One call a service is waiting on: who waits, and its deadline's timer."""

    __slots__ = ("_ctx", "session", "task", "target", "timeout", "admitting", "result")

    def __init__(
        self,
        ctx: ServiceContext,
        session: int,
        task: Task,
        target: int | str,
        timeout: float | None,
    ) -> None:
        self._ctx = ctx
        self._tick = UNSCHEDULED
        self.session = session
        self.task = task
        self.target = target
        self.timeout = timeout
        self.admitting = False
        """True while the caller waits for room in a full mailbox (not yet for the answer)."""
        self.result: outcome.Outcome[Any] | None = None
        """An answer that came while ``admitting``."""

    async def wait_for_room(self, mailbox: Inbox, message: Message, deadline: float | None) -> None:
        """Wait until ``message`` is admitted, within the call's deadline."""
        self.admitting = True
        scope = trio.CancelScope(deadline=math.inf if deadline is None else deadline)
        with scope:
            await mailbox.wait_for_room(message)
        self.admitting = False
        if scope.cancelled_caught:
            raise self._timed_out()

    def abort(self, _: object) -> Abort:
        """trio cancelled the caller's wait for the answer."""
        if self._ctx.pending.pop(self.session, None) is not None:
            self._ctx.runtime.timers.cancel(self)
        return Abort.SUCCEEDED

    def fire(self) -> None:
        """The deadline passed while the caller waited for the answer."""
        if self._ctx.pending.pop(self.session, None) is self:
            reschedule(self.task, outcome.Error(self._timed_out()))

    def _timed_out(self) -> CallTimeout:
        target = self.target
        shown = target if isinstance(target, str) else format_address(target)
        return CallTimeout(shown, self.timeout or 0.0)


class Responder:
    """Answers one call later, exactly once (skynet's ``skynet.response()``)."""

    __slots__ = ("_ctx", "_message")

    def __init__(self, ctx: ServiceContext, message: Message) -> None:
        self._ctx = ctx
        self._message = message

    @property
    def answered(self) -> bool:
        """True once the caller was answered (by this responder or by the service's end)."""
        return self._message not in self._ctx.open_requests

    def __call__(self, value: Any = None) -> None:
        """Answer the caller with ``value``."""
        self._take()
        self._ctx._deliver(self._message, value)

    def error(self, exc: BaseException) -> None:
        """Answer the caller with a CallError describing ``exc``."""
        self._take()
        self._ctx._deliver_error(self._message, exc)

    def _take(self) -> None:
        if self.answered:
            raise ResponseError(f"{self._message.describe()} was already answered")
        self._ctx.open_requests.discard(self._message)


def _within(remaining: float, timeout: float | None, target: int | str) -> float:
    """The timeout of a call made while handling a call whose caller gives up in
    ``remaining`` seconds: no later than that (``CallTimeout`` if it is past)."""
    if remaining <= 0:
        shown = target if isinstance(target, str) else format_address(target)
        raise CallTimeout(shown, 0.0)
    return remaining if timeout is None else min(timeout, remaining)


def cancelled(task: Task) -> bool:
    """True if ``task`` is inside a cancelled scope (then any checkpoint raises
    ``Cancelled``). ``checkpoint_if_cancelled`` tells the same, but being a coroutine it
    costs more than a whole local send; this is the test it makes, without the await."""
    return task._cancel_status.effectively_cancelled  # type: ignore[attr-defined,no-any-return]


def _call_error(label: str, exc: BaseException) -> CallError:
    if isinstance(exc, CallError) and exc.target == label:
        return exc
    return CallError(label, type(exc).__name__, str(exc))
