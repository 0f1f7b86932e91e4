"""Logging with the service address in every record, like skynet's ``[:0100000a]`` prefix.

The address comes from a context variable set in each service's tasks, so every logger
used while a service runs (meshnet's, the game's, a library's) gets it without passing
anything around. Records made outside any service carry the node's address ``:nn000000``.

The node's handler also holds back floods (``RepeatLimit``): a client that makes the same
warning fire thousands of times a second must not drown the log or the disk.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Callable

current_address: contextvars.ContextVar[str] = contextvars.ContextVar(
    "meshnet_current_address", default="-"
)
"""Text address of the service whose task is running, for log records."""

FORMAT = "%(asctime)s %(levelname)-7s [%(address)s] %(name)s: %(message)s"
REPEAT_PERIOD = 10.0
"""Seconds over which the records of one logging call are counted."""
REPEAT_BURST = 5
"""Records of one logging call shown per period; the rest are counted, not shown."""

_installed = False


def install_record_factory() -> None:
    """Give every LogRecord an ``address`` attribute from ``current_address``. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.address = current_address.get()
        return record

    logging.setLogRecordFactory(factory)


def configure(level: str | int = "INFO") -> None:
    """Send records to stderr in meshnet's format; used by the node command."""
    install_record_factory()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RepeatLimit())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class RepeatLimit(logging.Filter):
    """Shows at most ``burst`` records of one logging call (same logger, level and message
    template, whatever the arguments) per ``period`` seconds; the first one shown after
    some were held back says how many. DEBUG records always pass (they are asked for).
    """

    MAX_KEYS = 4096
    """Logging calls tracked at once; past it, those whose period ended are forgotten."""

    def __init__(
        self,
        period: float = REPEAT_PERIOD,
        burst: int = REPEAT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.period = period
        self.burst = burst
        self._clock = clock
        self._counts: dict[tuple[str, int, str], _Count] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True to show ``record`` (with the count held back before it, if any)."""
        if record.levelno <= logging.DEBUG:
            return True
        now = self._clock()
        key = (record.name, record.levelno, str(record.msg))
        count = self._counts.get(key)
        if count is None:
            if len(self._counts) >= self.MAX_KEYS:
                self._forget_ended(now)
                if len(self._counts) >= self.MAX_KEYS:
                    return True  # thousands of distinct messages: none is a repeat
            count = self._counts[key] = _Count(now)
        elif now - count.started >= self.period:
            count.started, count.shown = now, 0
        if count.shown >= self.burst:
            count.held_back += 1
            return False
        count.shown += 1
        if count.held_back:
            record.msg = (
                f"{record.getMessage()} [{count.held_back} more like this not logged "
                f"since the last one shown]"
            )
            record.args = ()
            count.held_back = 0
        return True

    def _forget_ended(self, now: float) -> None:
        ended = [key for key, c in self._counts.items() if now - c.started >= self.period]
        for key in ended:
            del self._counts[key]


class _Count:
    __slots__ = ("started", "shown", "held_back")

    def __init__(self, started: float) -> None:
        self.started = started
        self.shown = 0
        self.held_back = 0
