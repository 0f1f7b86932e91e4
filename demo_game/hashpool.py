"""Password hashing on a bounded pool of threads, with admission control.

scrypt is slow on purpose (tens of milliseconds of CPU and 16 MiB a hash at the demo's
cost), so a burst of sign-ins must not start a hash per request: they would share the
cores, each taking as long as all of them together, and die at their callers' deadlines
with nothing done. Here at most ``threads`` hashes run at once (about the number of cores)
and the rest wait in line. A hash that would not start within ``max_wait`` seconds, judged
from the line ahead of it and how long a hash takes, is refused at once with
``HashBusy``, which a client can retry later; one that waits longer than estimated is
refused when its turn comes, without being computed. So the pool does only work whose
answer someone still waits for, at the rate the cores allow.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import TypeVar

from meshnet.dbthread import TooLate, Workers
from meshnet.errors import MeshnetError

T = TypeVar("T")

DEFAULT_MAX_WAIT = 3.0
"""Seconds a hash may wait for a thread before it is refused."""


class HashBusy(MeshnetError):
    """Every hashing thread is taken for longer than the pool lets a hash wait: retry later."""


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class HashPool:
    """``threads`` threads (default: ``available_cores()``) that compute hashes; see the
    module docstring (``max_wait`` infinite: no admission control). ``await stop()`` ends
    them."""

    def __init__(self, threads: int | None = None, max_wait: float = DEFAULT_MAX_WAIT) -> None:
        self.threads = threads or available_cores()
        self.max_wait = max_wait
        self._workers = Workers(self.threads, "hash")

    @property
    def average(self) -> float | None:
        """Seconds a hash takes (a moving average; None before the first)."""
        return self._workers.average

    def expected_wait(self) -> float:
        """Seconds a hash asked now would wait for a thread, as far as the pool can tell:
        what the running hashes have left (one running longer than usual is expected to
        take as long again) and the hashes in line, shared over the threads. Until a first
        hash has finished, each counts as ``max_wait``."""
        running = self._workers.running()
        ahead = self._workers.waiting - (self.threads - len(running))
        if ahead < 0:
            return 0.0
        if self.average is None:
            return (len(running) + ahead) * self.max_wait / self.threads
        average = self.average
        left = sum(max(average - elapsed, elapsed) for elapsed in running)
        return (left + ahead * average) / self.threads

    async def run(self, hash_function: Callable[..., T], *args: object) -> T:
        """``hash_function(*args)`` on a thread; ``HashBusy`` if it cannot start in time."""
        if self.max_wait < math.inf and self.expected_wait() >= self.max_wait:
            raise HashBusy(f"every hashing thread is busy for more than {self.max_wait:g}s")
        deadline = time.monotonic() + self.max_wait
        try:
            return await self._workers.run(hash_function, *args, deadline=deadline)
        except TooLate:
            raise HashBusy(f"no hashing thread was free within {self.max_wait:g}s") from None

    async def stop(self) -> None:
        """End the threads once every hash asked has been answered."""
        await self._workers.stop()
