"""The runtime state of one running service; ``Service`` methods delegate here."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import outcome
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from meshnet import codec
from meshnet.address import format_address
from meshnet.errors import CallError, CallTimeout, ResponseError, ServiceExited
from meshnet.mailbox import Mailbox
from meshnet.message import REQUEST, Message

if TYPE_CHECKING:
    from meshnet.dispatch import Dispatcher
    from meshnet.node import Node
    from meshnet.service import Service

logger = logging.getLogger(__name__)

current_service: contextvars.ContextVar[ServiceContext | None] = contextvars.ContextVar(
    "meshnet_current_service", default=None
)
"""The service whose task is running (None outside services)."""

current_message: contextvars.ContextVar[Message | None] = contextvars.ContextVar(
    "meshnet_current_message", default=None
)
"""The message whose handler is running in this task (None in forked tasks)."""

USE_NODE_DEFAULT: Any = object()
"""Timeout marker: use the node's configured ``call_timeout``."""

MAX_SESSION = 0x7FFFFFFF
"""Largest session id; the ids of a service's calls wrap around to 1 after it."""

_RESERVED = None
"""Marks a session whose caller has not parked yet: an early answer is kept, not lost."""
_ABSENT = object()


class ServiceStats:
    """Counters a service keeps about itself."""

    __slots__ = ("handled", "failed", "late_replies")

    def __init__(self) -> None:
        self.handled = 0
        self.failed = 0
        self.late_replies = 0


