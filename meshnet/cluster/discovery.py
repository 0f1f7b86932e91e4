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

from meshnet.cluster.config import ClusterConfig, parse_members, read_cluster_file
from meshnet.cluster.members import Member

Changed = Callable[[set[str]], None]
"""Told the names of the nodes whose entry appeared, changed or went."""


class Discovery(Protocol):
    """The cluster's view of itself, as one node holds it."""

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


class StaticDiscovery:
    """Members and names from the config, or from a cluster file that ``reload`` rereads."""

    def __init__(self, config: ClusterConfig, on_change: Changed | None = None) -> None:
        self._file: Path | None = config.file
        self.on_change = on_change
        """Told which nodes changed after a reload."""
        self._members: dict[str, Member] = dict(config.nodes)
        self._by_id = {m.id: m for m in self._members.values()}
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
        self._by_id = {m.id: m for m in members.values()}
        self._names = dict(names)
        if changed and self.on_change is not None:
            self.on_change(changed)
        return changed
