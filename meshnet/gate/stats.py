"""What a gate counts about its connections, for the node's metrics and console
(``meshnet.probes``): traffic, connections refused, and why connections ended.

Each connection counts its own bytes and packets; when it ends, the gate adds them to its
totals here, so a figure read at scrape time is these totals plus the open connections'.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator

from meshnet.gate.connection import Connection
from meshnet.probes import ConnectionInfo, Sample

ERROR_KINDS = (
    ("heartbeat", "heartbeat"),
    ("connection lost", "lost"),
    ("more than", "unsent_overflow"),
    ("internal error", "internal"),
    ("agent ", "agent_gone"),
    ("client closed the connection inside a packet", "truncated"),
)
"""How a connection's ``error`` starts -> the kind it is counted as; anything else is the
client breaking the wire protocol (``"protocol"``: an oversized packet, a WebSocket text
message or close code, ...)."""


def error_kind(error: str) -> str:
    """The kind a connection's ``error`` is counted as (see ``ERROR_KINDS``)."""
    for start, kind in ERROR_KINDS:
        if error.startswith(start):
            return kind
    return "protocol"


class GateStats:
    """The counters of one gate."""

    def __init__(self) -> None:
        self.closed = 0
        """Connections that ended."""
        self.received_bytes = 0
        self.received_packets = 0
        self.sent_bytes = 0
        self.sent_packets = 0
        self.errors: Counter[str] = Counter()
        """Connections that ended with an error, or never got going, by kind; the kinds of
        ``error_kind``, plus ``maxclient`` (refused) and ``handshake`` (a WebSocket
        handshake that failed, or a socket that failed before it was served)."""

    def ended(self, connection: Connection) -> None:
        """A connection ended (it is no longer registered): add it to the totals."""
        self.closed += 1
        self.received_bytes += connection.received_bytes
        self.received_packets += connection.received_packets
        self.sent_bytes += connection.sent_bytes
        self.sent_packets += connection.sent_packets
        if connection.error is not None:
            self.errors[error_kind(connection.error)] += 1

    def never_served(self) -> None:
        """A connection failed before it was served (a WebSocket handshake, ...)."""
        self.errors["handshake"] += 1

    def refused(self) -> None:
        """A connection was turned away: ``maxclient`` connections were open."""
        self.errors["maxclient"] += 1

    def samples(self, open_connections: Iterable[Connection]) -> Iterator[Sample]:
        """The gate's figures: these totals plus the open connections'."""
        connections = list(open_connections)
        yield Sample("gate_connections", "gauge", "Open client connections.", len(connections))
        traffic = (
            ("received_bytes", "Payload bytes received from clients (framing not counted)."),
            ("received_packets", "Packets received from clients."),
            ("sent_bytes", "Payload bytes written to clients (framing not counted)."),
            ("sent_packets", "Packets written to clients."),
        )
        for field, help_text in traffic:
            total = getattr(self, field) + sum(getattr(c, field) for c in connections)
            yield Sample(f"gate_{field}_total", "counter", help_text, total)
        unsent = sum(c.unsent for c in connections)
        yield Sample("gate_unsent_bytes", "gauge", "Bytes written but not yet sent.", unsent)
        for kind, count in sorted(self.errors.items()):
            yield Sample(
                "gate_errors_total",
                "counter",
                "Connections that ended with an error or were refused, by kind.",
                count,
                {"kind": kind},
            )


def connection_info(connection: Connection) -> ConnectionInfo:
    """``connection`` as the console's ``netstat`` shows it."""
    return ConnectionInfo(
        fd=connection.fd,
        gate=connection.gate,
        kind=connection.transport.kind,
        peer=connection.peer,
        received_bytes=connection.received_bytes,
        sent_bytes=connection.sent_bytes,
        unsent_bytes=connection.unsent,
        idle=time.monotonic() - connection.last_received,
        agent=connection.agent,
    )
