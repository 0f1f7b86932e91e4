"""The node-wide registry of client connections, so any service can write to one directly.

skynet's socket ids are public to the whole node: an agent writes its replies straight to
the client's socket instead of sending them through the gate. meshnet does the same: each
gate registers its connections here under an ``fd`` that is unique on the node and never
reused, and any service on the node may write to it without a message hop::

    clients = connections(self.node)
    clients.write(fd, b"payload")     # framed and sent, never waits; False if it is gone

A service on another node goes through the gate's commands instead (``write``, ``kick``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from meshnet.gate.connection import UnsentTotal

if TYPE_CHECKING:
    from meshnet.gate.connection import Connection
    from meshnet.node import Node


def connections(node: Node) -> ConnectionRegistry:
    """The connection registry of ``node`` (created on first use)."""
    registry = _registries.get(node)
    if registry is None:
        registry = _registries[node] = ConnectionRegistry()
    return registry


class ConnectionRegistry:
    """Every open client connection of one node, by fd and by gate."""

    def __init__(self) -> None:
        self.unsent = UnsentTotal()
        """The unsent bytes of all the node's connections, and the cap on them."""
        self._by_fd: dict[int, Connection] = self.unsent.connections
        self._by_gate: dict[int, dict[int, Connection]] = {}
        self._last_fd = 0

    def __len__(self) -> int:
        return len(self._by_fd)

    def get(self, fd: int) -> Connection | None:
        """The open connection ``fd``, or None."""
        return self._by_fd.get(fd)

    def write(self, fd: int, payload: bytes) -> bool:
        """Send one packet to connection ``fd`` without waiting; False if it is closed."""
        connection = self._by_fd.get(fd)
        return connection is not None and connection.write(payload)

    def write_many(self, fds: Iterable[int], payload: bytes) -> int:
        """Send the same packet to each connection; return how many took it."""
        get = self._by_fd.get
        sent = 0
        for fd in fds:
            connection = get(fd)
            if connection is not None and connection.write(payload):
                sent += 1
        return sent

    def close(self, fd: int) -> bool:
        """Close connection ``fd`` once what was written to it is sent; False if unknown."""
        connection = self._by_fd.get(fd)
        if connection is None:
            return False
        connection.close()
        return True

    def of_gate(self, gate: int) -> list[int]:
        """The fds of every open connection of the gate at address ``gate``."""
        return list(self._by_gate.get(gate, ()))

    # --- for gates ------------------------------------------------------------------

    def new_fd(self) -> int:
        """A connection number no connection of this node has had yet."""
        self._last_fd += 1
        return self._last_fd

    def add(self, connection: Connection) -> None:
        """Register an open connection, by number and by gate."""
        self._by_fd[connection.fd] = connection
        self._by_gate.setdefault(connection.gate, {})[connection.fd] = connection

    def remove(self, connection: Connection) -> None:
        """Forget a closed connection (nothing happens if it is not registered)."""
        self._by_fd.pop(connection.fd, None)
        of_gate = self._by_gate.get(connection.gate)
        if of_gate is not None:
            of_gate.pop(connection.fd, None)
            if not of_gate:
                del self._by_gate[connection.gate]


_registries: weakref.WeakKeyDictionary[Node, ConnectionRegistry] = weakref.WeakKeyDictionary()