class ServiceContext:
    """Mailbox, sessions and tasks of one service instance."""

    def __init__(self, node: Node, address: int, instance: Service) -> None:
        cls = type(instance)
        self.node = node
        self.address = address
        self.label = format_address(address)
        self.instance = instance
        self.mailbox = Mailbox(
            self.label, cls.mailbox_size, cls.mailbox_policy, cls.mailbox_warning
        )
        self.nursery: trio.Nursery
        self.dispatcher: Dispatcher
        self.names: set[str] = set()
        self.pending: dict[int, Task | None] = {}
        self.open_requests: set[Message] = set()
        """Calls still owed an answer: handlers that suspended, responders not yet used."""
        self.subscriptions: dict[int, Callable[..., Awaitable[Any]]] = {}
        self.stats = ServiceStats()
        self.exit_reason: str | None = None
        self.exited = trio.Event()
        self._early_answers: dict[int, outcome.Outcome[Any]] = {}
        self._waiting: dict[object, Task] = {}
        self._last_session = 0

    # --- outgoing -------------------------------------------------------------------

    async def call(
        self, target: int | str, name: str, args: tuple[Any, ...], timeout: float | None
    ) -> Any:
        """Run command ``name`` on ``target`` and return its answer (``timeout`` may be
        ``USE_NODE_DEFAULT``)."""
        if timeout is USE_NODE_DEFAULT:
            timeout = self.node.call_timeout
        destination = self.node.resolve(target)
        if self.node.strict_codec:
            args = codec.roundtrip_args(args)
        session = self._new_session()
        pending = self.pending
        pending[session] = _RESERVED
        try:
            await destination.mailbox.put(Message(REQUEST, self.address, session, name, args))
        except BaseException:
            pending.pop(session, None)
            raise
        early = self._early_answers.pop(session, None)
        if early is not None:
            return early.unwrap()
        pending[session] = current_task()

        def abort(_: object) -> Abort:
            pending.pop(session, None)
            return Abort.SUCCEEDED

        if timeout is None:
            return await wait_task_rescheduled(abort)
        with trio.move_on_after(timeout):
            return await wait_task_rescheduled(abort)
        raise CallTimeout(destination.label if isinstance(target, int) else target, timeout)

    async def post(
        self, target: int | str, kind: str, name: str | None, args: tuple[Any, ...]
    ) -> None:
        """Deliver a message that wants no answer."""
        destination = self.node.resolve(target)
        if self.node.strict_codec:
            args = codec.roundtrip_args(args)
        await destination.mailbox.put(Message(kind, self.address, 0, name, args))

    async def redirect(self, target: int | str, name: str, args: tuple[Any, ...]) -> None:
        """Pass the current message on to ``target``, which then answers its caller."""
        message = _current_message_or_fail("redirect")
        destination = self.node.resolve(target)
        if self.node.strict_codec:
            args = codec.roundtrip_args(args)
        forwarded = Message(message.kind, message.source, message.session, name, args)
        await destination.mailbox.put(forwarded)
        message.claimed = True
        self.open_requests.discard(message)

    def resolve_session(self, session: int, result: outcome.Outcome[Any]) -> None:
        """An answer arrived for one of this service's calls."""
        entry = self.pending.pop(session, _ABSENT)
        if entry is _ABSENT:
            self.stats.late_replies += 1
            logger.debug("%s dropped a late answer for session %d", self.label, session)
        elif entry is _RESERVED:
            self._early_answers[session] = result
        else:
            reschedule(entry, result)

    def _new_session(self) -> int:
        """The next session id after the last one, wrapping to 1 after ``MAX_SESSION``,
        skipping any that an outstanding call still holds."""
        session = self._last_session
        while True:
            session = session + 1 if session < MAX_SESSION else 1
            if session not in self.pending:
                self._last_session = session
                return session

    # --- answering ------------------------------------------------------------------

    def answer(self, message: Message, value: Any) -> None:
        """The handler of ``message`` returned ``value``."""
        self.stats.handled += 1
        if message.claimed:
            return
        self.open_requests.discard(message)
        if message.session:
            self._deliver(message, value)

    def fail(self, message: Message, exc: BaseException) -> None:
        """The handler of ``message`` raised ``exc``: log it and tell the caller."""
        self.stats.failed += 1
        logger.error("%s failed handling %s", self.label, message.describe(), exc_info=exc)
        if message.claimed:
            return  # a responder or a redirect answers the caller, as after a return
        self.open_requests.discard(message)
        if message.session:
            self._deliver_error(message, exc)

    def owe(self, message: Message) -> None:
        """Keep ``message`` among the calls the service's end answers, unless it was sent (no
        caller) or a responder or a redirect has taken it over; ``answer`` or ``fail`` settles
        it when the handler ends."""
        if message.session and not message.claimed:
            self.open_requests.add(message)

    def take_responder(self) -> Responder:
        message = _current_message_or_fail("response")
        if not message.session:
            raise ResponseError(
                f"{message.describe()} was sent, not called: there is no caller to answer"
            )
        if message.claimed:
            raise ResponseError(f"{message.describe()} already has a responder")
        message.claimed = True
        self.open_requests.add(message)
        return Responder(self, message)

    def _deliver(self, message: Message, value: Any) -> None:
        if self.node.strict_codec:
            try:
                value = codec.roundtrip(value)
            except codec.CodecError as exc:
                logger.error(
                    "%s answered %s with a non-portable value", self.label, message.describe()
                )
                self._deliver_error(message, exc)
                return
        self.node.deliver_answer(message.source, message.session, outcome.Value(value))

    def _deliver_error(self, message: Message, exc: BaseException) -> None:
        error = _call_error(self.label, exc)
        self.node.deliver_answer(message.source, message.session, outcome.Error(error))

    # --- tasks ----------------------------------------------------------------------

    def fork(
        self, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> trio.CancelScope:
        scope = trio.CancelScope()
        self.nursery.start_soon(
            _run_forked, scope, function, args, name=getattr(function, "__qualname__", None)
        )
        return scope

    async def wait(self, token: object) -> None:
        if token in self._waiting:
            raise ResponseError(f"a task of {self.label} is already waiting on {token!r}")
        self._waiting[token] = current_task()

        def abort(_: object) -> Abort:
            self._waiting.pop(token, None)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def wakeup(self, token: object) -> bool:
        task = self._waiting.pop(token, None)
        if task is None:
            return False
        reschedule(task, outcome.Value(None))
        return True

    async def multicast_handler(self, message: Message) -> None:
        channel, args = message.args
        callback = self.subscriptions.get(channel)
        if callback is not None:  # unsubscribed while the message was queued
            await callback(channel, message.source, *args)

    # --- the end --------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Cancel every task of the service; the first reason given is the one reported."""
        if self.exit_reason is None:
            self.exit_reason = reason
        self.nursery.cancel_scope.cancel()

    def close(self, reason: str) -> None:
        """Refuse new messages and answer every caller still owed an answer."""
        error = ServiceExited(self.label, reason)
        leftovers = self.mailbox.close(reason)
        owed = [*self.open_requests, *(m for m in leftovers if m.session)]
        self.open_requests.clear()
        for message in owed:
            self.node.deliver_answer(message.source, message.session, outcome.Error(error))
        dropped = sum(1 for m in leftovers if not m.session)
        if dropped:
            logger.warning("%s exited with %d sent messages unhandled", self.label, dropped)


class Responder:
    """Answers one call later, exactly once (skynet's ``skynet.response()``)."""

    __slots__ = ("_ctx", "_message")

    def __init__(self, ctx: ServiceContext, message: Message) -> None:
        self._ctx = ctx
        self._message = message

    @property
    def answered(self) -> bool:
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


def _current_message_or_fail(what: str) -> Message:
    message = current_message.get()
    if message is None:
        raise ResponseError(f"{what}() works only inside a message handler, not in a forked task")
    return message


def _call_error(label: str, exc: BaseException) -> CallError:
    if isinstance(exc, CallError) and exc.target == label:
        return exc
    return CallError(label, type(exc).__name__, str(exc))


async def _run_forked(
    scope: trio.CancelScope, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
) -> None:
    current_message.set(None)
    with scope:
        await function(*args)
