"""Observing a node for its metrics: the figures of its services, added up by class and
name, and what it costs to gather them.

Most figures are counters the runtime keeps anyway (``ServiceStats``, mailbox lengths,
pending calls), read when someone asks. What the runtime does not count by itself is done
only while the node is observed (``Node.observe`` installs an ``Observer``), so a node
without metrics pays one ``is None`` test per message for it:

- messages sent, counted by the sender;
- handler latency, from a handler's start to its answer (awaits included): every
  handler of a quiet service, one in ``meshnet.context.TIMED_EVERY`` of a busy one's
  (``ServiceStats.timed``); the counts are a sample, fit for quantiles, and
  ``ServiceStats.handled`` counts them all;
- CPU time per service, sampled as a profiler does: ``SAMPLE_HZ`` times per second of
  the process's CPU time (``ITIMER_PROF``), the signal handler credits the service it
  finds running on the stack (``meshnet.frames``), so the handlers keep no books for it.
  Python runs signal handlers in the main thread only: a node whose trio loop runs in
  another thread gets no CPU figures. The process's CPU time that no service was found
  running is the runtime's own (or other threads').

Figures are added up by ``(class, name)``: the service's ``package.module:Class`` and its
registered names (comma-separated, empty if none), never its address, so a thousand
agents of one class make one series. The counters of a service that ended are kept,
added to its ``(class, name)``, so totals never go down while the observer runs.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from types import FrameType
from typing import Any

from meshnet.context import LATENCY_SLOTS, ServiceContext
from meshnet.frames import running
from meshnet.loader import service_key

SAMPLE_HZ = 100
"""Stack samples per second of the process's CPU time, for CPU time per service."""
SAMPLE_PERIOD = 1.0 / SAMPLE_HZ

Label = tuple[str, str]
"""``(class, name)``: what the figures of a service are added up by."""


def label_of(ctx: ServiceContext) -> Label:
    """The ``(class, name)`` a service's figures count under."""
    return service_key(type(ctx.instance)), ",".join(sorted(ctx.names))


@dataclass
class ServiceTotals:
    """The figures of every service of one ``(class, name)``: gauges of the live ones,
    counters of all (those that ended included)."""

    instances: int = 0
    queued: int = 0
    pending_calls: int = 0
    tasks: int = 0
    handled: int = 0
    failed: int = 0
    sent: int = 0
    late_replies: int = 0
    cpu: float = 0.0
    latency_sum: float = 0.0
    latency: list[int] = field(default_factory=lambda: [0] * LATENCY_SLOTS)
    """Timed handlers by ``int(microseconds).bit_length()``."""
    call_errors: Counter[str] = field(default_factory=Counter)

    def add_counters(self, ctx: ServiceContext) -> None:
        """Add the counters of ``ctx`` (live or ended)."""
        stats = ctx.stats
        self.handled += stats.handled
        self.failed += stats.failed
        self.sent += stats.sent
        self.late_replies += stats.late_replies
        self.cpu += stats.cpu
        self.latency_sum += stats.latency_sum
        if stats.latency is not None:
            self.latency = _sum_lists(self.latency, stats.latency)
        if stats.call_errors:
            self.call_errors.update(stats.call_errors)

    def add_live(self, ctx: ServiceContext) -> None:
        """Add ``ctx``, a live service: its gauges and its counters."""
        self.instances += 1
        self.queued += len(ctx.mailbox)
        self.pending_calls += len(ctx.pending)
        self.tasks += len(ctx.stepped)
        self.add_counters(ctx)

    def merged(self, other: ServiceTotals) -> ServiceTotals:
        """A new total of both."""
        total = ServiceTotals()
        for name in (f.name for f in fields(self)):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(total, name, _sum_lists(mine, theirs) if name == "latency" else mine + theirs)
        return total


class Observer:
    """What a node counts only while it is observed (see the module docstring).

    ``start`` begins sampling CPU time (process-wide, shared by every observer of the
    process) until ``stop``.
    """

    def __init__(self) -> None:
        self.ended: dict[Label, ServiceTotals] = {}
        """Counters of the services that ended while observed, by ``(class, name)``."""
        self.sampling = False
        """True while CPU time is sampled (False outside the main thread)."""

    def totals(self, live: Iterable[ServiceContext]) -> dict[Label, ServiceTotals]:
        """Figures of the ``live`` services plus the counters of those that ended."""
        totals: dict[Label, ServiceTotals] = {}
        for ctx in live:
            totals.setdefault(label_of(ctx), ServiceTotals()).add_live(ctx)
        for label, ended in self.ended.items():
            totals[label] = totals[label].merged(ended) if label in totals else ended
        return totals

    def service_ended(self, ctx: ServiceContext) -> None:
        """``ctx`` is ending (its names are still registered): keep its counters."""
        self.ended.setdefault(label_of(ctx), ServiceTotals()).add_counters(ctx)

    def start(self) -> None:
        """Start sampling CPU time, if this is the main thread."""
        if not self.sampling and threading.current_thread() is threading.main_thread():
            _sampler.join()
            self.sampling = True

    def stop(self) -> None:
        """Stop sampling (for this observer; the timer stops with the last one)."""
        if self.sampling:
            self.sampling = False
            _sampler.leave()


class _CpuSampler:
    """The process's one ``ITIMER_PROF`` timer and ``SIGPROF`` handler, for every
    observer at once (attribution goes by the service found, whatever its node)."""

    def __init__(self) -> None:
        self._users = 0
        self._previous: Any = None

    def join(self) -> None:
        if not self._users:
            self._previous = signal.signal(signal.SIGPROF, _on_sample)
            signal.setitimer(signal.ITIMER_PROF, SAMPLE_PERIOD, SAMPLE_PERIOD)
        self._users += 1

    def leave(self) -> None:
        self._users -= 1
        if not self._users:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, self._previous)


def _on_sample(signum: int, frame: FrameType | None) -> None:
    service = running(frame).service
    if service is not None:
        service.stats.cpu += SAMPLE_PERIOD


def _sum_lists(mine: list[int], theirs: list[int]) -> list[int]:
    return [a + b for a, b in zip(mine, theirs, strict=True)]


_sampler = _CpuSampler()
