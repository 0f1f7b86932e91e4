"""Running a service's handlers: in arrival order, each in its own task when it blocks.

skynet runs every message in a coroutine, so a handler that waits (for a call, a sleep)
lets the service take its next message; messages still *start* in arrival order. Here
one worker task at a time holds the mailbox. It runs each handler inline, and only when
a handler actually suspends does it hand the mailbox to a standby worker (waking an idle
one, or starting one) and finish that handler itself. A handler that completes without
suspending therefore costs no task switch at all, and idle workers are reused rather than
spawned per message.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import outcome
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from meshnet.context import current_message
from meshnet.errors import MeshnetError
from meshnet.message import MULTICAST, REQUEST, Message

if TYPE_CHECKING:
    from meshnet.context import ServiceContext

logger = logging.getLogger(__name__)

MAX_STANDBY = 8
"""Idle workers a service keeps for reuse; more than this retire when their handler ends."""


class UnknownCommand(MeshnetError):
    """The message names a command or kind the service does not handle."""


class Dispatcher:
    """The worker pool of one service."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._standby: list[Task] = []

    def start(self) -> None:
        """Start the first worker in the service's nursery."""
        self._ctx.nursery.start_soon(self._worker)

    async def _worker(self) -> None:
        ctx = self._ctx
        mailbox = ctx.mailbox
        while True:
            message = await mailbox.get()
            current_message.set(message)
            try:
                coro = self._handler_for(message)
                trap = coro.send(None)
            except StopIteration as done:
                ctx.answer(message, done.value)
                continue
            except Exception as exc:
                ctx.fail(message, exc)
                continue
            except BaseException:
                ctx.owe(message)  # SystemExit & co. end the service, which answers the caller
                raise
            # The handler suspended: let the next message in, and finish this one here.
            ctx.owe(message)
            self._hand_off()
            try:
                result = await _resume(coro, trap)
            except Exception as exc:
                ctx.fail(message, exc)
            else:
                ctx.answer(message, result)
            if len(self._standby) >= MAX_STANDBY:
                return
            await self._wait_for_turn()

    def _handler_for(self, message: Message) -> Coroutine[Any, Any, Any]:
        instance = self._ctx.instance
        if message.kind == REQUEST:
            function = instance._commands.get(message.name)
            if function is None:
                raise UnknownCommand(f"{type(instance).__name__} has no command {message.name!r}")
            return function(instance, *message.args)
        if message.kind == MULTICAST:
            return self._ctx.multicast_handler(message)
        handler = getattr(instance, "on_" + message.kind, None)
        if handler is None:
            raise UnknownCommand(
                f"{type(instance).__name__} does not handle {message.kind!r} messages "
                f"(define on_{message.kind})"
            )
        return handler(*message.args)

    def _hand_off(self) -> None:
        if self._standby:
            reschedule(self._standby.pop(), outcome.Value(None))
        else:
            self._ctx.nursery.start_soon(self._worker)

    async def _wait_for_turn(self) -> None:
        task = current_task()
        self._standby.append(task)

        def abort(_: object) -> Abort:
            self._standby.remove(task)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], trap: Any) -> Any:
    """Go on running ``coro`` in this task, from the point where it yielded ``trap``.

    Equivalent to ``yield from`` on a coroutine that has already taken its first step:
    every trap is passed up to trio unchanged and every answer passed back down.
    """
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
