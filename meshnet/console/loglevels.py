"""Per-service log levels, for the console's ``log ADDR LEVEL``.

Every record carries its service's address (``meshnet.log``). A filter on the root
logger's handlers passes a record if it reaches its service's own level, or the node's
level for services without one; the root logger's level is lowered to the lowest level
asked for, so that records below the node's level are made at all. While any service has
a level below the node's, every ``logger.debug`` of the process makes a record that the
filter may then drop: set it back (``log ADDR default``) when done.
"""

from __future__ import annotations

import logging

DEFAULT = "default"
"""The level word that drops a service's own level."""


class ServiceLevels(logging.Filter):
    """The levels of the services that have their own; install once per process."""

    def __init__(self) -> None:
        super().__init__()
        self.levels: dict[str, int] = {}
        """Service address (``:0100000a``) -> its level."""
        self.node_level = logging.getLogger().level
        """The root level when the first service got its own; the level of the others."""

    def set(self, address: str, level: str) -> None:
        """Give the service at ``address`` its own ``level`` (a name, or ``DEFAULT``)."""
        root = logging.getLogger()
        if not self.levels:
            self.node_level = root.level
            for handler in root.handlers:
                if self not in handler.filters:
                    handler.addFilter(self)
        if level == DEFAULT:
            self.levels.pop(address, None)
        else:
            self.levels[address] = parse_level(level)
        root.setLevel(min([self.node_level, *self.levels.values()]))

    def filter(self, record: logging.LogRecord) -> bool:
        """True if ``record`` reaches its service's level."""
        if not self.levels:
            return True  # nothing asked for: the handlers' own levels decide
        address = getattr(record, "address", None)
        return record.levelno >= self.levels.get(address, self.node_level)  # type: ignore[arg-type]


def parse_level(name: str) -> int:
    """The number of level ``name`` (``DEBUG``, ``info``, ...); ``ValueError`` if none."""
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ValueError(
            f"{name!r} is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL or {DEFAULT})"
        )
    return level


service_levels = ServiceLevels()
"""The process's one filter."""
