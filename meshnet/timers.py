"""Node-wide timers for the runtime's own deadlines: call timeouts and idle workers.

A trio ``CancelScope`` with a deadline costs several microseconds to enter and leave, more
than the rest of a local call put together, and nearly every call has a deadline that it
almost never reaches. So the runtime keeps its deadlines here instead, as cheaply as it
can: ``schedule`` only appends the timer to a list, and ``cancel`` only marks it. Once per
``TICK`` while timers come in, the wheel's task sweeps that list: timers already cancelled
are forgotten, the others go into a bucket per tick of their deadline, and the task sleeps
until the earliest bucket or the next sweep. A timer fires at most one tick late, never
early. The task follows trio's clock, so ``MockClock`` drives these timers in tests as it
drives ``trio.sleep``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import trio

TICK = 0.01
"""Seconds of resolution: timers due in the same tick fire together."""

_NEW = 0
_DONE = -1
_AFTER = -2
"""Values of ``Timer._tick`` besides the tick of its bucket: not yet swept (``_deadline``
absolute, or relative to the sweep), and cancelled or fired."""
UNSCHEDULED = _DONE


class Timer:
    """Something a ``TimerWheel`` fires once its deadline has passed. Subclass it and set
    ``_tick = UNSCHEDULED`` in ``__init__``."""

    __slots__ = ("_tick", "_deadline")

    def fire(self) -> None:
        """Called once, from the wheel's task, when the deadline has passed."""
        raise NotImplementedError


class TimerWheel:
    """The timers of one node. ``run`` must be running in a task for them to fire."""

    def __init__(self) -> None:
        self.now: Callable[[], float] = trio.current_time
        """trio's clock (``run`` binds it directly, which is cheaper to call)."""
        self._new: list[Timer] = []
        self._buckets: dict[int, dict[Timer, None]] = {}
        self._ticks: list[int] = []
        """Heap of the ticks that have a bucket."""
        self._wake_at = math.inf
        self._sleep: trio.CancelScope | None = None

    def schedule(self, timer: Timer, deadline: float) -> None:
        """Fire ``timer`` once trio's clock passes ``deadline`` (at most one tick later)."""
        timer._deadline = deadline
        timer._tick = _NEW
        new = self._new
        if not new and self._sleep is not None:
            self._wake_by(self.now() + TICK)  # sweep these by the next tick
        new.append(timer)
        if deadline < self._wake_at and self._sleep is not None:
            self._wake_by(deadline)

    def schedule_after(self, timer: Timer, delay: float) -> None:
        """Fire ``timer`` once ``delay`` seconds have passed (at most two ticks later);
        cheaper than ``schedule``, which needs the time now."""
        timer._deadline = delay
        timer._tick = _AFTER
        new = self._new
        if not new and self._sleep is not None:
            self._wake_by(self.now() + TICK)
        new.append(timer)

    def cancel(self, timer: Timer) -> None:
        """Forget ``timer`` (no effect if it fired or was cancelled already)."""
        tick = timer._tick
        timer._tick = _DONE
        if tick > 0:  # swept into a bucket (most timers are cancelled before that)
            self._buckets[tick].pop(timer, None)

    async def run(self) -> None:
        """Fire timers as they come due, forever."""
        self.now = trio.lowlevel.current_clock().current_time
        while True:
            now = self.now()
            self._sweep(now)
            self._fire_due(now)
            self._wake_at = (self._ticks[0] * TICK) if self._ticks else math.inf
            if self._new:
                self._wake_at = min(self._wake_at, now + TICK)
            with trio.CancelScope(deadline=self._wake_at) as self._sleep:
                await trio.sleep_forever()

    def _wake_by(self, when: float) -> None:
        if when < self._wake_at:
            self._wake_at = when
            assert self._sleep is not None
            self._sleep.deadline = when

    def _sweep(self, now: float) -> None:
        new, self._new = self._new, []
        for timer in new:
            if timer._tick == _AFTER:
                timer._deadline += now
            elif timer._tick != _NEW:
                continue
            tick = math.floor(timer._deadline / TICK) + 1
            timer._tick = tick
            bucket = self._buckets.get(tick)
            if bucket is None:
                bucket = self._buckets[tick] = {}
                heapq.heappush(self._ticks, tick)
            bucket[timer] = None

    def _fire_due(self, now: float) -> None:
        ticks = self._ticks
        while ticks and ticks[0] * TICK <= now:  # the very product the sleep's deadline is
            for timer in self._buckets.pop(heapq.heappop(ticks)):
                timer._tick = _DONE
                timer.fire()
