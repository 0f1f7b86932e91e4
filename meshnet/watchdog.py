"""Slow-handler detection (skynet's endless-loop monitor): a handler that holds the event
loop longer than a threshold is logged with its service's address, what it was handling
and a stack trace of where it is stuck.

A task of the node *beats*: it notes the time, sleeps ``interval`` seconds, and again. A
thread checks the beat every ``interval``: when none came for ``threshold`` seconds past
its due time, nothing else could run all that while (trio runs one step of one task at a
time), so whatever runs now is holding the loop. The thread reads the loop thread's stack
(``meshnet.frames``), logs it once at ERROR, and once the beats resume, says how long the
loop was held. A handler that awaits, however long, lets the beat through and is never
reported; nor does any of this cost the handlers anything.

The stack is read in the interpreter's own thread switches: code that holds the GIL
without switching (a long C call) is reported only once it returns, if at all.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import FrameType

import trio

from meshnet.frames import format_frames, running
from meshnet.log import current_address

logger = logging.getLogger(__name__)

DEFAULT_SLOW_HANDLER = 5.0
"""Seconds a step of a handler may hold the event loop before it is reported."""
MAX_INTERVAL = 0.5
"""Seconds between beats (and checks) at most; shorter for short thresholds."""


class Watchdog:
    """Watches the event loop of the trio thread that calls ``run``."""

    def __init__(self, threshold: float = DEFAULT_SLOW_HANDLER) -> None:
        if not threshold > 0:
            raise ValueError(f"the slow-handler threshold must be positive, not {threshold!r}")
        self.threshold = threshold
        self.interval = min(threshold / 4, MAX_INTERVAL)
        self.checks = 0
        """Checks the thread has made so far."""
        self.reports = 0
        """Times the loop was found held past the threshold."""
        self._beat = time.monotonic()
        self._stopped = threading.Event()

    async def run(self) -> None:
        """Beat until cancelled, with the checking thread running alongside."""
        loop_thread = threading.get_ident()
        thread = threading.Thread(
            target=self._watch, args=(loop_thread,), name="meshnet-watchdog", daemon=True
        )
        thread.start()
        try:
            while True:
                self._beat = time.monotonic()
                await trio.sleep(self.interval)
        finally:
            self._stopped.set()  # the thread sees it within one interval

    def _watch(self, loop_thread: int) -> None:
        reported: float | None = None
        """The last beat before the loop was found held, until the next one comes."""
        while not self._stopped.wait(self.interval):
            self.checks += 1
            beat = self._beat
            if reported is not None:
                if beat == reported:
                    continue
                held = beat - reported - self.interval
                logger.warning("the event loop ran again after being held for %.1fs", held)
                reported = None
            held = time.monotonic() - beat - self.interval
            if held > self.threshold:
                reported = beat
                self.reports += 1
                self._report(sys._current_frames().get(loop_thread), held)

    def _report(self, frame: FrameType | None, held: float) -> None:
        found = running(frame)
        trace = format_frames(found.frames) or "  (no Python frame)"
        ctx = found.service
        current_address.set("-" if ctx is None else ctx.label)  # this thread's own context
        if ctx is None:
            logger.error(
                "the event loop has been held for %.1fs outside any service, at:\n%s",
                held,
                trace,
            )
            return
        logger.error(
            "slow handler: %s (%s) has held the event loop for %.1fs, running %s, at:\n%s",
            ctx.label,
            type(ctx.instance).__qualname__,
            held,
            found.doing,
            trace,
        )
