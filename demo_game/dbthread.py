"""One thread that owns a database connection and runs jobs for trio tasks, in order.

``trio.to_thread.run_sync`` with a limiter of one hands each job to a thread and the next
job only after trio has taken the previous result, so every job waits for a turn of a
busy event loop: under load the database did a few dozen jobs a second. Here the thread
goes straight on to the next queued job and only the results wait for the loop.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import outcome
import trio

logger = logging.getLogger(__name__)

C = TypeVar("C")
T = TypeVar("T")


class DatabaseThread(Generic[C]):
    """Runs ``job(connection, *args)`` calls on one thread, in the order they were asked.

    Start it with ``await DatabaseThread.start(connect)``, where ``connect()`` opens the
    connection (in the thread); ``await stop()`` closes it.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._connection: C

    @classmethod
    async def start(cls, connect: Callable[[], C], name: str = "database") -> DatabaseThread[C]:
        """Start the thread and open its connection with ``connect()`` there."""
        database = cls(name)
        database._thread.start()
        await database._submit(_open, database, connect)
        return database

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """Run ``job(connection, *args)`` on the thread and return its result.

        A cancelled caller still waits for its job: once queued, a job runs to the end
        (a write is never half known).
        """
        return await self._submit(job, self._connection, *args)

    async def stop(self, close: Callable[[C], None]) -> None:
        """Run ``close(connection)`` after every queued job, then end the thread."""
        await self.run(close)
        self._jobs.put(None)
        await trio.to_thread.run_sync(self._thread.join)

    async def _submit(self, job: Callable[..., T], *args: Any) -> T:
        entry = _Job(job, args)
        self._jobs.put(entry)
        with trio.CancelScope(shield=True):
            await entry.done.wait()
        return entry.result.unwrap()

    def _serve(self) -> None:
        while (entry := self._jobs.get()) is not None:
            entry.result = outcome.capture(entry.job, *entry.args)
            try:
                self._token.run_sync_soon(entry.done.set)
            except trio.RunFinishedError:
                logger.warning("database job finished after the event loop ended")
                return


class _Job:
    __slots__ = ("job", "args", "done", "result")

    def __init__(self, job: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.job = job
        self.args = args
        self.done = trio.Event()
        self.result: outcome.Outcome[Any]


def _open(database: DatabaseThread[C], connect: Callable[[], C]) -> None:
    database._connection = connect()
