"""Running a service's handlers: in arrival order, each in its own task when it blocks, at
most ``max_concurrency`` at once.

skynet runs every message in a coroutine, so a handler that waits (for a call, a sleep)
lets the service take its next message; messages still *start* in arrival order. Here
one worker task at a time, the *holder*, takes messages from the mailbox. It runs each
handler inline, and only when a handler actually suspends does it hand the mailbox to a
standby worker (waking an idle one, or starting one) and finish that handler itself. A
handler that completes without suspending therefore costs no task switch at all.

When ``max_concurrency`` handlers are suspended, nobody holds the mailbox: messages wait
there, so its size and policy apply, until a handler finishes and its worker becomes the
holder again. Idle workers are kept for reuse, at most ``MAX_STANDBY`` of them, each for
at most ``STANDBY_IDLE`` seconds.
"""

from __future__ import annotations

from collections.abc import Coroutine
from time import perf_counter
from typing import Any

import outcome
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from meshnet.context import NOT_HERE, ServiceContext
from meshnet.errors import UnknownCommand
from meshnet.message import KIND_HOOKS, MULTICAST, REQUEST, Message
from meshnet.stepper import drive
from meshnet.timers import UNSCHEDULED, Timer

MAX_STANDBY = 8
"""Idle workers a service keeps for reuse; more than this retire when their handler ends."""
STANDBY_IDLE = 10.0
"""Seconds an idle worker waits to be reused before it retires."""
PING = "debug.ping"
"""A command every service answers (with None) without running any code of its own: the
debug console's ``ping``. No method can have this name."""


class Dispatcher:
    """The worker pool of one service."""

    __slots__ = ("_ctx", "_commands", "_kinds", "_limit", "_suspended", "_standby", "_countdown")

    def __init__(self, ctx: ServiceContext) -> None:
        cls = type(ctx.instance)
        self._ctx = ctx
        self._commands = cls._commands
        self._kinds = cls._kind_handlers
        self._limit = cls.max_concurrency
        self._suspended = 0
        """Handlers that suspended and have not finished."""
        self._standby: list[_Standby] = []
        self._countdown = 1
        """Handlers to start before the next one is timed (while the node is observed)."""

    @property
    def running(self) -> int:
        """Handlers in progress that suspended at least once."""
        return self._suspended

    @property
    def idle_workers(self) -> int:
        return len(self._standby)

    def start(self) -> None:
        """Start the first worker in the service's nursery."""
        self._ctx.nursery.start_soon(self._worker)

    async def _worker(self) -> None:
        ctx = self._ctx
        mailbox = ctx.mailbox
        task = current_task()
        ctx.stepped.add(task)
        try:
            while True:
                message = await mailbox.get()
                started = self._start(message, task)
                if started is None:
                    continue
                # The handler suspended: let the next message in, and finish this one here.
                coro, trap, context, timed_from = started
                self._suspended += 1
                if self._suspended < self._limit:
                    self._hand_off()
                else:
                    mailbox.pause()
                try:
                    result = await drive(coro, trap, context, mailbox, task)
                except Exception as exc:
                    ctx.fail(message, exc)
                else:
                    ctx.answer(message, result)
                finally:
                    del ctx.handling[task]
                self._timed(timed_from)
                self._suspended -= 1
                if mailbox.paused:
                    mailbox.resume()  # nobody took over: this worker holds the mailbox again
                elif not await self._stand_by():
                    return
        finally:
            ctx.stepped.discard(task)

    def run_here(self, message: Message) -> Guest | None:
        """Run ``message``'s handler in the calling task, a task that is not the service's
        (a gate's reactor handing over a packet), when the service's holder is parked with
        nothing before it: what the holder would do with it, minus the task switch.

        Returns None once the handler ran (or failed, logged as ever), or ``NOT_HERE`` if
        the service cannot take it that way (the caller queues it instead). If the handler
        suspends, the returned ``Guest`` must be awaited in this task: it finishes the
        handler as the service's (its context; cancelled when the service stops, which
        waits for it; counted against ``max_concurrency``)."""
        if self._suspended + 1 >= self._limit or not self._ctx.mailbox.start_here():
            return NOT_HERE
        started = self._start(message, current_task())
        if started is None:
            return None
        self._suspended += 1
        return Guest(self, message, *started)

    def guest_done(self, timed_from: float) -> None:
        """A ``Guest`` handler finished."""
        self._timed(timed_from)
        self._suspended -= 1

    def _start(self, message: Message, task: Task) -> tuple[Any, Any, Any, float] | None:
        """Run ``message``'s handler in ``task`` up to where it first suspends: None if it
        ended there (answered, or failed), else its coroutine, the trap it yielded, its
        context and when it started (0.0: not timed), for ``task`` to go on with."""
        ctx = self._ctx
        commands = self._commands
        try:
            if message.kind == REQUEST and message.name in commands:
                coro = commands[message.name](ctx.instance, *message.args)  # type: ignore[index]
            else:
                coro = self._handler_for(message)
        except UnknownCommand as exc:
            ctx.refuse(message, exc)
            return None
        except Exception as exc:  # wrong arguments, mostly
            ctx.fail(message, exc)
            return None
        context = ctx.base_context.copy()  # each handler's ContextVars are its own
        handling = ctx.handling
        handling[task] = message
        started = 0.0
        if ctx.runtime.observer is not None:
            self._countdown -= 1
            if not self._countdown:
                started = perf_counter()
        try:
            trap = context.run(coro.send, None)
        except StopIteration as done:
            del handling[task]
            ctx.answer(message, done.value)
            self._timed(started)
            return None
        except Exception as exc:
            del handling[task]
            ctx.fail(message, exc)
            self._timed(started)
            return None
        except BaseException:
            ctx.owe(message)  # SystemExit & co. end the service, which answers
            raise
        ctx.owe(message)
        return coro, trap, context, started

    def _timed(self, started: float) -> None:
        """A handler timed from ``started`` (0.0: not timed) ended."""
        if started:
            self._countdown = self._ctx.stats.timed(started)

    def _handler_for(self, message: Message) -> Coroutine[Any, Any, Any]:
        instance = self._ctx.instance
        kind = message.kind
        if kind == REQUEST:
            function = self._commands.get(message.name)  # type: ignore[arg-type]
            if function is None:
                if message.name == PING:
                    return _pong()
                raise UnknownCommand(self._ctx.label, self._why_unknown(message.name))
            return function(instance, *message.args)  # type: ignore[return-value]
        if kind == MULTICAST:
            return self._ctx.multicast_handler(message)
        handler = self._kinds.get(kind)
        if handler is None:
            hook = KIND_HOOKS.get(kind, f"on_{kind}")
            raise UnknownCommand(
                self._ctx.label,
                f"{type(instance).__name__} does not handle {kind!r} messages "
                f"(define async def {hook})",
            )
        return handler(instance, *message.args)  # type: ignore[return-value]

    def _why_unknown(self, name: object) -> str:
        cls = type(self._ctx.instance)
        if isinstance(name, str) and callable(getattr(cls, name, None)):
            return (
                f"{cls.__name__}.{name} is not a command: mark it with @command to make it "
                "callable by other services"
            )
        return f"{cls.__name__} has no command {name!r}"

    def _hand_off(self) -> None:
        if self._standby:
            idle = self._standby.pop()
            self._ctx.runtime.timers.cancel(idle)
            reschedule(idle.task, outcome.Value(True))
        else:
            self._ctx.nursery.start_soon(self._worker)

    async def _stand_by(self) -> bool:
        """Wait to become the holder again (True) or to retire (False)."""
        if len(self._standby) >= MAX_STANDBY:
            return False
        idle = _Standby(current_task(), self._standby)
        self._standby.append(idle)
        timers = self._ctx.runtime.timers
        timers.schedule(idle, timers.now() + STANDBY_IDLE)

        def abort(_: object) -> Abort:
            idle.leave()
            timers.cancel(idle)
            return Abort.SUCCEEDED

        return await wait_task_rescheduled(abort)


