"""A service's bounded mailbox: its messages and the answers to its calls, in one order.

Everything that reaches a service passes through here in the order it arrived, answers
included, as in skynet where a response goes through the caller's one queue. Messages are
taken by the service's one *holder* task (see dispatch.py); answers are delivered by the
mailbox itself, to the task waiting for them, once every message that arrived before the
answer has started. Then the mailbox is *held* by that task until it next suspends (the
runtime steps service tasks itself and calls ``release`` at that point), so the code after
an ``await call(...)`` runs before the handler of any later message starts.

Answers do not count against the capacity and never wait for room, so a full mailbox can
slow senders down but can never deadlock a cycle of calls. While the service runs as many
handlers as it may (``pause``), no message can start, so answers are not held back behind
messages then: an answer is the only way a handler can finish and make room.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import outcome
from trio.lowlevel import (
    Abort,
    Task,
    checkpoint,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from meshnet.errors import Busy, ServiceExited
from meshnet.message import Message

logger = logging.getLogger(__name__)

Policy = Literal["wait", "reject"]
FAIRNESS_BATCH = 64
"""A holder that keeps finding messages yields to other tasks after this many in a row."""

Deliver = Callable[[int, outcome.Outcome[Any]], "Task | None"]
"""Hands the answer for a session to its caller; returns the task to hold the mailbox for
(None when the caller is gone or is a task the runtime does not step)."""


class Mailbox:
    """FIFO of messages (bounded at ``capacity``) and answers for one service.

    When full, ``put`` either makes the sender wait for room (policy ``"wait"``) or raises
    ``Busy`` (policy ``"reject"``). Once closed, every put raises ``ServiceExited`` and
    senders still waiting for room are woken with that error.
    """

    __slots__ = (
        "owner",
        "capacity",
        "policy",
        "stopping",
        "held",
        "_deliver",
        "_warn_initial",
        "_warn_at",
        "_messages",
        "_answers",
        "_waiting_senders",
        "_receiver",
        "_arrived",
        "_started",
        "_paused",
        "_closed_reason",
        "_streak",
    )

    def __init__(
        self, owner: str, capacity: int, policy: Policy, warn_at: int, deliver: Deliver
    ) -> None:
        self.owner = owner
        self.capacity = capacity
        self.policy = policy
        self.stopping = False
        """Set when the service is stopped: no further message starts."""
        self.held: Task | None = None
        """The task an answer just resumed, until it suspends again."""
        self._deliver = deliver
        self._warn_initial = warn_at
        self._warn_at = warn_at
        self._messages: deque[Message] = deque()
        self._answers: deque[tuple[int, int, outcome.Outcome[Any]]] | None = None
        """Answers waiting for their turn: (messages arrived before it, session, result)."""
        self._waiting_senders: deque[tuple[Task, Message]] | None = None
        self._receiver: Task | None = None
        self._arrived = 0
        """Messages that entered the queue (or went straight to the holder), ever."""
        self._started = 0
        """Messages the holder has taken, ever."""
        self._paused = False
        self._closed_reason: str | None = None
        self._streak = 0

    def __len__(self) -> int:
        waiting = self._waiting_senders
        return len(self._messages) + (len(waiting) if waiting else 0)

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    # --- senders ----------------------------------------------------------------------

    async def put(self, message: Message) -> None:
        """Queue ``message``, applying the overload policy when the mailbox is full."""
        if not self.try_put(message):
            await self.wait_for_room(message)

    def try_put(self, message: Message) -> bool:
        """Queue ``message`` without waiting: False if full under ``"wait"`` (then call
        ``wait_for_room``); ``Busy`` if full under ``"reject"``."""
        if self._closed_reason is not None:
            raise ServiceExited(self.owner, self._closed_reason)
        receiver = self._receiver
        if receiver is not None and self.held is None:  # the hot path, as _enqueue's
            self._receiver = None
            self._arrived += 1
            reschedule(receiver, outcome.Value(message))
            return True
        if len(self._messages) >= self.capacity:
            if self.policy == "reject":
                raise Busy(self.owner, self.capacity)
            return False
        self._enqueue(message)
        return True

    def start_here(self) -> bool:
        """Count a message as arrived and started at once, for its handler to run in the
        sender's task (``Dispatcher.run_here``): only when it would have gone straight to
        the parked holder anyway (nothing queued, nothing held, no answer waiting)."""
        if (
            self._receiver is None
            or self.held is not None
            or self._messages
            or self._answers
            or self._paused
            or self.stopping
            or self._closed_reason is not None
        ):
            return False
        self._arrived += 1
        self._started += 1
        return True

    def put_notice(self, message: Message) -> None:
        """Queue a notice from the runtime itself (a channel's deletion), in order, beyond
        the capacity: there is at most one per subscription, and it must not be lost."""
        if self._closed_reason is None:
            self._enqueue(message)

    async def wait_for_room(self, message: Message) -> None:
        """Wait until ``message`` is admitted into the full mailbox (FIFO among senders)."""
        if self._waiting_senders is None:
            self._waiting_senders = deque()
        entry = (current_task(), message)
        self._waiting_senders.append(entry)

        def abort(_: object) -> Abort:
            assert self._waiting_senders is not None
            self._waiting_senders.remove(entry)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def put_answer(self, session: int, result: outcome.Outcome[Any]) -> None:
        """An answer to one of the service's calls; delivered in its turn, never waits."""
        if self._closed_reason is not None:
            return
        if (
            self.held is None
            and not self._answers
            and (self._started == self._arrived or self._paused)
        ):
            self.held = self._deliver(session, result)
            return
        if self._answers is None:
            self._answers = deque()
        self._answers.append((self._arrived, session, result))

    # --- the holder -------------------------------------------------------------------

    async def get(self) -> Message:
        """Take the next message once its turn has come; only the holder calls this.

        A stopped service's holder gets ``Cancelled`` here instead of another message."""
        self._streak += 1
        if self._streak >= FAIRNESS_BATCH:
            self._streak = 0
            await checkpoint()  # lets others run, and delivers a cancellation
        while True:
            if self.stopping:
                await checkpoint()
            if self._answers:
                self._pump()
            if self.held is None and self._messages:
                self._started += 1
                return self._take()
            self._streak = 0
            self._receiver = current_task()
            message = await wait_task_rescheduled(self._abort_get)
            if not self.stopping:
                self._started += 1
                return message
            self._messages.appendleft(message)  # handed over as the service stopped: unstarted

    def release(self) -> None:
        """The task holding the mailbox suspended: let the next answer or message go."""
        self.held = None
        if self._answers or (self._receiver is not None and self._messages):
            self._pump()

    def pause(self) -> None:
        """The service runs as many handlers as it may: no message starts until ``resume``,
        and answers go to their callers without waiting behind messages."""
        self._paused = True
        self._pump()

    def resume(self) -> None:
        """A handler finished: the task calling this is the holder again."""
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    # --- the end ----------------------------------------------------------------------

    def close(self, reason: str) -> list[Message]:
        """Refuse further messages and drop waiting answers; return the messages queued,
        oldest first. Senders still waiting for room get ``ServiceExited`` instead."""
        self._closed_reason = reason
        pending = list(self._messages)
        self._messages.clear()
        self._answers = None
        waiting = self._waiting_senders
        while waiting:
            task, _ = waiting.popleft()
            reschedule(task, outcome.Error(ServiceExited(self.owner, reason)))
        return pending

    # --- helpers ----------------------------------------------------------------------

    def _pump(self) -> None:
        """Deliver every answer whose turn has come, one task at a time; then hand the
        next message to the holder if it is parked."""
        answers = self._answers
        while answers and self.held is None:
            arrived_before, session, result = answers[0]
            if arrived_before > self._started and not self._paused:
                break  # a message that arrived first has not started yet
            answers.popleft()
            self.held = self._deliver(session, result)
        receiver = self._receiver
        if receiver is not None and self.held is None and self._messages:
            self._receiver = None
            reschedule(receiver, outcome.Value(self._take()))

    def _abort_get(self, _: object) -> Abort:
        self._receiver = None
        return Abort.SUCCEEDED

    def _enqueue(self, message: Message) -> None:
        self._arrived += 1
        receiver = self._receiver
        if receiver is not None and self.held is None:
            # The holder is parked, so nothing is queued: hand the message straight over.
            self._receiver = None
            reschedule(receiver, outcome.Value(message))
            return
        messages = self._messages
        messages.append(message)
        if len(messages) > self._warn_at:
            logger.warning(
                "mailbox of %s is overloaded: %d messages queued", self.owner, len(messages)
            )
            self._warn_at *= 2

    def _take(self) -> Message:
        messages = self._messages
        message = messages.popleft()
        waiting = self._waiting_senders
        if waiting:
            task, admitted = waiting.popleft()
            messages.append(admitted)
            self._arrived += 1
            reschedule(task, outcome.Value(None))
        elif not messages:
            self._warn_at = self._warn_initial
        return message
