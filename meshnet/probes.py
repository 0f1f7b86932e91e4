"""What services report about themselves to the node's metrics and debug console.

The core never imports the packages above it, so it cannot ask a gate for its
connections by name. Instead a service class may define either method below, and the
metrics endpoint and the console call it on every live service that has it:

``metric_samples(self) -> Iterable[Sample]``
    figures of the service's own (the gate's bytes and connections, the login server's
    attempts by status); the metrics add the service's ``class`` and ``name`` labels
``connection_rows(self) -> Iterable[ConnectionInfo]``
    its open client connections, for the console's ``netstat`` and the status page

Both are plain methods called from the event loop: they must return at once, reading
counters the service keeps, without awaiting or doing I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from meshnet.context import ServiceContext
    from meshnet.node import Node

METRIC_SAMPLES = "metric_samples"
CONNECTION_ROWS = "connection_rows"


@dataclass(frozen=True, slots=True)
class Sample:
    """One figure for the metrics: ``name`` is the Prometheus family without the
    ``meshnet_`` prefix (a counter's ends in ``_total``), ``labels`` its own labels
    besides ``class`` and ``name``."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One open client connection, as ``netstat`` shows it."""

    fd: int
    gate: int
    """Address of the gate service that owns it."""
    kind: str
    """``"tcp"`` or ``"ws"``."""
    peer: str
    received_bytes: int
    sent_bytes: int
    unsent_bytes: int
    """Written but not yet handed to the operating system."""
    idle: float
    """Seconds since a packet last came in (or since it connected)."""
    agent: int | str | None = None
    """The service (address or name) its packets are forwarded to, if any."""


def reported_samples(node: Node) -> Iterator[tuple[ServiceContext, Sample]]:
    """Every sample every live service reports, with the service that reported it."""
    for ctx in _reporting(node, METRIC_SAMPLES):
        for sample in getattr(ctx.instance, METRIC_SAMPLES)():
            yield ctx, sample


def reported_connections(node: Node) -> list[ConnectionInfo]:
    """Every open connection the live services report, by fd."""
    rows = [
        row
        for ctx in _reporting(node, CONNECTION_ROWS)
        for row in getattr(ctx.instance, CONNECTION_ROWS)()
    ]
    return sorted(rows, key=lambda row: row.fd)


def live_services(node: Node) -> list[ServiceContext]:
    """The runtime state of the node's live services, oldest first."""
    return [ctx for ctx in map(node.context_of, node.services()) if ctx is not None]


def _reporting(node: Node, method: str) -> Iterator[ServiceContext]:
    for ctx in live_services(node):
        if callable(getattr(type(ctx.instance), method, None)):
            yield ctx
