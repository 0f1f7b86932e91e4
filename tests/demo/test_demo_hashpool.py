"""The hash pool: a bounded number of threads, and admission control that refuses at once
a hash that could not start in time, and never computes one whose caller gave up."""

from __future__ import annotations

import math
import threading
import time

import pytest
import trio

from demo_game.hashpool import HashBusy, HashPool
from meshnet.dbthread import TooLate, Workers


class Gate:
    """A stand-in hash that blocks its thread until ``open``, counting who runs at once."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.lock = threading.Lock()
        self.running = self.most = self.calls = 0

    def __call__(self, value: int) -> int:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        self.opened.wait(10)
        with self.lock:
            self.running -= 1
        return value

    async def until_running(self, count: int) -> None:
        with trio.fail_after(10):
            while self.running < count:
                await trio.sleep(0.001)


@pytest.fixture
async def gate():
    gate = Gate()
    yield gate
    gate.opened.set()


async def test_at_most_threads_hashes_run_at_once(gate):
    pool = HashPool(threads=2, max_wait=math.inf)
    results = []

    async def ask(value):
        results.append(await pool.run(gate, value))

    async with trio.open_nursery() as nursery:
        for value in range(6):
            nursery.start_soon(ask, value)
        await gate.until_running(2)
        await trio.sleep(0.05)  # time enough for a third to start, were there a thread
        assert gate.running == 2
        gate.opened.set()
    assert sorted(results) == list(range(6)) and gate.most == 2
    await pool.stop()


async def test_a_hash_that_cannot_start_in_time_is_refused_at_once(gate):
    pool = HashPool(threads=1, max_wait=5.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pool.run, gate, 1)
        await gate.until_running(1)
        with pytest.raises(HashBusy, match="busy for more than 5s"):
            await pool.run(gate, 2)  # one ahead, none measured yet: counts as 5 s
        assert gate.running == 1  # refused while the first still holds the thread
        gate.opened.set()
    assert gate.calls == 1
    await pool.stop()


async def test_the_expected_wait_counts_what_runs_and_what_waits(gate):
    pool = HashPool(threads=1, max_wait=math.inf)
    for _ in range(4):
        await pool.run(time.sleep, 0.02)
    assert pool.expected_wait() == 0.0  # the thread is free
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pool.run, gate, 1)
        await gate.until_running(1)
        await trio.sleep(0.1)  # far longer than usual: expected to take as long again
        assert pool.expected_wait() >= 0.1
        for value in (2, 3):
            nursery.start_soon(pool.run, gate, value)
        with trio.fail_after(10):
            while pool._workers.waiting < 2:
                await trio.sleep(0.001)
        assert pool.expected_wait() >= 0.1 + 2 * pool.average
        gate.opened.set()
    await pool.stop()


async def test_a_job_not_taken_by_its_deadline_is_not_run(gate):
    workers = Workers(1, "test")
    late: list[BaseException] = []

    async def run_late() -> None:
        try:
            await workers.run(gate, 2, deadline=time.monotonic() + 0.01)
        except TooLate as exc:
            late.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(workers.run, gate, 1)
        await gate.until_running(1)
        nursery.start_soon(run_late)
        with trio.fail_after(10):
            while workers.waiting == 0:
                await trio.sleep(0.001)
        await trio.sleep(0.02)  # its deadline passes while the thread is taken
        gate.opened.set()
    assert len(late) == 1 and gate.calls == 1  # the late one never ran
    await workers.stop()
