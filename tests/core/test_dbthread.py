"""DatabaseThread: one thread, one connection, jobs in order, results back to trio."""

import threading

import pytest
import trio

from meshnet.dbthread import DatabaseThread


class Ledger:
    """A stand-in connection that records which thread used it."""

    def __init__(self):
        self.entries = []
        self.threads = {threading.get_ident()}
        self.closed = False

    def add(self, value):
        self.threads.add(threading.get_ident())
        self.entries.append(value)
        return len(self.entries)

    def fail(self):
        raise ValueError("disk on fire")

    def close(self):
        self.closed = True


@pytest.fixture
async def database():
    db = await DatabaseThread.start(Ledger, name="test-db")
    yield db
    if not db._connection.closed:
        await db.stop(Ledger.close)


async def test_jobs_run_in_the_order_asked_on_one_other_thread(database):
    asked = []

    async def add(value):
        asked.append(value)  # run() queues the job before it first waits
        assert await database.run(Ledger.add, value) == asked.index(value) + 1

    async with trio.open_nursery() as nursery:
        for value in range(50):
            nursery.start_soon(add, value)
    assert database._connection.entries == asked
    [thread] = database._connection.threads
    assert thread != threading.get_ident()


async def test_a_job_that_raises_raises_in_its_caller_only(database):
    with pytest.raises(ValueError, match="disk on fire"):
        await database.run(Ledger.fail)
    assert await database.run(Ledger.add, "after") == 1


async def test_a_cancelled_caller_still_waits_for_its_job_and_gets_its_result(database):
    with trio.CancelScope() as scope:
        scope.cancel()
        assert await database.run(Ledger.add, "kept") == 1
    assert database._connection.entries == ["kept"]


async def test_stop_closes_the_connection_after_queued_jobs(database):
    async with trio.open_nursery() as nursery:
        nursery.start_soon(database.run, Ledger.add, "last")
        await trio.testing.wait_all_tasks_blocked()
        await database.stop(Ledger.close)
    assert database._connection.entries == ["last"]
    assert database._connection.closed
