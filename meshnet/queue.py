"""``meshnet.Queue``: a critical section for handlers that must not interleave."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

import trio

T = TypeVar("T")


class Queue:
    """skynet's ``skynet.queue``: run async functions one at a time, in the order they came.

    ``await cs(fn, *args)`` or ``async with cs:``. A task already inside may enter again
    (as skynet's queue lets the same coroutine re-enter), so a queued function can call
    another queued function without deadlocking.
    """

    def __init__(self) -> None:
        self._lock = trio.Lock()  # trio's Lock is fair: waiters enter first come, first served
        self._owner: trio.lowlevel.Task | None = None
        self._depth = 0

    async def __call__(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        async with self:
            return await function(*args)

    async def __aenter__(self) -> None:
        task = trio.lowlevel.current_task()
        if self._owner is not task:
            await self._lock.acquire()
            self._owner = task
        self._depth += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()


class KeyedQueue:
    """One ``Queue`` per key: calls for the same key run one at a time, in order, while
    calls for different keys run freely (a lock per user rather than one for everyone).

    ``async with cs(key):``. A key's queue exists only while someone is in it or waiting.
    """

    def __init__(self) -> None:
        self._queues: dict[Hashable, tuple[Queue, list[int]]] = {}

    @asynccontextmanager
    async def __call__(self, key: Hashable) -> AsyncIterator[None]:
        queue, users = self._queues.setdefault(key, (Queue(), [0]))
        users[0] += 1
        try:
            async with queue:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._queues[key]