class Guest:
    """A handler ``run_here`` started in a task that is not its service's, and that
    suspended: ``finish`` runs it to its end in that task, as the service's."""

    __slots__ = ("_dispatcher", "_message", "_coro", "_trap", "_context", "_timed_from")

    def __init__(
        self,
        dispatcher: Dispatcher,
        message: Message,
        coro: Coroutine[Any, Any, Any],
        trap: Any,
        context: Any,
        timed_from: float,
    ) -> None:
        self._dispatcher = dispatcher
        self._message = message
        self._coro = coro
        self._trap = trap
        self._context = context
        self._timed_from = timed_from

    async def finish(self, scope: trio.CancelScope) -> None:
        """Run the handler to its end. ``scope``, the calling task's own, around where
        ``run_here`` was called, is handed to the service for that time: shielded from
        the task's other cancellations, cancelled when the service stops (and the
        service's end waits for it). Nothing else may run in ``scope`` meanwhile."""
        ctx = self._dispatcher._ctx
        task = current_task()
        ctx.stepped.add(task)
        with ctx.hosting(scope):
            try:
                result = await drive(self._coro, self._trap, self._context, ctx.mailbox, task)
            except Exception as exc:
                ctx.fail(self._message, exc)
            else:
                ctx.answer(self._message, result)
            finally:
                del ctx.handling[task]
                ctx.stepped.discard(task)
                self._dispatcher.guest_done(self._timed_from)


async def _pong() -> None:
    """The handler of ``PING``."""


class _Standby(Timer):
    """An idle worker, and the timer that retires it."""

    __slots__ = ("task", "_pool")

    def __init__(self, task: Task, pool: list[_Standby]) -> None:
        self._tick = UNSCHEDULED
        self.task = task
        self._pool = pool

    def fire(self) -> None:
        if self.leave():
            reschedule(self.task, outcome.Value(False))

    def leave(self) -> bool:
        """Leave the pool; False if it was no longer in it."""
        if self not in self._pool:
            return False
        self._pool.remove(self)
        return True
