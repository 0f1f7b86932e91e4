"""The status page's data: the node now, and the rates of the last minutes.

``StatusHistory`` keeps one point every ``INTERVAL`` seconds for ``POINTS`` points (five
minutes): per-second rates between two readings of messages handled and handler errors
(in all, and per service), gate bytes in and out, login attempts, and the open
connections. ``status_json`` is what ``/status.json`` answers and the page (``status.html``)
draws.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from meshnet.metrics.reading import Reading
from meshnet.node import Node
from meshnet.probes import reported_connections

INTERVAL = 2.0
"""Seconds between two points of the charts."""
POINTS = 150
"""Points kept: five minutes."""
MAX_CONNECTIONS = 100
"""Connections listed on the page (the oldest ones)."""


@dataclass
class Point:
    """The rates between two readings (per second), and the gauges at the second."""

    t: float
    handled: float
    errors: float
    received_bytes: float
    sent_bytes: float
    logins: float
    connections: float
    per_service: dict[str, float] = field(default_factory=dict)
    """Messages handled per second, by the service's key (``class name``)."""


class StatusHistory:
    """The last ``POINTS`` points; ``add`` a reading every ``INTERVAL`` seconds."""

    def __init__(self) -> None:
        self.points: deque[Point] = deque(maxlen=POINTS)
        self._last: Reading | None = None

    def add(self, reading: Reading) -> None:
        """Add the point between the previous reading and ``reading``."""
        last, self._last = self._last, reading
        if last is None:
            return
        seconds = reading.taken - last.taken
        if seconds <= 0:
            return

        def rate(now: float, before: float) -> float:
            return max(now - before, 0.0) / seconds

        before = {service_key(label): t for label, t in last.services.items()}
        per_service = {
            key: rate(t.handled + t.failed, _handled(before.get(key)))
            for key, t in ((service_key(label), t) for label, t in reading.services.items())
        }
        self.points.append(
            Point(
                t=reading.taken,
                handled=rate(_all_handled(reading), _all_handled(last)),
                errors=rate(_all_failed(reading), _all_failed(last)),
                received_bytes=rate(_gate(reading, "received"), _gate(last, "received")),
                sent_bytes=rate(_gate(reading, "sent"), _gate(last, "sent")),
                logins=rate(_logins(reading), _logins(last)),
                connections=reading.sample_total("gate_connections"),
                per_service=per_service,
            )
        )


def status_json(node: Node, reading: Reading, history: StatusHistory) -> bytes:
    """The page's data: the node, its services, gates, connections, login attempts by
    status, and the history of rates."""
    latest = history.points[-1] if history.points else None
    services = [
        {
            "key": service_key(label),
            "class": label[0],
            "name": label[1],
            "instances": t.instances,
            "queued": t.queued,
            "handled": t.handled,
            "failed": t.failed,
            "cpu": round(t.cpu, 2),
            "rate": None if latest is None else latest.per_service.get(service_key(label)),
        }
        for label, t in sorted(reading.services.items())
        if t.instances
    ]
    gates = _gates(reading)
    connections = [
        {
            "fd": row.fd,
            "kind": row.kind,
            "peer": row.peer,
            "received_bytes": row.received_bytes,
            "sent_bytes": row.sent_bytes,
            "unsent_bytes": row.unsent_bytes,
            "idle": round(row.idle, 1),
        }
        for row in reported_connections(node)[:MAX_CONNECTIONS]
    ]
    points = list(history.points)
    data: dict[str, Any] = {
        "node": {"name": node.name, "id": node.id},
        "interval": INTERVAL,
        "services": services,
        "gates": gates,
        "connections": connections,
        "logins": reading.by_label("login_attempts_total", "status"),
        "handshakes": reading.by_label("msgserver_handshakes_total", "status"),
        "history": {
            "t": [round(p.t - points[-1].t, 1) for p in points],
            "handled": [p.handled for p in points],
            "errors": [p.errors for p in points],
            "received_bytes": [p.received_bytes for p in points],
            "sent_bytes": [p.sent_bytes for p in points],
            "logins": [p.logins for p in points],
            "connections": [p.connections for p in points],
            "services": {
                s["key"]: [p.per_service.get(s["key"], 0.0) for p in points] for s in services
            },
        },
    }
    return json.dumps(data).encode()


def service_key(label: tuple[str, str]) -> str:
    """One string for a ``(class, name)``: ``class name`` (just the class without a name)."""
    return f"{label[0]} {label[1]}".rstrip()


def _gates(reading: Reading) -> list[dict[str, Any]]:
    gates: dict[tuple[str, str], dict[str, Any]] = {}
    for family, field_name in (
        ("gate_connections", "connections"),
        ("gate_received_bytes_total", "received_bytes"),
        ("gate_sent_bytes_total", "sent_bytes"),
        ("gate_unsent_bytes", "unsent_bytes"),
    ):
        for label, sample in reading.samples.get(family, ()):
            row = gates.setdefault(label, {"class": label[0], "name": label[1]})
            row[field_name] = row.get(field_name, 0) + sample.value
    return [gates[label] for label in sorted(gates)]


def _handled(totals: Any) -> float:
    return 0.0 if totals is None else totals.handled + totals.failed


def _all_handled(reading: Reading) -> float:
    return sum(t.handled + t.failed for t in reading.services.values())


def _all_failed(reading: Reading) -> float:
    return sum(t.failed for t in reading.services.values())


def _gate(reading: Reading, direction: str) -> float:
    return reading.sample_total(f"gate_{direction}_bytes_total")


def _logins(reading: Reading) -> float:
    return reading.sample_total("login_attempts_total")
