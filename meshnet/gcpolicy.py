"""How often a node process runs CPython's cyclic garbage collector, and why.

CPython starts a young collection every 700 net allocations of tracked objects. A node
serving a thousand connections allocates a few such objects per packet and keeps them
while the packet is in flight, so at that pace in-flight objects are promoted to the old
generations faster than they die, and full collections, each walking every object of
every connection, follow about once a second: pauses of the whole node of 50–70 ms,
measured at 1000 echo connections (``bench/gate.py``), which set its p99 latency there.

From ``YOUNG_THRESHOLD`` allocations per young collection, a packet's objects are freed
by reference counting before a collection sees them and full collections become rare.
Cycles are still collected, a little later: at most that many more objects wait for it.
A node started with ``python -m meshnet node`` uses it (``[node] gc_threshold``);
``open_node`` leaves the interpreter's own unless asked, and puts it back at the end.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000
"""Allocations of tracked objects between two young collections, in a node process."""


@contextmanager
def young_threshold(allocations: int | None) -> Iterator[None]:
    """Run the block with a young collection every ``allocations`` allocations (None:
    leave the collector as it is); the old thresholds are kept. Restores them after."""
    if allocations is None:
        yield
        return
    previous = gc.get_threshold()
    gc.set_threshold(allocations, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
