"""How often a node process runs CPython's cyclic garbage collector, and why.

CPython starts a young collection every 700 net allocations of tracked objects (its
default up to 3.13). A node serving a thousand connections allocates a few such objects
per packet and keeps them while the packet is in flight, so at that pace in-flight
objects are promoted to the old generations faster than they die, and full collections,
each walking every object of every connection, follow about once a second: pauses of the
whole node of 50–70 ms, measured at 1000 echo connections (``bench/gate.py``), which set
its p99 latency there.

From ``YOUNG_THRESHOLD`` allocations per young collection, a packet's objects are freed
by reference counting before a collection sees them and full collections become rare.
Cycles are still collected, a little later: at most that many more objects wait for it.
A node started with ``python -m meshnet node`` uses it (``[node] gc_threshold``);
``open_node`` leaves the interpreter's own unless asked.

The setting is the process's: while several nodes of one process ask for one, the one
that started last wins, and the interpreter's own comes back once none runs.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from meshnet.errors import MeshnetError

YOUNG_THRESHOLD = 10_000
"""Allocations of tracked objects between two young collections, in a node process."""
MAX_THRESHOLD = 2**31 - 1
"""The largest threshold CPython takes."""


class GcThresholdError(MeshnetError, ValueError):
    """A garbage-collection threshold that is not a number of allocations CPython takes."""


def check_threshold(allocations: int) -> int:
    """``allocations`` if it is a threshold CPython takes (1 to ``MAX_THRESHOLD``; 0
    would turn automatic collection off), else ``GcThresholdError``."""
    if type(allocations) is not int or not 1 <= allocations <= MAX_THRESHOLD:
        raise GcThresholdError(
            f"a garbage-collection threshold is 1 to {MAX_THRESHOLD} allocations, "
            f"not {allocations!r}"
        )
    return allocations


@contextmanager
def young_threshold(allocations: int | None) -> Iterator[None]:
    """Run the block with a young collection every ``allocations`` allocations (None:
    leave the collector as it is); the old generations' thresholds are kept. See the
    module docstring for several blocks at once."""
    if allocations is None:
        yield
        return
    check_threshold(allocations)
    global _interpreters
    if not _holders:
        _interpreters = gc.get_threshold()
    holder = object()
    _holders[holder] = allocations
    _apply()
    try:
        yield
    finally:
        del _holders[holder]
        _apply()


def _apply() -> None:
    """The last holder's threshold, or the interpreter's own once there is none."""
    young = next(reversed(_holders.values())) if _holders else _interpreters[0]
    gc.set_threshold(young, *_interpreters[1:])


_holders: dict[object, int] = {}
"""The running blocks that asked for a threshold, oldest first, and theirs."""
_interpreters: tuple[int, ...] = gc.get_threshold()
"""The interpreter's thresholds from before the first of them."""
