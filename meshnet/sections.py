"""Config sections that packages add to a node's TOML (``[cluster]``, ...).

The core reads ``[node]`` and ``[start]`` itself; any other section belongs to a package,
which registers a ``Section`` through an entry point of the group ``meshnet.sections``
named after the section::

    [project.entry-points."meshnet.sections"]
    cluster = "meshnet.cluster.section:CLUSTER"

``parse`` reads the table when the config is loaded (so its errors are config errors,
printed before the node boots); ``start`` runs once the node is up, before the start
service, with what ``parse`` returned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshnet.errors import MeshnetError

if TYPE_CHECKING:
    from meshnet.node import Node

ENTRY_POINT_GROUP = "meshnet.sections"


class SectionError(MeshnetError):
    """A registered section cannot be loaded."""


@dataclass(frozen=True)
class Section:
    """A config section a package adds: how to read it and how to start it."""

    parse: Callable[[dict[str, Any], Path, str], Any]
    """``parse(table, config_dir, node_name)``: the section's settings, or raises a
    ``MeshnetError`` naming the bad key."""
    start: Callable[[Node, Any], Awaitable[object]]
    """``start(node, settings)``: set the package up on the running node."""


def registered_sections() -> dict[str, Section]:
    """The sections installed packages register, by section name."""
    found: dict[str, Section] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            section = entry.load()
        except Exception as exc:
            raise SectionError(
                f"cannot load config section [{entry.name}] ({entry.value}): {exc}"
            ) from exc
        if not isinstance(section, Section):
            raise SectionError(f"[{entry.name}] ({entry.value}) is not a meshnet.sections.Section")
        found[entry.name] = section
    return found
