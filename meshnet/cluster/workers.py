"""The ``[cluster]`` section of a node run as ``workers = N`` processes (``meshnet.workers``).

Each worker is a node of the cluster, so each needs its own link port: worker ``i``
listens on ``cluster.listen``'s port + i (and, with Redis discovery, advertises
``cluster.address``'s port + i). With static discovery and neither ``file`` nor
``nodes``, the cluster is the workers themselves: worker ``j`` is the node
``<name>-<j>``, id ``<id> + j``, at that port + j. Without ``secret`` or ``secret_env``,
the workers share the fresh secret their supervisor made.
"""

from __future__ import annotations

from typing import Any

from meshnet.cluster.members import MemberError, parse_host_port
from meshnet.errors import MeshnetError
from meshnet.workers import SECRET_ENV, Worker

LOOPBACK = "127.0.0.1"


class WorkersClusterError(MeshnetError):
    """The ``[cluster]`` section cannot give each worker a link port of its own."""


def worker_table(table: dict[str, Any], worker: Worker) -> dict[str, Any]:
    """The ``[cluster]`` table as worker ``worker`` reads it (see the module docstring)."""
    table = dict(table)
    if "secret" not in table and "secret_env" not in table:
        table["secret_env"] = SECRET_ENV
    static = table.get("discovery", "static") == "static"
    if static and "file" not in table and "nodes" not in table:
        if "listen" not in table:
            raise WorkersClusterError(
                "a cluster of the workers alone needs 'cluster.listen' (host:port of "
                "worker 0's links; worker i listens on port + i), or give the nodes"
            )
        host, port = _hostport(table, "listen")
        dial = LOOPBACK if host in ("0.0.0.0", "::", "") else host
        table["nodes"] = {
            worker.node_name(j): {"address": f"{dial}:{port + j}", "id": worker.node_id(j)}
            for j in range(worker.count)
        }
    for key in ("listen", "address"):
        if key in table:
            host, port = _hostport(table, key)
            if port != 0:
                table[key] = (
                    f"[{host}]:{port + worker.index}"
                    if ":" in host
                    else f"{host}:{port + worker.index}"
                )
    return table


def _hostport(table: dict[str, Any], key: str) -> tuple[str, int]:
    try:
        return parse_host_port(str(table[key]), f"cluster.{key}")
    except MemberError as exc:
        raise WorkersClusterError(str(exc)) from None
