"""What a ``Link`` (to a meshnet node) and a ``SkynetPeer`` (to a skynet node) share: the
state of the one connection each keeps to its peer, the backoff between attempts, and
how a connection ends.

The state is ``connecting`` until the first connection is up, then ``up`` or ``down``
(with ``down_reason``). A connection is served inside a cancel scope (``_serving``);
``_end(reason)`` cancels it, and the first reason given is the one the connection ended
for. Attempts after a failure wait a random time in [0.5, 1] × ``BACKOFF_FIRST`` ×
2^(failures - 1), at most ``BACKOFF_MAX`` seconds.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from meshnet.cluster.members import Member

CONNECTING, UP, DOWN = "connecting", "up", "down"
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 5.0


class PeerConnection:
    """The connection state of a link or peer to ``member``; see the module docstring.
    ``what`` names the connection in log lines (``link to``)."""

    what = "connection to"

    def __init__(self, member: Member, logger: logging.Logger) -> None:
        self.member = member
        self.state = CONNECTING
        self.down_reason = "not connected yet"
        self._logger = logger
        self._up = trio.Event()
        self._failures = 0
        self._serving: trio.CancelScope | None = None
        self._end_reason: str | None = None

    async def wait_up(self) -> None:
        """Wait until the connection is up (the caller bounds the wait)."""
        while self.state != UP:
            await self._up.wait()

    # --- helpers for the subclasses ------------------------------------------------------

    def _backoff(self) -> float:
        """Seconds to wait before the next attempt to connect."""
        if not self._failures:
            return 0.0
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
        return delay * random.uniform(0.5, 1.0)

    def _mark_up(self) -> None:
        self.state = UP
        self._failures = 0
        self._end_reason = None
        self._up.set()
        self._logger.info("%s %s is up", self.what, self.member.name)

    def _end(self, reason: str) -> None:
        if self._end_reason is None:
            self._end_reason = reason
        if self._serving is not None:
            self._serving.cancel()

    def _mark_down(self, reason: str) -> None:
        """Say the connection is down (a warning if it was up), and count the failure."""
        (self._logger.warning if self.state == UP else self._logger.info)(
            "%s %s is down: %s", self.what, self.member.name, reason
        )
        self.state, self.down_reason = DOWN, reason
        self._failures += 1
        if self._up.is_set():  # a new one for the next connection (none waits on a set one)
            self._up = trio.Event()
