"""The heartbeat of a gate's connections: one deadline over each whole connection.

A connection that sends no complete packet for ``period`` seconds is closed, whatever it
is doing meanwhile: waiting for data, paused while its requests are in flight, or inside a
hook (which is not cancelled: the connection ends once the hook returns, see
``meshnet.gate.connection``). One task per gate watches every connection: each read that
brings packets moves its connection to the back of an ordered dict, so the front is
always the one due first, and the task sleeps until then. A packet costs a dict move, not
a timer of its own. The msgserver uses one more for its handshake deadline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from meshnet.gate.connection import Connection


class Heartbeats:
    """When each connection of one gate last sent a complete packet; ``run`` closes the
    ones silent for longer than ``period``, giving ``reason`` (``{period}`` is filled in);
    with ``abort``, at once, dropping what they had not been sent yet."""

    def __init__(
        self,
        period: float,
        reason: str = "heartbeat: no packet received for {period:g}s",
        *,
        abort: bool = False,
    ) -> None:
        self.period = period
        self.reason = reason
        self.abort = abort
        self._last: dict[Connection, float] = {}
        """Connection -> when its last packet came, oldest first."""
        self._changed = trio.Event()

    def __len__(self) -> int:
        return len(self._last)

    def touch(self, connection: Connection) -> None:
        """``connection`` just sent packets (or was let in): its deadline starts again."""
        last = self._last
        if not last:
            self._changed.set()
        last.pop(connection, None)
        last[connection] = trio.current_time()

    def forget(self, connection: Connection) -> None:
        """``connection`` ended (or needs watching no more)."""
        self._last.pop(connection, None)

    def oldest(self) -> Connection | None:
        """The connection due first, if any."""
        return next(iter(self._last), None)

    async def run(self) -> None:
        """Close connections as their deadlines pass, forever."""
        last = self._last
        while True:
            if not last:
                self._changed = trio.Event()
                await self._changed.wait()
                continue
            connection, since = next(iter(last.items()))
            due = since + self.period
            if trio.current_time() < due:
                await trio.sleep_until(due)
                continue
            del last[connection]
            connection.close(self.reason.format(period=self.period), abort=self.abort)
