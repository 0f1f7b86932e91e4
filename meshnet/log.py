"""Logging with the service address in every record, like skynet's ``[:0100000a]`` prefix.

The address comes from a context variable set in each service's tasks, so every logger
used while a service runs (meshnet's, the game's, a library's) gets it without passing
anything around. Records made outside any service carry the node's address ``:nn000000``.
"""

from __future__ import annotations

import contextvars
import logging
import sys

current_address: contextvars.ContextVar[str] = contextvars.ContextVar(
    "meshnet_current_address", default="-"
)
"""Text address of the service whose task is running, for log records."""

FORMAT = "%(asctime)s %(levelname)-7s [%(address)s] %(name)s: %(message)s"

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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
