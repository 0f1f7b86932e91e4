"""The node's metrics: a Prometheus endpoint and a live status page (``MetricsServer``).

A node config's ``metrics = "127.0.0.1:9100"`` starts it. ``/metrics`` has per-service
figures labelled by class and registered name (``meshnet.metrics.collector`` lists the
families), what gates and login servers report about themselves (``meshnet.probes``),
and the process's; ``/`` is a page an operator can leave open.
"""

from meshnet.metrics.server import MetricsServer

__all__ = ["MetricsServer"]
