"""The node's figures as Prometheus metric families (``prometheus_client``'s custom
collector), built from one ``Reading`` per scrape.

Per-service families carry the labels ``class`` (``package.module:Class``) and ``name``
(its registered names, comma-separated, empty if none); never an address or a user, so
a series per agent cannot happen. Families:

``meshnet_services``                        live instances (gauge)
``meshnet_mailbox_messages``                messages waiting in their mailboxes (gauge)
``meshnet_pending_calls``                   calls they wait on (gauge)
``meshnet_tasks``                           their workers and forked tasks (gauge)
``meshnet_messages_handled_total``          messages handled, by ``outcome`` ok / error
``meshnet_messages_sent_total``             calls, sends and posts they made
``meshnet_call_errors_total``               their calls that raised, by ``kind``
``meshnet_late_replies_total``              answers that came after the call gave up
``meshnet_handler_seconds``                 handler latency, start to answer (histogram;
                                            a sample, see ``meshnet.observe``)
``meshnet_cpu_seconds_total``               CPU time seen running them (sampled)
``meshnet_restarts_total``                  restarts by a restart policy (label ``class``)
``meshnet_node_late_replies_total``, ``meshnet_multicast_undelivered_total``,
``meshnet_slow_handlers_total``             node-wide counters

plus whatever services report (``meshnet.probes``: ``meshnet_gate_*``,
``meshnet_login_*``, ``meshnet_msgserver_*``), and the process and Python collectors of
``prometheus_client`` (``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
``python_gc_*``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from meshnet.metrics.reading import Reading, read_node
from meshnet.node import Node
from meshnet.observe import ServiceTotals

PREFIX = "meshnet_"
SERVICE_LABELS = ["class", "name"]
LATENCY_BUCKET_BITS = range(0, 25, 2)
"""Histogram bucket bounds, as bit lengths of microseconds: 1 us, 4 us, 16 us, ... 16.8 s."""

_GAUGES: list[tuple[str, str, Callable[[ServiceTotals], float]]] = [
    ("services", "Live services.", lambda t: t.instances),
    ("mailbox_messages", "Messages waiting in the services' mailboxes.", lambda t: t.queued),
    ("pending_calls", "Calls the services are waiting on.", lambda t: t.pending_calls),
    ("tasks", "Workers and forked tasks of the services.", lambda t: t.tasks),
]
_COUNTERS: list[tuple[str, str, Callable[[ServiceTotals], float]]] = [
    ("messages_sent", "Calls, sends and posts the services made.", lambda t: t.sent),
    ("late_replies", "Answers that came after their call had given up.", lambda t: t.late_replies),
    ("cpu_seconds", "CPU time the sampler saw the services run.", lambda t: t.cpu),
]


def node_registry(node: Node) -> CollectorRegistry:
    """A registry with the node's collector and prometheus_client's process, platform and
    garbage-collector ones (a registry of its own: several nodes may share a process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class NodeCollector(Collector):
    """Collects the families of the module docstring from ``node`` at each scrape."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        """The families, read now."""
        reading = read_node(self.node)
        yield from _service_families(reading)
        yield from _node_families(reading)
        yield from _reported_families(reading)


def _service_families(reading: Reading) -> Iterator[Metric]:
    rows = sorted(reading.services.items())
    for name, help_text, value in _GAUGES:
        family = GaugeMetricFamily(PREFIX + name, help_text, labels=SERVICE_LABELS)
        for label, totals in rows:
            family.add_metric(list(label), value(totals))
        yield family
    handled = CounterMetricFamily(
        PREFIX + "messages_handled",
        "Messages the services handled, by outcome (error: the handler raised).",
        labels=[*SERVICE_LABELS, "outcome"],
    )
    errors = CounterMetricFamily(
        PREFIX + "call_errors",
        "Calls of the services that raised, by the error's class.",
        labels=[*SERVICE_LABELS, "kind"],
    )
    latency = HistogramMetricFamily(
        PREFIX + "handler_seconds",
        "Handler latency, from its start to its answer: every handler of a quiet service, "
        "a sample of a busy one's.",
        labels=SERVICE_LABELS,
    )
    for label, totals in rows:
        handled.add_metric([*label, "ok"], totals.handled)
        handled.add_metric([*label, "error"], totals.failed)
        for kind, count in sorted(totals.call_errors.items()):
            errors.add_metric([*label, kind], count)
        latency.add_metric(list(label), _buckets(totals.latency), totals.latency_sum)
    yield from (handled, errors, latency)
    for name, help_text, value in _COUNTERS:
        family = CounterMetricFamily(PREFIX + name, help_text, labels=SERVICE_LABELS)
        for label, totals in rows:
            family.add_metric(list(label), value(totals))
        yield family


def _node_families(reading: Reading) -> Iterator[Metric]:
    restarts = CounterMetricFamily(
        PREFIX + "restarts", "Services restarted by their restart policy.", labels=["class"]
    )
    for cls, count in sorted(reading.restarts.items()):
        restarts.add_metric([cls], count)
    yield restarts
    node_counters = (
        ("node_late_replies", "Answers that came for services no longer alive.", "late_replies"),
        ("multicast_undelivered", "Publications a subscriber could not take.", "undelivered"),
        (
            "slow_handlers",
            "Times a handler held the event loop past the threshold.",
            "slow_handlers",
        ),
    )
    for name, help_text, attribute in node_counters:
        yield CounterMetricFamily(PREFIX + name, help_text, value=getattr(reading, attribute))


def _reported_families(reading: Reading) -> Iterator[Metric]:
    for name, samples in sorted(reading.samples.items()):
        first = samples[0][1]
        extra = sorted(first.labels)
        kind = CounterMetricFamily if first.kind == "counter" else GaugeMetricFamily
        family = kind(PREFIX + name, first.help, labels=[*SERVICE_LABELS, *extra])
        added: dict[tuple[str, ...], float] = {}
        for label, sample in samples:
            key = (*label, *(sample.labels.get(k, "") for k in extra))
            added[key] = added.get(key, 0.0) + sample.value
        for key, value in added.items():
            family.add_metric(list(key), value)
        yield family


def _buckets(counts: list[int]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs from counts by bit length of microseconds: a
    duration under ``2**k`` us has a bit length of at most ``k``."""
    buckets = [
        (repr(2**bits / 1e6), float(sum(counts[: bits + 1]))) for bits in LATENCY_BUCKET_BITS
    ]
    return [*buckets, ("+Inf", float(sum(counts)))]
