"""A service's bounded mailbox, with the overload policy its service declares.

Built on trio's low-level parking rather than a memory channel: a service has exactly one
task receiving at a time (see dispatch.py), which lets a message be handed straight to a
parked receiver, and the queue length is readable for overload warnings at no cost.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Literal

import outcome
from trio.lowlevel import (
    Abort,
    Task,
    cancel_shielded_checkpoint,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from meshnet.errors import Busy, ServiceExited
from meshnet.message import Message

logger = logging.getLogger(__name__)

Policy = Literal["wait", "reject"]
FAIRNESS_BATCH = 64
"""A receiver that keeps finding messages yields to other tasks after this many in a row."""


class Mailbox:
    """FIFO queue of messages for one service, bounded at ``capacity``.

    When full, ``put`` either makes the sender wait for room (policy ``"wait"``) or raises
    ``Busy`` (policy ``"reject"``). Once closed, every put raises ``ServiceExited`` and
    senders still waiting for room are woken with that error.
    """

    def __init__(self, owner: str, capacity: int, policy: Policy, warn_at: int) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be at least 1, not {capacity}")
        if policy not in ("wait", "reject"):
            raise ValueError(f"mailbox policy must be 'wait' or 'reject', not {policy!r}")
        self.owner = owner
        self.capacity = capacity
        self.policy = policy
        self._warn_initial = warn_at
        self._warn_at = warn_at
        self._items: deque[Message] = deque()
        self._receiver: Task | None = None
        self._waiting_senders: deque[tuple[Task, Message]] = deque()
        self._closed_reason: str | None = None
        self._streak = 0

    def __len__(self) -> int:
        return len(self._items) + len(self._waiting_senders)

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    async def put(self, message: Message) -> None:
        """Queue ``message``, applying the overload policy when the mailbox is full."""
        if self._closed_reason is not None:
            raise ServiceExited(self.owner, self._closed_reason)
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            reschedule(receiver, outcome.Value(message))
            return
        items = self._items
        if len(items) < self.capacity:
            items.append(message)
            if len(items) > self._warn_at:
                logger.warning(
                    "mailbox of %s is overloaded: %d messages queued", self.owner, len(items)
                )
                self._warn_at *= 2
            return
        if self.policy == "reject":
            raise Busy(self.owner, self.capacity)
        await self._wait_for_room(message)

    async def get(self) -> Message:
        """Take the oldest message, parking until one arrives. Only one task may call this."""
        items = self._items
        if items:
            message = items.popleft()
            if self._waiting_senders:
                self._admit_waiting_sender()
            elif not items:
                self._warn_at = self._warn_initial
            self._streak += 1
            if self._streak >= FAIRNESS_BATCH:
                self._streak = 0
                await cancel_shielded_checkpoint()
            return message
        self._streak = 0
        self._receiver = current_task()

        def abort(_: object) -> Abort:
            self._receiver = None
            return Abort.SUCCEEDED

        return await wait_task_rescheduled(abort)

    def close(self, reason: str) -> list[Message]:
        """Refuse further messages; return those queued, oldest first.

        Senders still waiting for room get ``ServiceExited`` from their ``put`` instead.
        """
        self._closed_reason = reason
        pending = list(self._items)
        self._items.clear()
        while self._waiting_senders:
            task, _ = self._waiting_senders.popleft()
            reschedule(task, outcome.Error(ServiceExited(self.owner, reason)))
        return pending

    async def _wait_for_room(self, message: Message) -> None:
        entry = (current_task(), message)
        self._waiting_senders.append(entry)

        def abort(_: object) -> Abort:
            self._waiting_senders.remove(entry)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def _admit_waiting_sender(self) -> None:
        task, message = self._waiting_senders.popleft()
        self._items.append(message)
        reschedule(task, outcome.Value(None))
