"""The ``[cluster]`` section of a node config (registered in pyproject.toml)."""

from __future__ import annotations

from meshnet.cluster.config import parse_cluster
from meshnet.cluster.start import start
from meshnet.sections import Section

CLUSTER = Section(parse=parse_cluster, start=start)
