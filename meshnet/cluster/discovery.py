"""How a node learns the cluster's members and its cluster-wide names.

``StaticDiscovery`` is the embedded default: the ``[cluster.nodes]`` table of the node's
config, or a cluster file like skynet's ``clustername.lua``, reloadable at run time. The
cluster (cluster.py) asks a discovery for members by name and by id, and for the node
a cluster-wide name lives on; it calls ``on_change`` after each change of the view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import trio

from meshnet.cluster.config import ClusterConfig, parse_members, read_cluster_file
from meshnet.cluster.members import Member
from meshnet.errors import NodeDown

Changed = Callable[[set[str]], None]
"""Told the names of the nodes whose entry appeared, changed or went."""


class Discovery(Protocol):
    """The cluster's view of itself, as one node holds it."""

    on_change: Changed | None
    """Told which nodes changed (the cluster restarts their links)."""

    def member(self, name: str) -> Member | None:
        """The node called ``name``, or None if the view has no such node."""
        ...

    def member_by_id(self, node_id: int) -> Member | None:
        """The node with id ``node_id``, or None."""
        ...

    def members(self) -> Iterable[Member]:
        """Every node of the view."""
        ...

    def home_of(self, name: str) -> str | None:
        """The node a cluster-wide ``name`` lives on, or None if it is not known."""
        ...

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Join (claim this node's id and name, where discovery holds them; raise a
        ``MeshnetError`` before ``task_status.started()`` if that fails), then keep the
        view current for as long as the node is in the cluster, telling ``on_change``."""
        ...

    async def announce(self, name: str) -> None:
        """Make ``name`` (registered on this node) a cluster-wide name, if the discovery
        holds names; ``ClusterNameError`` if another node has it."""
        ...

    async def withdraw(self, name: str) -> None:
        """This node no longer has the cluster-wide ``name``."""
        ...

    async def owner_of(self, key: str) -> str:
        """The node that runs (or is to start) the cluster's one service ``key``."""
        ...


class StaticDiscovery:
    """Members and names from the config, or from a cluster file that ``reload`` rereads."""

    def __init__(self, config: ClusterConfig, on_change: Changed | None = None) -> None:
        self._file: Path | None = config.file
        self.on_change = on_change
        """Told which nodes changed after a reload."""
        self._members: dict[str, Member] = dict(config.nodes)
        self._by_id = _by_id(self._members.values())
        self._names = dict(config.names)

    def member(self, name: str) -> Member | None:
        """The node called ``name`` in the file or table, or None."""
        return self._members.get(name)

    def member_by_id(self, node_id: int) -> Member | None:
        """The node with id ``node_id``, or None."""
        return self._by_id.get(node_id)

    def members(self) -> Iterable[Member]:
        """Every listed node, absent ones included."""
        return self._members.values()

    def home_of(self, name: str) -> str | None:
        """The node ``[names]`` gives for the cluster-wide ``name``, or None."""
        return self._names.get(name)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Nothing to claim or keep: the view changes only with ``reload``."""
        task_status.started()

    async def announce(self, name: str) -> None:
        """Cluster-wide names come from the file's ``[names]``: nothing to announce."""

    async def withdraw(self, name: str) -> None:
        """Cluster-wide names come from the file's ``[names]``: nothing to withdraw."""

    async def owner_of(self, key: str) -> str:
        """The listed meshnet node with the lowest id that is not absent: the same
        answer on every node of the same file."""
        present = [m for m in self._members.values() if not m.absent and m.id is not None]
        if not present:
            raise NodeDown(key, "no node of the cluster is present")
        return min(present, key=lambda member: member.id).name

    def reload(self) -> set[str]:
        """Reread the cluster file; return (and report) the nodes whose entry changed.

        ``ClusterConfigError`` if the file is wrong; the view is then left as it was."""
        if self._file is None:
            return set()
        nodes, names = read_cluster_file(self._file)
        members = parse_members(nodes, str(self._file))
        changed = {
            name
            for name in set(members) | set(self._members)
            if members.get(name) != self._members.get(name)
        }
        self._members = members
        self._by_id = _by_id(members.values())
        self._names = dict(names)
        if changed and self.on_change is not None:
            self.on_change(changed)
        return changed


def _by_id(members: Iterable[Member]) -> dict[int, Member]:
    """Members by id; skynet nodes have none."""
    return {m.id: m for m in members if m.id is not None}
