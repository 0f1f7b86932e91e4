"""A connection's packet budget: at most ``rate`` packets a second, ``rate`` at once.

A token bucket: a second's worth of packets may come at once, then one every 1/``rate``
seconds. The gate takes one per packet before handing it over; when none is left it stops
reading the connection until one is (the client's sends then wait in its socket, TCP's own
backpressure). So however fast a client sends, it costs the node no more than ``rate``
packets' worth of work a second, and a few flooding clients cannot keep the node's CPU
busy, which on a loaded machine would delay everyone's answers by whole scheduler slices.
"""

from __future__ import annotations

import trio


class PacketBudget:
    """The packets one connection may still send now."""

    __slots__ = ("rate", "_left", "_at")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._left = rate
        self._at = trio.current_time()

    def take(self) -> float:
        """Count one packet; return 0 if it may go now, else the seconds to wait first."""
        now = trio.current_time()
        left = min(self.rate, self._left + (now - self._at) * self.rate) - 1
        self._left, self._at = left, now
        return 0.0 if left >= 0 else -left / self.rate

    def ready(self) -> bool:
        """True if a packet may go now (``take`` would return 0); counts nothing."""
        left = self._left + (trio.current_time() - self._at) * self.rate
        return left >= 1
