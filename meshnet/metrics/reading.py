"""One reading of a node's figures: what the Prometheus endpoint and the status page show.

Everything is read when asked, from counters the runtime and the services keep
(``meshnet.observe``, ``meshnet.probes``); nothing here runs between two readings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import trio

from meshnet.node import Node
from meshnet.observe import Label, ServiceTotals, label_of
from meshnet.probes import Sample, live_services, reported_samples


@dataclass(frozen=True)
class Reading:
    """The figures of one node at one moment."""

    taken: float
    """trio's clock when it was read."""
    services: dict[Label, ServiceTotals]
    """By ``(class, name)``, those that ended included."""
    samples: dict[str, list[tuple[Label, Sample]]]
    """What services reported (``meshnet.probes``), by family name, with their label."""
    restarts: dict[str, int]
    late_replies: int
    """Answers that came for services no longer alive."""
    undelivered: int
    """Multicast publications a subscriber could not take."""
    slow_handlers: int
    """Times the watchdog found the event loop held past its threshold."""

    def sample_total(self, name: str, **labels: str) -> float:
        """The sum of the samples of family ``name`` that have ``labels``."""
        return sum(
            sample.value
            for _, sample in self.samples.get(name, ())
            if all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def by_label(self, name: str, key: str) -> dict[str, float]:
        """The samples of family ``name`` added up by their label ``key``."""
        totals: dict[str, float] = defaultdict(float)
        for _, sample in self.samples.get(name, ()):
            totals[sample.labels.get(key, "")] += sample.value
        return dict(totals)


def read_node(node: Node) -> Reading:
    """Read every figure of ``node``; it must be observed (``Node.observe``)."""
    observer = node.observe()
    live = live_services(node)
    samples: dict[str, list[tuple[Label, Sample]]] = defaultdict(list)
    for ctx, sample in reported_samples(node):
        samples[sample.name].append((label_of(ctx), sample))
    return Reading(
        taken=trio.current_time(),
        services=observer.totals(live),
        samples=dict(samples),
        restarts=dict(node.restarts),
        late_replies=node.late_replies,
        undelivered=node.multicast.undelivered,
        slow_handlers=0 if node.watchdog is None else node.watchdog.reports,
    )
