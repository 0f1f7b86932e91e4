"""Which worker this process is, when a node runs as ``workers = N`` processes.

A config with ``[node] workers = N`` (N > 1) makes ``meshnet node`` a supervisor
(``meshnet.supervisor``) that starts N worker processes of the same config. Each worker is
a node of its own: worker ``i`` is named ``<name>-<i>`` with id ``<id> + i`` (i from 0),
its console and metrics listen on their configured port + i, and every client-facing
listener (gates, login server, web) shares its port with the other workers through
``SO_REUSEPORT``, so the kernel spreads new connections over them.

The supervisor tells each worker who it is in the environment variable ``MESHNET_WORKER``
(JSON: ``{"index": i, "count": N, "name": "<name>", "id": <id>}``), and gives them a
cluster secret of its own in ``MESHNET_WORKER_SECRET`` for a ``[cluster]`` section that
names none.

State that must be unique in the cluster is split by key: ``owner_index(key)`` is the
worker that owns a key (a user name, say), the same in every worker and across restarts.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import zlib
from dataclasses import dataclass

from meshnet.errors import MeshnetError

logger = logging.getLogger(__name__)

WORKER_ENV = "MESHNET_WORKER"
"""Set by the supervisor in each worker's environment: who the worker is (JSON)."""
SECRET_ENV = "MESHNET_WORKER_SECRET"
"""Set by the supervisor: a fresh cluster secret the workers share, for a ``[cluster]``
section without ``secret`` or ``secret_env``."""
READY_FD_ENV = "MESHNET_READY_FD"
"""If set, the number of a file descriptor (a pipe the parent process made) on which a
node writes ``ready`` once its start service is up, then closes it: a launcher learns that
this very process listens (and not another one on the same ports). A supervisor writes it
once all its workers are up."""
LIFELINE_ENV = "MESHNET_LIFELINE_FD"
"""Set by the supervisor: a pipe's read end in each worker; end-of-file on it means the
supervisor is gone, and the worker stops."""
MAX_WORKERS = 64


class WorkerError(MeshnetError):
    """``MESHNET_WORKER`` is malformed (it is set by the supervisor, not by hand)."""


@dataclass(frozen=True)
class Worker:
    """One worker of a node run as several processes."""

    index: int
    """0 .. count - 1."""
    count: int
    name: str
    """The configured node name; this worker's node is ``node_name(index)``."""
    id: int
    """The configured node id, that of worker 0."""

    def node_name(self, index: int | None = None) -> str:
        """The node name of worker ``index`` (default: this one)."""
        return f"{self.name}-{self.index if index is None else index}"

    def node_id(self, index: int | None = None) -> int:
        """The node id of worker ``index`` (default: this one)."""
        return self.id + (self.index if index is None else index)

    def owner(self, key: str) -> str:
        """The node name of the worker that owns ``key``."""
        return self.node_name(owner_index(key, self.count))

    def to_env(self) -> str:
        """The value of ``MESHNET_WORKER`` that makes a process this worker."""
        return json.dumps(
            {"index": self.index, "count": self.count, "name": self.name, "id": self.id}
        )


def current_worker() -> Worker | None:
    """This process's worker, or None when it is not one (a node of its own)."""
    text = os.environ.get(WORKER_ENV)
    return _parse(text) if text else None


@functools.lru_cache(maxsize=4)
def _parse(text: str) -> Worker:
    try:
        fields = json.loads(text)
        worker = Worker(
            int(fields["index"]), int(fields["count"]), str(fields["name"]), int(fields["id"])
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise WorkerError(f"{WORKER_ENV}={text!r} is not a worker description: {exc}") from None
    if not 0 <= worker.index < worker.count:
        raise WorkerError(f"{WORKER_ENV}={text!r}: index out of range")
    return worker


def owner_index(key: str, count: int) -> int:
    """The worker (0 .. count - 1) owning ``key``: a hash every process computes alike
    (CRC-32 of its UTF-8, not Python's ``hash``, which differs between processes)."""
    return zlib.crc32(key.encode()) % count


def owner_node(key: str) -> str | None:
    """The node name of the worker owning ``key``; None when this process is not a worker."""
    worker = current_worker()
    return None if worker is None else worker.owner(key)


def shared_ports() -> bool:
    """True in a worker: client-facing listeners share their port with the other workers."""
    return current_worker() is not None


def notify_ready() -> None:
    """Write ``ready`` on ``MESHNET_READY_FD`` and close it, if the launcher gave one."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"ready\n")
        os.close(int(fd))
    except (ValueError, OSError) as exc:
        logger.warning("%s=%s: could not say the node is ready: %s", READY_FD_ENV, fd, exc)
