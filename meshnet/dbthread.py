"""Threads that run blocking jobs for trio tasks: ``Workers`` (a few threads, jobs taken
oldest first) and ``DatabaseThread`` (one thread owning a database connection, in order).

``trio.to_thread.run_sync`` hands each job to a thread, and with a limiter the next job
only starts after trio has taken the previous result, so every job waits for a turn of a
busy event loop: under load the database did a few dozen jobs a second, and a hash pool's
threads sat idle between hashes. Here the threads go straight on to the next queued job
and only the results wait for the loop.

A job may carry a deadline (``time.monotonic``): if no thread takes it by then, it is not
run, and its caller gets ``TooLate``. The pool also says how many jobs wait and how long a
job takes on average, for admission control above it (``demo_game.hashpool``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import outcome
import trio

from meshnet.errors import MeshnetError

logger = logging.getLogger(__name__)

C = TypeVar("C")
T = TypeVar("T")

AVERAGE_WEIGHT = 0.1
"""How much each finished job moves ``Workers.average`` (an exponential moving average)."""


class TooLate(MeshnetError):
    """A job's deadline passed before a thread could take it; it did not run."""


class Workers:
    """``count`` threads running ``job(*args)`` calls, each taken by the first free thread
    in the order asked. Start with ``Workers(count, name)``; ``await stop()`` ends them."""

    def __init__(self, count: int, name: str) -> None:
        self.count = count
        self.average: float | None = None
        """Seconds a job took on average (None before the first finished)."""
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._token = trio.lowlevel.current_trio_token()
        self._started: dict[int, float] = {}
        """Thread -> when the job it runs now started (``time.monotonic``)."""
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def waiting(self) -> int:
        """Jobs asked that no thread has taken yet."""
        return self._jobs.qsize()

    def running(self) -> list[float]:
        """Seconds each job running now has been running."""
        now = time.monotonic()
        return [now - started for started in list(self._started.values())]

    async def run(self, job: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        """Run ``job(*args)`` on a thread and return its result; ``TooLate`` if no thread
        took it by ``deadline``.

        A cancelled caller still waits for its job: once queued, a job runs to the end
        (a write is never half known).
        """
        entry = _Job(job, args, deadline)
        self._jobs.put(entry)
        with trio.CancelScope(shield=True):
            await entry.done.wait()
        return entry.result.unwrap()

    async def stop(self) -> None:
        """End the threads once every queued job has run."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            await trio.to_thread.run_sync(thread.join)

    def _serve(self) -> None:
        while (entry := self._jobs.get()) is not None:
            if entry.deadline is not None and time.monotonic() > entry.deadline:
                entry.result = outcome.Error(TooLate("no thread was free in time"))
            else:
                thread = threading.get_ident()
                self._started[thread] = started = time.monotonic()
                entry.result = outcome.capture(entry.job, *entry.args)
                took = time.monotonic() - started
                del self._started[thread]
                average = self.average
                self.average = (
                    took if average is None else average + AVERAGE_WEIGHT * (took - average)
                )
            try:
                self._token.run_sync_soon(entry.done.set)
            except trio.RunFinishedError:
                logger.warning("a job finished after the event loop ended")
                return


class DatabaseThread(Generic[C]):
    """Runs ``job(connection, *args)`` calls on one thread, in the order they were asked.

    Start it with ``await DatabaseThread.start(connect)``, where ``connect()`` opens the
    connection (in the thread); ``await stop()`` closes it.
    """

    def __init__(self, name: str) -> None:
        self._workers = Workers(1, name)
        self._connection: C

    @classmethod
    async def start(cls, connect: Callable[[], C], name: str = "database") -> DatabaseThread[C]:
        """Start the thread and open its connection with ``connect()`` there."""
        database = cls(name)
        await database._workers.run(_open, database, connect)
        return database

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """Run ``job(connection, *args)`` on the thread and return its result.

        A cancelled caller still waits for its job: once queued, a job runs to the end
        (a write is never half known).
        """
        return await self._workers.run(job, self._connection, *args)

    async def stop(self, close: Callable[[C], None]) -> None:
        """Run ``close(connection)`` after every queued job, then end the thread."""
        await self.run(close)
        await self._workers.stop()


class _Job:
    __slots__ = ("job", "args", "deadline", "done", "result")

    def __init__(self, job: Callable[..., Any], args: tuple[Any, ...], deadline: float | None):
        self.job = job
        self.args = args
        self.deadline = deadline
        self.done = trio.Event()
        self.result: outcome.Outcome[Any]


def _open(database: DatabaseThread[C], connect: Callable[[], C]) -> None:
    database._connection = connect()
